"""The bad-submission corpus (tests/bad_submissions/cases.py) through the instructor's
real workflow: one `labs.workflow.autograde` batch (real `nbgrader autograde` with the
repository's nbgrader_config.py), then export, feedback and the report.

Each bad case loses exactly the graded tests it deserves, every good submission in the
same batch keeps full marks, the gradebook stays consistent, the summary names each
problem, feedback never shows a hidden test, and regrading gives the same verdict.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import time
import zipfile

import nbformat
import pytest

from labs import build, grading, notebooks, report, workflow

from .bad_submissions.cases import ALL, ANSWER, CASES, NOTEBOOK
from .conftest import ROOT

SELECTED = [c for c in CASES if not os.environ.get("LAB_BAD_CASES")
            or c.name in os.environ["LAB_BAD_CASES"].split(",")]
CELL_TIMEOUT = 20  # seconds per cell in this batch (the course default is 60)
WRONG = "closed_interval_kinks"
LATE = "late-good_solution"  # a corpus answer that loses test_backward and test_kinks


def _graded_tests() -> dict[str, float]:
    return notebooks.graded_points(notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{NOTEBOOK}.ipynb"))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from labs import corpus

    course = grading.Course.create(tmp_path_factory.mktemp("bad-course"))
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write(f"\nc.GuardedExecute.timeout = {CELL_TIMEOUT}\n")
    # a deadline, and the "zero" late policy: one good submission arrives a day late
    build.nbgrader("db", "assignment", "add", "lab_2_1_3", "--duedate=2026-01-02 00:00:00 UTC", cwd=course.root)
    good = next(c.source for c in course.source(NOTEBOOK).cells if notebooks.grade_id(c) == ANSWER)
    wrong = corpus.parse(ROOT / "tests" / "corpus" / NOTEBOOK / f"{WRONG}.py").cells[ANSWER]
    release = course.release(NOTEBOOK)
    for case in SELECTED:
        folder = course.submit(f"bad-{case.name}", {})
        for filename, content in case.make(release, good, wrong).items():
            if isinstance(content, bytes):
                (folder / filename).write_bytes(content)
            else:
                notebooks.write(content, folder / filename)
    course.submit(LATE, {NOTEBOOK: _answered(release, good)},
                  timestamp=dt.datetime(2026, 1, 3, tzinfo=dt.UTC))
    out = io.StringIO()
    t0 = time.perf_counter()
    policy = os.environ.get("LAB_LATE_POLICY")
    os.environ["LAB_LATE_POLICY"] = "zero"
    try:
        res = workflow.autograde(course.root, out=out)
    finally:
        if policy is None:
            del os.environ["LAB_LATE_POLICY"]
        else:
            os.environ["LAB_LATE_POLICY"] = policy
    seconds = time.perf_counter() - t0
    text = out.getvalue()
    print(text)
    print(f"graded {len(res)} submissions in {seconds:.0f} s")
    yield {"course": course, "results": res, "summary": text, "seconds": seconds}
    if os.environ.get("LAB_KEEP_COURSE"):
        shutil.copytree(course.root, os.environ["LAB_KEEP_COURSE"], dirs_exist_ok=True)


def _answered(release, answer):
    from .bad_submissions.cases import _with_answer
    return _with_answer(release, answer)


def test_late_policy(batch):
    """LAB_LATE_POLICY=zero: the late good submission passes every test (raw score full),
    and its penalty takes the whole score away in grades.csv."""
    r = batch["results"][LATE]
    score, most = r.scores[NOTEBOOK]
    assert most == sum(_graded_tests().values()) and score == most and r.late_penalty == most
    assert not r.failures[NOTEBOOK], r.failures
    assert "late by 24.0 h" in " ".join(r.problems)
    assert workflow.export(batch["course"].root) == 0
    row = next(x for x in csv.DictReader(open(batch["course"].root / "grades.csv")) if x["student_id"] == LATE)
    assert float(row["score"]) == 0 and float(row["raw_score"]) == most and float(row["late_penalty"]) == most


@pytest.mark.parametrize("case", SELECTED, ids=lambda c: c.name)
def test_verdict(batch, case):
    tests = _graded_tests()
    got = batch["course"].scores().get(f"bad-{case.name}", {}).get(NOTEBOOK, {})
    lost = {gid for gid, pts in tests.items() if got.get(gid, (0,))[0] != pts}
    want = set(tests) if case.lost == ALL else set(case.lost)
    assert lost == want, f"{case.why}: expected to lose {sorted(want)}, lost {sorted(lost)}; {got}"
    assert all(got.get(gid, (0,))[0] == 0 for gid in lost), f"partial credit in {got}"
    assert {gid: m for gid, (_, m) in got.items() if gid in tests} == tests or not got, \
        f"the gradebook's max scores drifted: {got}"
    if case.problem:
        problems = " | ".join(batch["results"][f"bad-{case.name}"].problems)
        assert case.problem.lower() in problems.lower(), f"summary does not name the problem: {problems}"


def test_summary_lists_every_student(batch):
    for case in SELECTED:
        assert f"bad-{case.name}" in batch["summary"]
    assert "graded:" in batch["summary"] and "failed to grade:" in batch["summary"]


def test_nothing_lost(batch):
    """Malformed notebooks are kept (quarantine/), repaired ones keep their original."""
    root = batch["course"].root
    kept = {p.parent.parent.name for p in (root / "quarantine").glob("*/*/*")}
    for case in SELECTED:
        if case.name in ("malformed_json", "old_nbformat", "duplicate_cell_ids"):
            assert f"bad-{case.name}" in kept


def test_regrading_gives_the_same_verdict(batch):
    course = batch["course"]
    student = "bad-test_edited" if any(c.name == "test_edited" for c in SELECTED) else f"bad-{SELECTED[0].name}"
    before = course.scores()[student]
    before_msgs = workflow.results(course.root)[student].failures
    proc = course.autograde(student=student)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert course.scores()[student] == before
    assert workflow.results(course.root)[student].failures == before_msgs


def test_feedback_never_shows_hidden_tests(batch):
    course = batch["course"]
    assert workflow.feedback(course.root) == 0
    source = notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{NOTEBOOK}.ipynb")
    hidden = {ln.strip() for ln in notebooks.hidden_lines(source)
              if len(ln.strip()) > 12 and ln.strip() not in {x.strip() for x in notebooks.public_lines(source)}}
    pages = sorted((course.root / "feedback").glob(f"*/lab_2_1_3/{NOTEBOOK}.html"))
    assert pages, "no feedback written"
    import html
    for page in pages:
        text = html.unescape(page.read_text())
        leaked = [ln for ln in hidden if ln in text]
        assert not leaked, f"{page} shows hidden test code: {leaked[:3]}"
    edited = course.root / "feedback" / "bad-test_edited" / "lab_2_1_3" / f"{NOTEBOOK}.html"
    if edited.exists():
        text = html.unescape(edited.read_text())
        assert "Largest difference" in text and "the kink x = 3" in text


def test_export_and_report(batch):
    course = batch["course"]
    assert workflow.export(course.root) == 0
    rows = list(csv.DictReader(open(course.root / "grades.csv")))
    scores = course.scores()
    for row in rows:
        if row["notebook"] == NOTEBOOK and row["student_id"] in scores:
            got = scores[row["student_id"]].get(NOTEBOOK, {})
            assert float(row["raw_score"]) == sum(s for s, _ in got.values())
            assert float(row["score"]) == float(row["raw_score"]) - float(row["late_penalty"])
    assert {r["student_id"] for r in rows} >= set(batch["results"]), "a student is missing from grades.csv"
    stats = report.class_stats(course.root)
    assert len(stats["totals"]) == len(batch["results"]), "every student counts in the report"
    md = report.write(course.root)
    text = md.read_text()
    assert (course.root / "report" / "lab_2_1_3.png").stat().st_size > 1000
    for gid in _graded_tests():
        assert f"| {NOTEBOOK} | {gid} |" in text


def test_zip_collect(tmp_path):
    """An LMS download (zip of `<student>_<id>_<notebook>.ipynb`) lands in submitted/."""
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    shutil.copytree(ROOT / "release", tmp_path / "release")  # zip_collect matches release notebooks
    archive = tmp_path / "downloaded" / "lab_2_1_3" / "archive"
    archive.mkdir(parents=True)
    nb = nbformat.writes(notebooks.read(ROOT / "release" / "lab_2_1_3" / f"{NOTEBOOK}.ipynb"))
    with zipfile.ZipFile(archive / "lms_download.zip", "w") as zf:
        zf.writestr(f"alice_1234_{NOTEBOOK}.ipynb", nb)
        zf.writestr(f"bob.smith_98_attempt_{NOTEBOOK}.ipynb", nb)
    proc = build.nbgrader("zip_collect", "lab_2_1_3", cwd=tmp_path, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    for student in ("alice", "bob.smith"):
        assert (tmp_path / "submitted" / student / "lab_2_1_3" / f"{NOTEBOOK}.ipynb").exists()
