"""The corpora as a class: the solution, the untouched release and every corpus entry as students,
graded through the instructor's workflow. `python -m tests.corpora FOLDER LANE...` grades them in
FOLDER/<lane>/ and pickles what the tests read in FOLDER/<lane>.pickle, lane by lane; conftest.py
starts it in the background, at a small CPU share, as soon as the tests are collected.

- `parallel`: every student, through a Dask cluster of its own on loopback (`dask scheduler` and
  two `dask worker` processes) into a PostgreSQL server of its own (tests/services.py); every
  entry's verdict (tests/test_autograde.py).
- `serial`: a sample (`serial_sample`) with JOBS=1 into SQLite, nbgrader executing each notebook
  itself; test_parallel compares it with the parallel grading of the same students. The sample:
  the solution and the untouched release (every notebook), and per lesson the first right answer,
  the first wrong one and the first flagged for review: every lesson and every kind of verdict,
  through nbgrader's own execution. Grading all of them twice proved nothing more and cost a core
  for minutes.

Both courses have a cell timeout of `CELL_SECONDS`: graded at a small CPU share beside the other
tests, an honest cell may wait for a CPU far longer than it runs, and no corpus entry's verdict
depends on a timeout (timeouts are the bad-submission batch's, tests/test_bad_submissions.py)."""

from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path

from labs.course import corpus, notebooks
from labs.grading import autograde, throwaway_course


def serial_sample(entries: list[corpus.Entry]) -> list[corpus.Entry]:
    """Per lesson: the first right answer, the first wrong one, the first flagged for review."""
    picked: dict[tuple[str, str], corpus.Entry] = {}
    for entry in sorted(entries, key=lambda e: (e.notebook, e.name)):
        kind = "review" if entry.expect_review else "full" if entry.expect_full else "fails"
        picked.setdefault((entry.notebook, kind), entry)
    return list(picked.values())


def submit_corpora(course: throwaway_course.Course, entries: list[corpus.Entry] | None = None) -> None:
    """The solution (source notebooks) and the untouched release as two students, and each corpus
    entry (every one, unless `entries` says which) as a student who submitted that one notebook."""
    names = course.notebook_names()
    course.submit("solution", {n: course.source(n) for n in names})
    course.submit("untouched", {n: course.release(n) for n in names})
    for entry in corpus.entries() if entries is None else entries:
        nb = entry.apply(course.release(entry.notebook), course.source(entry.notebook))
        course.submit(entry.student, {entry.notebook: nb})


CELL_SECONDS = 300


def grade_corpora(root: Path, entries: list[corpus.Entry] | None = None, **options) -> dict:
    """The corpora through the instructor's workflow (`labs.grading.autograde.autograde`: fan-out to
    sandboxes, then the real `nbgrader autograde`); the gradebook's scores and the results."""
    course = throwaway_course.Course.create(root)
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write(f"\nc.SandboxedExecute.timeout = {CELL_SECONDS}\n")
    submit_corpora(course, entries)
    out = io.StringIO()
    res = autograde.autograde(course.root, out=out, **options)
    failed = [r.student for r in res.values() if r.failed]
    assert not failed, f"could not grade {failed}:\n{out.getvalue()[-3000:]}"
    return {"scores": course.scores(), "course": course, "results": res, "summary": out.getvalue(),
            "db_url": course.db_url}


def comparable(graded: dict, students: set[str] | None = None) -> dict:
    """What two gradings of the corpora must agree on, and how each notebook was executed (of
    `students` only, when given)."""
    def ours(student: str) -> bool:
        return students is None or student in students

    paths = sorted(p for p in (graded["course"].root / "autograded").glob("*/lab_2_1_3/*.ipynb")
                   if ours(p.parts[-3]))
    return {"scores": {s: v for s, v in graded["scores"].items() if ours(s)},
            "messages": {s: r.failures for s, r in graded["results"].items() if ours(s)},
            "ran_in_fanout": {str(p.relative_to(graded["course"].root)):
                              notebooks.read(p).metadata["lab_grading"]["ran_in_fanout"] for p in paths},
            "db_url": graded["db_url"]}


def parallel(folder: Path) -> dict:
    """Every student, through a Dask cluster into PostgreSQL (both started here, stopped after)."""
    from .services import dask_cluster, postgres

    with postgres(folder / "services" / "pg") as url, dask_cluster(folder / "services" / "dask", workers=2) as address:
        os.environ["LAB_DB_URL"] = url
        try:
            out = grade_corpora(folder / "course", scheduler=address)
        finally:
            os.environ.pop("LAB_DB_URL", None)
    out["scheduler"] = address
    return out


def serial(folder: Path) -> dict:
    """The sample, JOBS=1 into SQLite: what test_parallel compares."""
    os.environ.pop("LAB_DB_URL", None)
    return comparable(grade_corpora(folder / "course", serial_sample(corpus.entries()), jobs=1))


def main(folder: str, *lanes: str) -> int:
    for lane in lanes:
        data = {"parallel": parallel, "serial": serial}[lane](Path(folder) / lane)
        tmp = Path(folder) / f"{lane}.pickle.tmp"
        tmp.write_bytes(pickle.dumps(data))
        tmp.rename(Path(folder) / f"{lane}.pickle")  # whole or absent: conftest.py waits for it
        print(f"{lane}: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
