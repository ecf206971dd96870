"""Grading at scale (labs/grading/fanout.py): the corpora graded through a real multi-process Dask cluster
on loopback into a real PostgreSQL gradebook (the `graded` fixture, conftest.py) score exactly as
the serial grading into SQLite (JOBS=1, nbgrader executing each notebook itself); a task that
runs twice returns the same data and is stored once; show-only cells are skipped only when safe.
The local cluster `make autograde` starts by default (JOBS=N) differs from the remote one only in
`fanout.client_for`, and grades the bad-submission batch (test_bad_submissions.py)."""

from __future__ import annotations

import dataclasses

import pytest

from labs.course import corpus, notebooks
from labs.grading import execute, fanout, plan, runs

from . import corpora
from .conftest import ROOT


def test_every_notebook_ran_once_in_the_fanout(graded):
    """With workers, nbgrader executes nothing itself: each notebook's run came from the fan-out."""
    paths = sorted((graded["course"].root / "autograded").glob("*/lab_2_1_3/*.ipynb"))
    assert len(paths) >= 30
    late = [p for p in paths if not notebooks.read(p).metadata["lab_grading"]["ran_in_fanout"]]
    assert late == [], f"executed again by nbgrader: {late[:3]}"


def test_the_corpora_went_through_a_dask_cluster_into_postgresql(graded):
    """`dask scheduler` and two `dask worker` processes on 127.0.0.1, and a PostgreSQL server of
    the test's own (unix socket): the `graded` fixture's path (conftest.py)."""
    assert graded["db_url"].startswith("postgresql+psycopg2://")
    assert graded["scheduler"].startswith("tcp://127.0.0.1:")
    assert f"on {graded['scheduler']}" in graded["summary"]


def test_serial_grading_gives_exactly_the_parallel_scores(graded, serial):
    """JOBS=1 into SQLite (nbgrader executes every notebook itself, one after the other; started in
    the background when the tests were collected) gives exactly the scores and failure messages
    of the Dask cluster into PostgreSQL, for the solution, the untouched release and, per lesson, a
    right, a wrong and a flagged corpus answer (tests/corpora.py: serial_sample)."""
    students = set(serial["scores"])
    parallel = corpora.comparable(graded, students)
    assert serial["db_url"].startswith("sqlite:///")
    lessons = {p.stem for p in (ROOT / "source" / "lab_2_1_3").glob("*.ipynb")}
    sample = corpora.serial_sample(corpus.entries())
    assert {e.notebook for e in sample} == lessons
    assert {"solution", "untouched"} | {e.student for e in sample} == students
    assert sum(e.expect_full and not e.expect_review for e in sample) == len(lessons)
    assert sum(bool(e.expect_fails) and not e.expect_review for e in sample) >= len(lessons)
    assert serial["scores"] == parallel["scores"]
    assert serial["messages"] == parallel["messages"]
    assert serial["ran_in_fanout"].keys() == parallel["ran_in_fanout"].keys()
    assert not any(serial["ran_in_fanout"].values())


def test_a_task_run_twice_gives_the_same_data_and_is_stored_once(tmp_path):
    nb = notebooks.read(ROOT / "source" / "lab_2_1_3" / "01_hardswish.ipynb")
    todo = plan.runnable(nb, plan.skipped_sources(nb))
    limits = dataclasses.replace(execute.limits(60), notebook_seconds=300)
    cells = [(c.cell_type, c.source) for c in todo.cells]
    first, second = (fanout.execute_task(cells, dataclasses.asdict(limits)) for _ in range(2))
    assert first["outputs"] == second["outputs"] and first["statuses"] == second["statuses"]
    key = runs.run_key(todo, limits)
    assert runs.store(tmp_path, key, first) is True
    stamp = runs.cache_file(tmp_path, key).stat().st_mtime_ns
    assert runs.store(tmp_path, key, second) is False
    assert runs.cache_file(tmp_path, key).stat().st_mtime_ns == stamp
    assert runs.load(tmp_path, key).statuses == {int(k): v for k, v in first["statuses"].items()}


def test_workers_and_nbgrader_agree_on_the_device(monkeypatch):
    """nbgrader's environment defaults LAB_DEVICE to cpu (labs/course/build.py); a coordinator without it
    must compute the same run keys, or every notebook would be executed twice."""
    nb = notebooks.read(ROOT / "source" / "lab_2_1_3" / "01_hardswish.ipynb")
    monkeypatch.delenv("LAB_DEVICE", raising=False)
    unset = runs.run_key(nb, execute.limits(60))
    monkeypatch.setenv("LAB_DEVICE", "cpu")
    assert runs.run_key(nb, execute.limits(60)) == unset
    monkeypatch.setenv("LAB_DEVICE", "cuda")
    assert runs.run_key(nb, execute.limits(60)) != unset


@pytest.mark.parametrize("lesson", ["01_hardswish", "02_checkpointing", "03_saved_tensor_hooks", "04_modern_swish"])
def test_show_only_cells_are_skipped_by_source_text_only(lesson):
    """Cells tagged `grading-skip` in the source are not run while grading (the solution still
    passes every graded test without them: the reference is computed that way, and grading stops
    otherwise); a submitted cell is skipped only when its text is exactly the source's."""
    nb = notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{lesson}.ipynb")
    skip = plan.skipped_sources(nb)
    assert skip, f"{lesson}: no cell tagged {plan.SKIP_TAG}"
    ran = plan.runnable(nb, skip)
    emptied = [i for i, (a, b) in enumerate(zip(nb.cells, ran.cells, strict=True)) if a.source != b.source]
    assert len(emptied) == len(skip)
    assert not any(notebooks.is_graded_test(nb.cells[i]) or notebooks.is_answer(nb.cells[i]) for i in emptied)
    changed = nb.cells[emptied[0]].source + "\nprint('my own line')"
    nb.cells[emptied[0]].source = changed
    assert plan.runnable(nb, skip).cells[emptied[0]].source == changed


_SHOW = "x = 1\ndef helper():\n    return 2\n"


@pytest.mark.parametrize(("cells", "runs"), [
    ([_SHOW, "y = 2"], False),
    ([_SHOW, "print(x)"], True),                          # read at once, after it
    (["print(x)", _SHOW], False),                         # read at once, before it
    (["def f():\n    return helper()", _SHOW], True),   # read from a function, which may run at any time
    ([_SHOW, "x = 5\nprint(x)"], False),                  # bound before it is read
    ([_SHOW, "def f(x):\n    return x"], False),          # a parameter, not the notebook's x
    ([_SHOW, "class A:\n    v = x"], True),
    ([_SHOW, "[x for _ in range(2)]"], True),
    ([_SHOW, "print(globals()['x'])"], True),             # dynamic lookups: nothing is skipped
    ([_SHOW, "eval('x')"], True),
    ([_SHOW, "%time y = 3"], True),                       # magics go through get_ipython()
    ([_SHOW, "def f(:"], False),                          # does not parse: raises when run, reads nothing
    ([_SHOW, "x = " + "-" * 200_000 + "1"], False),       # too deep for the parser (MemoryError): the same
    (["from math import *", "print(pi)"], True),          # a star import binds what no one can list
])
def test_a_show_only_cell_is_skipped_only_when_nothing_that_runs_reads_its_names(cells, runs):
    show = cells[0] if cells[0] in (_SHOW, "from math import *") else cells[1]
    skipped = plan.skip_plan(cells, {show.strip()})
    assert (cells.index(show) not in skipped) == runs


@pytest.mark.parametrize(("lesson", "name", "binds"), [
    ("01_hardswish", "correct_uses_lesson_helper", "via_relu6"),
])
def test_an_answer_using_a_show_only_cells_name_runs_that_cell(lesson, name, binds):
    """A student's answer may use a lesson helper or an import of a show-only cell: that cell then runs
    while grading (the corpus entry gets full marks in test_autograde), though the release skips it."""
    source = notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{lesson}.ipynb")
    release = notebooks.read(ROOT / "release" / "lab_2_1_3" / f"{lesson}.ipynb")
    (entry,) = [e for e in corpus.entries(lesson) if e.name == name]
    skip = plan.skipped_sources(source)
    defines = [i for i, c in enumerate(release.cells) if c.cell_type == "code" and c.source.strip() in skip
               and binds in c.source]
    assert len(defines) == 1
    (i,) = defines
    assert plan.runnable(release, skip).cells[i].source == plan.SKIPPED
    assert plan.runnable(entry.apply(release, source), skip).cells[i].source == release.cells[i].source
