"""The bad-submission corpus (tests/bad_submissions/cases.py) through the instructor's
real workflow: one `labs.grading.autograde.autograde` batch (real `nbgrader autograde` with the
repository's nbgrader_config.py), then export, feedback and the report.

Each bad case loses exactly the graded tests it deserves, every good submission in the
same batch keeps full marks, the gradebook stays consistent, the summary names each
problem, feedback never shows a hidden test, and regrading gives the same verdict.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import shutil
import socket
import threading
import time
import zipfile
from html.parser import HTMLParser

import nbformat
import psutil
import pytest

from labs.course import build, notebooks
from labs.grading import autograde, cli, collect, report, throwaway_course

from .bad_submissions import attacks
from .bad_submissions.cases import ALL, ANSWER, CASES, NOTEBOOK
from .conftest import ROOT

SELECTED = [c for c in [*CASES, *attacks.ATTACKS] if not os.environ.get("LAB_BAD_CASES")
            or c.name in os.environ["LAB_BAD_CASES"].split(",")]
CELL_TIMEOUT = 10  # seconds per cell in this batch (the course default is 60; an honest cell here takes under 2 s)
WRONG = "closed_interval_kinks"
LATE = "late-good_solution"  # a corpus answer that loses test_backward and test_kinks


def _graded_tests() -> dict[str, float]:
    return notebooks.graded_points(notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{NOTEBOOK}.ipynb"))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    from labs.course import corpus

    course = throwaway_course.Course.create(tmp_path_factory.mktemp("bad-course"))
    with open(course.root / "nbgrader_config.py", "a") as fh:
        fh.write(f"\nc.SandboxedExecute.timeout = {CELL_TIMEOUT}\n")
    # a deadline, and the "zero" late policy: one good submission arrives a day late
    build.nbgrader("db", "assignment", "add", "lab_2_1_3", "--duedate=2026-01-02 00:00:00 UTC", cwd=course.root)
    good = next(c.source for c in course.source(NOTEBOOK).cells if notebooks.grade_id(c) == ANSWER)
    wrong = corpus.parse(ROOT / "tests" / "corpus" / NOTEBOOK / f"{WRONG}.py").cells[ANSWER]
    release = course.release(NOTEBOOK)
    listener = _Listener()
    attacks.CONTEXT.update(course=str(course.root), port=listener.port)
    for case in SELECTED:
        folder = course.submit(f"bad-{case.name}", {})
        for filename, content in case.make(release, good, wrong).items():
            if isinstance(content, bytes):
                (folder / filename).write_bytes(content)
            else:
                notebooks.write(content, folder / filename)
    course.submit(LATE, {NOTEBOOK: _answered(release, good)},
                  timestamp=dt.datetime(2026, 1, 3, tzinfo=dt.UTC))
    before = _tree(course.root)
    out = io.StringIO()
    t0 = time.perf_counter()
    policy = os.environ.get("LAB_LATE_POLICY")
    os.environ["LAB_LATE_POLICY"] = "zero"
    try:
        res = autograde.autograde(course.root, out=out)
    finally:
        if policy is None:
            del os.environ["LAB_LATE_POLICY"]
        else:
            os.environ["LAB_LATE_POLICY"] = policy
    seconds = time.perf_counter() - t0
    scores_right_after = course.scores()
    time.sleep(3)  # anything a submission left running would act now
    listener.close()
    text = out.getvalue()
    print(text)
    print(f"graded {len(res)} submissions in {seconds:.0f} s")
    yield {"course": course, "results": res, "summary": text, "seconds": seconds, "before": before,
           "after": _tree(course.root), "scores_right_after": scores_right_after, "received": listener.received,
           "strays": _strays()}
    if os.environ.get("LAB_KEEP_COURSE"):
        shutil.copytree(course.root, os.environ["LAB_KEEP_COURSE"], dirs_exist_ok=True)


class _Listener:
    """A loopback TCP listener standing in for the world: anything a submission sends arrives here."""

    def __init__(self):
        self.received: list[bytes] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append(conn.recv(1 << 16) or b"connected")
            conn.close()

    def close(self):
        self.stop.set()
        self.server.close()


# The grader's own, intended changes: a malformed notebook moved to quarantine/, old or duplicate-id
# notebooks repaired in place (the original kept in quarantine/); test_nothing_lost covers them.
REPAIRED = {f"submitted/bad-{name}" for name in ("malformed_json", "old_nbformat", "duplicate_cell_ids")}


def _tree(root) -> dict[str, str]:
    """Every file the course had before grading (what no submission may change): path -> sha256."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and rel.parts[0] not in ("autograded", "feedback", "quarantine", ".lab-grader") \
                and rel.name not in ("gradebook.db", "autograde.log", "grades.csv") and rel.parts[0] != "report" \
                and "/".join(rel.parts[:2]) not in REPAIRED:
            out[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _strays() -> list[str]:
    return [" ".join(p.info["cmdline"] or []) for p in psutil.process_iter(["cmdline"])
            if attacks.STRAY_MARKER in " ".join(p.info["cmdline"] or [])]


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
    assert cli.export(batch["course"].root) == 0
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
        r = batch["results"][f"bad-{case.name}"]
        problems = " | ".join(r.problems + [f"flagged for review: {flag}" for flag in r.review])
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
    before_msgs = autograde.results(course.root)[student].failures
    proc = course.autograde(student=student)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert course.scores()[student] == before
    assert autograde.results(course.root)[student].failures == before_msgs


@pytest.fixture(scope="module")
def feedback(batch):
    """`make feedback` for the whole batch, once (about 1 s a page): the tests below read its pages."""
    assert cli.feedback(batch["course"].root) == 0
    return batch["course"].root / "feedback"


def test_feedback_never_shows_hidden_tests(batch, feedback):
    course = batch["course"]
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
    assert cli.export(course.root) == 0
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
    """An LMS download (zip of `<student>_<id>_<notebook>.ipynb`) lands in submitted/ through `make collect`."""
    (tmp_path / "nbgrader_config.py").write_text((ROOT / "nbgrader_config.py").read_text())
    shutil.copytree(ROOT / "release", tmp_path / "release")  # zip_collect matches release notebooks
    archive = tmp_path / "downloaded" / "lab_2_1_3" / "archive"
    archive.mkdir(parents=True)
    nb = nbformat.writes(notebooks.read(ROOT / "release" / "lab_2_1_3" / f"{NOTEBOOK}.ipynb"))
    with zipfile.ZipFile(archive / "lms_download.zip", "w") as zf:
        zf.writestr(f"alice_1234_{NOTEBOOK}.ipynb", nb)
        zf.writestr(f"bob.smith_98_attempt_{NOTEBOOK}.ipynb", nb)
    out = io.StringIO()
    assert collect.collect(tmp_path, out=out) == 0, out.getvalue()[-3000:]
    for student in ("alice", "bob.smith"):
        assert (tmp_path / "submitted" / student / "lab_2_1_3" / f"{NOTEBOOK}.ipynb").exists()


def test_no_submission_changed_the_course(batch):
    """The source, release, config and every submission are as they were before grading, and no
    file appeared in the course (a planted sitecustomize.py, a classmate's notebook overwritten)."""
    before, after = batch["before"], batch["after"]
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}


def test_no_process_outlives_grading(batch):
    assert batch["strays"] == [], batch["strays"]


def test_the_gradebook_does_not_change_after_grading(batch):
    """Nothing a submission started can write the gradebook once grading is over."""
    assert batch["course"].scores() == batch["scores_right_after"]


def test_nothing_reached_the_network(batch):
    assert batch["received"] == [], batch["received"][:1]


class _LiveCode(HTMLParser):
    """What a browser would run: script elements' text and on* event-handler attributes."""

    def __init__(self):
        super().__init__()
        self.found, self._in_script = [], False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        self.found += [f"<{tag} {k}={v!r}>" for k, v in attrs if k.startswith("on") and "alert" in (v or "")]

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script and "alert(" in data:
            self.found.append(f"<script>{data[:80]}")


_REMOTE = re.compile(r"^\s*(?:https?:)?//", re.I)
_REMOTE_CSS = re.compile(r"url\(\s*[\"']?\s*(?:https?:)?//|@import", re.I)


class _RemoteLoads(HTMLParser):
    """What a browser would fetch from another site on opening the page (links a reader clicks are not loads):
    src, srcset, poster and data of any element, a <link>'s href, url(...) and @import in <style> and style=."""

    def __init__(self):
        super().__init__()
        self.found, self._in_style = [], False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"
        for k, v in attrs:
            v = v or ""
            if (k in ("src", "srcset", "poster", "data") or (tag == "link" and k == "href")) and _REMOTE.match(v) \
                    or k == "style" and _REMOTE_CSS.search(v):
                self.found.append(f"<{tag} {k}={v[:60]!r}>")

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style and _REMOTE_CSS.search(data):
            self.found.append(f"<style>{_REMOTE_CSS.search(data).group(0)}")


def test_feedback_is_inert_html(batch, feedback):
    """Scripts and event handlers a student put in outputs or markdown are inert in feedback
    (escaped text at most), and no output made while grading reaches it."""
    course = batch["course"]
    for page in sorted((course.root / "feedback").glob(f"*/lab_2_1_3/{NOTEBOOK}.html")):
        live = _LiveCode()
        live.feed(page.read_text())
        assert live.found == [], f"{page}: live code survived sanitizing: {live.found[:3]}"
        assert page.stat().st_size < 4_000_000, f"{page} is {page.stat().st_size} bytes"
        # opens offline, calls no third party: no script, stylesheet, image or font from anywhere else
        remote = _RemoteLoads()
        remote.feed(page.read_text())
        assert remote.found == [], f"{page}: loads {remote.found[:3]}"
        assert "MathJax.Hub" not in page.read_text(), page
    # the lesson's math is MathML in the page of a student who kept the lesson's text
    late = course.root / "feedback" / LATE / "lab_2_1_3" / f"{NOTEBOOK}.html"
    assert late.read_text().count("<math ") >= 20, "the lesson's math is not MathML"
    script = course.root / "feedback" / "bad-attack_script" / "lab_2_1_3" / f"{NOTEBOOK}.html"
    assert "&lt;script&gt;alert('submitted')" in script.read_text(), "the submitted output is shown, escaped"
    graded = notebooks.read(course.root / "autograded" / "bad-attack_script" / "lab_2_1_3" / f"{NOTEBOOK}.ipynb")
    outputs = json.dumps([c.get("outputs", []) for c in graded.cells])
    assert "alert('feedback')" not in outputs, "an output made while grading reached the graded notebook"
    assert "application/javascript" not in outputs and "<script>alert" not in outputs


def test_unsafe_mode_is_announced(batch):
    out = io.StringIO()
    autograde.prepare(batch["course"].root, "lab_2_1_3", unsafe=True, out=out)
    assert "UNSAFE" in out.getvalue()
