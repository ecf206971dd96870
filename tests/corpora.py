"""The corpora as a class: the solution, the untouched release and every corpus entry as students,
graded through the instructor's workflow. `python -m tests.corpora FOLDER` grades them serially
(JOBS=1, SQLite) into FOLDER and pickles what test_parallel compares; conftest.py starts it in
the background, at low priority, as soon as the tests are collected."""

from __future__ import annotations

import io
import os
import pickle
import sys
from pathlib import Path

from labs.course import corpus, notebooks
from labs.grading import autograde, throwaway_course


def submit_corpora(course: throwaway_course.Course) -> None:
    """The solution (source notebooks) and the untouched release as two students, and every
    corpus entry as a student who submitted that one notebook."""
    names = course.notebook_names()
    course.submit("solution", {n: course.source(n) for n in names})
    course.submit("untouched", {n: course.release(n) for n in names})
    for entry in corpus.entries():
        nb = entry.apply(course.release(entry.notebook), course.source(entry.notebook))
        course.submit(entry.student, {entry.notebook: nb})


def grade_corpora(root: Path, **options) -> dict:
    """The corpora through the instructor's workflow (`labs.grading.autograde.autograde`: fan-out to
    sandboxes, then the real `nbgrader autograde`); the gradebook's scores and the results."""
    course = throwaway_course.Course.create(root)
    submit_corpora(course)
    out = io.StringIO()
    res = autograde.autograde(course.root, out=out, **options)
    failed = [r.student for r in res.values() if r.failed]
    assert not failed, f"could not grade {failed}:\n{out.getvalue()[-3000:]}"
    return {"scores": course.scores(), "course": course, "results": res, "summary": out.getvalue(),
            "db_url": course.db_url}


def comparable(graded: dict) -> dict:
    """What two gradings of the corpora must agree on, and how each notebook was executed."""
    paths = sorted((graded["course"].root / "autograded").glob("*/lab_2_1_3/*.ipynb"))
    return {"scores": graded["scores"],
            "messages": {s: r.failures for s, r in graded["results"].items()},
            "ran_in_fanout": {str(p.relative_to(graded["course"].root)):
                              notebooks.read(p).metadata["lab_grading"]["ran_in_fanout"] for p in paths},
            "db_url": graded["db_url"]}


def main(folder: str) -> int:
    os.environ.pop("LAB_DB_URL", None)
    data = comparable(grade_corpora(Path(folder) / "course", jobs=1))
    tmp = Path(folder) / "serial.pickle.tmp"
    tmp.write_bytes(pickle.dumps(data))
    tmp.rename(Path(folder) / "serial.pickle")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
