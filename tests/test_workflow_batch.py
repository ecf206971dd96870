"""A batch that did not finish says so, one student's bad notebook stays theirs, and the
grading process reads hostile notebooks within bounds (labs/grading/intake.py, labs/grading/fanout.py)."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil
import time

import nbformat
import pytest

from labs.course import notebooks
from labs.grading import autograde, cli, fanout, intake, runs, sandbox

from .conftest import ROOT

A = "lab_2_1_3"
NB = "01_hardswish"


def _course(tmp_path, students: dict[str, bytes]):
    (tmp_path / "source" / A).mkdir(parents=True)
    for p in (ROOT / "source" / A).glob("*.ipynb"):
        (tmp_path / "source" / A / p.name).write_bytes(p.read_bytes())
    for student, data in students.items():
        folder = tmp_path / "submitted" / student / A
        folder.mkdir(parents=True)
        (folder / f"{NB}.ipynb").write_bytes(data)
    return tmp_path


def _release() -> nbformat.NotebookNode:
    return notebooks.read(ROOT / "release" / A / f"{NB}.ipynb")


def test_hostile_notebooks_quarantined_for_that_student_only(tmp_path):
    """A 20 MB cell, 50,000 cells, JSON nested 100,000 deep: quarantined with a message in the
    grader's words (no student text), before nbgrader reads them; the honest one is untouched."""
    big = json.loads(nbformat.writes(_release()))
    big["cells"].append({"cell_type": "code", "id": "big", "metadata": {}, "outputs": [], "execution_count": None,
                         "source": "SECRET" * ((20 << 20) // 6)})
    many = json.loads(nbformat.writes(_release()))
    many["cells"] += [{"cell_type": "markdown", "id": f"m{i}", "metadata": {}, "source": "SECRET"}
                      for i in range(50_000)]
    deep = json.dumps(json.loads(nbformat.writes(_release())) | {"metadata": {}})[:-1] \
        + ', "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    honest = nbformat.writes(_release()).encode()
    course = _course(tmp_path, {"big": json.dumps(big).encode(), "many": json.dumps(many).encode(),
                                "deep": deep.encode(), "honest": honest})
    t0 = time.perf_counter()
    problems = intake.check_submissions(course, A)
    seconds = time.perf_counter() - t0
    assert seconds < 20, f"checking took {seconds:.1f} s"
    cells = len(many["cells"])   # the lesson's own cells and 50,000 more
    for student, why in (("big", "characters, over the bound"), ("many", f"{cells} cells, over the bound of 1000"),
                         ("deep", "nests deeper than 64 levels")):
        text = " | ".join(problems[student])
        assert why in text and "quarantine" in text and "SECRET" not in text, text
        assert not (course / "submitted" / student / A / f"{NB}.ipynb").exists()
        assert (course / "quarantine" / student / A / f"{NB}.ipynb").exists(), "kept, never deleted"
    assert (course / "submitted" / "honest" / A / f"{NB}.ipynb").read_bytes() == honest
    assert not any("quarantine" in p for p in problems["honest"]), problems["honest"]


def test_json_depth_is_linear_and_skips_strings():
    assert intake.json_depth(b'{"a": [1, {"b": "[[[[[[[["}]}', 10) == 3
    assert intake.json_depth(b'["\\"[[[", [[]]]', 10) == 3
    t0 = time.perf_counter()
    assert intake.json_depth(b"[" * 5_000_000, 64) == 65
    assert time.perf_counter() - t0 < 5


def test_a_truncated_notebook_is_read_in_linear_time(tmp_path):
    """Attack kept as a test: a notebook cut off inside a string (a truncated upload, or one written that
    way) made the string-skipping pattern backtrack exponentially: 36 s for 26 escapes, and the bad-
    submission batch's malformed notebook hung `make autograde` for the whole class. Now 15 MB of it is
    read in about a second, and the notebook is left to the reader, which quarantines it."""
    raw = b'{"cells": [{"cell_type": "code", "source": "' + b"ab\\n" * 5_000_000
    t0 = time.perf_counter()
    assert intake.json_depth(raw, 64) == 3
    path = tmp_path / "truncated.ipynb"
    path.write_bytes(raw[:4000])
    assert intake.over_bounds(path) is None  # not JSON: the reader's quarantine says so
    assert time.perf_counter() - t0 < 10


def test_export_feedback_report_refuse_after_an_unfinished_autograde(tmp_path, capsys):
    """A batch that crashed (state left 'started') or left grading errors: the steps after it
    refuse in capitals and say how to rerun; a completed batch lets them run."""
    autograde.write_state(tmp_path, state="started", started="2026-01-01 10:00:00", students=["a"])
    assert cli.export(tmp_path) == 3
    assert cli.feedback(tmp_path) == 3
    assert cli.main(["report", "--course", str(tmp_path)]) == 3
    err = capsys.readouterr().err
    assert err.count("THE LAST AUTOGRADE DID NOT COMPLETE") == 3 and "RERUN `MAKE AUTOGRADE`" in err
    autograde.write_state(tmp_path, state="completed", students=["a"], rerun=["a/01_hardswish"])
    assert cli.export(tmp_path) == 3
    assert "1 GRADING ERROR(S) TO RERUN (a/01_hardswish)" in capsys.readouterr().err
    autograde.write_state(tmp_path, state="completed", students=["a"], rerun=[])
    assert autograde.not_final(tmp_path) is None
    assert not list((tmp_path / ".lab-grader").glob("*.tmp")), "written atomically, nothing left behind"


def test_run_key_holds_everything_that_changes_a_run(monkeypatch):
    nb = _release()
    base = sandbox.Limits()
    key = runs.run_key(nb, base)
    assert runs.run_key(nb, base) == key
    changed = {
        "unsafe": runs.run_key(nb, dataclasses.replace(base, unsafe=True)),
        "cell timeout": runs.run_key(nb, dataclasses.replace(base, cell_seconds=7)),
        "memory": runs.run_key(nb, dataclasses.replace(base, memory_mb=1)),
        "output cap": runs.run_key(nb, dataclasses.replace(base, cell_output_bytes=1)),
    }
    other = _release()
    other.cells[-1].source += "\n# edited"
    changed["notebook"] = runs.run_key(other, base)
    monkeypatch.setenv("LAB_DEVICE", "cuda")
    changed["device"] = runs.run_key(nb, base)
    monkeypatch.delenv("LAB_DEVICE")
    monkeypatch.setattr(runs, "version", lambda name: "9.9.9" if name == "torch" else "0")
    changed["torch"] = runs.run_key(nb, base)
    assert all(v != key for v in changed.values()), [k for k, v in changed.items() if v == key]


def test_summary_counts_this_batch():
    """Three submitted: 'graded: 3', whatever else the gradebook holds; a grading error says so."""
    res = {s: autograde.StudentResult(s, scores={NB: (11.0, 11.0)}) for s in ("a", "b", "c")}
    res["c"].rerun = [f"{NB}: ran out of time while the grader was overloaded"]
    text = autograde.summary(res)
    assert "graded: 2   failed to grade: 0   grading errors to rerun: 1   (this batch: 3 students)" in text
    assert "GRADING ERROR: rerun" in text and "GRADING ERRORS: 1 student(s)" in text


def test_one_crashing_task_stays_that_students(tmp_path, monkeypatch):
    """A task that raises (today: a runner log the reader cannot take) used to stop the whole
    fan-out, and so every student, at JOBS>1; now only its run is missing (nbgrader runs it
    itself and reports it for that student), the other runs are stored."""
    from dask.distributed import Client, LocalCluster

    good, bad = _release(), _release()
    bad.cells.append(nbformat.v4.new_code_cell("crash_the_reader = 1"))
    course = _course(tmp_path, {"good": nbformat.writes(good).encode(), "bad": nbformat.writes(bad).encode()})

    def execute_task(cells, limits):
        if any("crash_the_reader" in src for _, src in cells):
            raise RecursionError("maximum recursion depth exceeded while decoding a JSON array")
        return dataclasses.asdict(sandbox.Run(statuses={0: "ok"}, outputs={0: []}))

    monkeypatch.setattr(fanout, "execute_task", execute_task)
    monkeypatch.setattr(fanout, "prepared", lambda c, a, s, n, d, p: notebooks.read(
        c / "submitted" / s / a / f"{n}.ipynb"))
    monkeypatch.setattr(fanout, "sanitize_preprocessors", lambda c: [])
    monkeypatch.setattr(fanout, "client_for", lambda jobs, scheduler: Client(
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None)))
    limits = sandbox.Limits(unsafe=True)
    stats = fanout.fan_out(course, A, ["bad", "good"], "sqlite://", limits, jobs=2, out=io.StringIO())
    assert stats["crashed"] == 1 and stats["executed"] == 2
    assert runs.load(course, runs.run_key(good, limits)) is not None
    assert runs.load(course, runs.run_key(bad, limits)) is None


@pytest.mark.parametrize("run, expected", [
    ({"statuses": {"3": "timeout"}, "events": []}, True),
    ({"statuses": {"3": "ok"}, "events": ["the notebook ran past its wall-clock budget of 900 s and was stopped"]},
     True),
    ({"statuses": {"3": "error", "4": "died"}, "events": []}, False),
])
def test_what_counts_as_a_timeout(run, expected):
    assert runs.timed_out(run) is expected


def test_autograde_records_its_state_and_counts_this_batch(tmp_path):
    """End to end (UNSAFE, two local workers, one notebook each): the state goes to 'completed'
    with this batch's students, the summary counts them only (an earlier student in the
    gradebook is not counted), and export then runs."""
    from labs.grading import throwaway_course

    course = throwaway_course.Course.create(tmp_path / "course")
    course.submit("earlier", {NB: course.source(NB)})
    autograde.autograde(course.root, out=io.StringIO(), unsafe=True, jobs=2)
    shutil.rmtree(course.root / "submitted" / "earlier")
    course.submit("solution", {NB: course.source(NB)})
    course.submit("untouched", {NB: course.release(NB)})
    out = io.StringIO()
    res = autograde.autograde(course.root, out=out, unsafe=True, jobs=2)
    text = out.getvalue()
    assert set(res) == {"solution", "untouched"}, set(res)
    assert "graded: 2   failed to grade: 0   grading errors to rerun: 0   (this batch: 2 students)" in text, text
    state = autograde.read_state(course.root)
    assert state["state"] == "completed" and state["students"] == ["solution", "untouched"] and not state["rerun"]
    assert res["solution"].scores[NB][0] == res["solution"].scores[NB][1] > 0
    assert res["untouched"].scores[NB][0] == 0
    assert cli.export(course.root) == 0
