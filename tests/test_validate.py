"""Validate tells the truth before submission (labs/course/validate.py): nbgrader's result, then what
the grader's review scan will flag, in plain words.

1. Fast: the review rules the hub publishes give the grader's findings exactly (every corpus answer,
   planted attacks) and hold no hidden test and no solution; the reply for honest notebooks has no
   flag; planted `import os`, `exec` and a scratch cell that opens a file are named in plain words;
   nbgrader's own failures, changed cells and errors stay as nbgrader gave them.
2. A real JupyterLab started as `make lab` starts it (tests/test_browser.py's server fixture, on a
   throwaway course): the Validate URL's reply, nbgrader's validation included.
3. The same server in headless Chromium: Validate's dialog shows the flag (a screenshot under
   artifacts/browser/validate/).
"""

from __future__ import annotations

import copy
import json
import shutil
import urllib.request
from pathlib import Path

import nbformat
import pytest

from labs import ASSIGNMENT, ROOT
from labs.course import build, checks, corpus, lab, notebooks, validate
from labs.grading import plan, scan

from .test_browser import (  # noqa: F401  (fixtures: the server as `make lab` starts it, the browser)
    ARTIFACTS,
    Notebook,
    browser,
    chromium,
    page,
    server,
)

LESSONS = [p.stem for p in notebooks.lesson_paths(ROOT / "source")]
LESSON = "01_hardswish"
PASSED = {"success": True, "value": {}}  # nbgrader's reply for a notebook that passes


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    """The release as source/ builds it now (nbgrader generate_assignment on a throwaway course):
    what a student starts from, even while release/ lags behind a lesson being edited."""
    course = checks.course_copy(tmp_path_factory.mktemp("validate") / "course")
    build.build_release(course)
    return course / "release" / ASSIGNMENT


def _source(release: Path, lesson: str = LESSON):
    """The source notebook the release was built from (a snapshot: source/ may be edited meanwhile)."""
    return notebooks.read(release.parents[1] / "source" / ASSIGNMENT / f"{lesson}.ipynb")


def _answers(release: Path, lesson: str = LESSON) -> dict[str, str]:
    """What a student who solved it types: each answer cell of the source, region markers dropped."""
    src = _source(release, lesson)
    return {notebooks.grade_id(c): corpus.model_answer(src, notebooks.grade_id(c))
            for c in src.cells if notebooks.is_answer(c) and c.cell_type == "code"}


def _student(release: Path, entry: corpus.Entry):
    return entry.apply(notebooks.read(release / f"{entry.notebook}.ipynb"), _source(release, entry.notebook))


def _solved(release: Path, lesson: str = LESSON, **replace: str):
    """The release with every answer cell solved; `replace`: grade_id -> text put in its place."""
    nb = notebooks.read(release / f"{lesson}.ipynb")
    answers = {**_answers(release, lesson), **replace}
    for cell in nb.cells:
        if notebooks.grade_id(cell) in answers:
            cell.source = answers[notebooks.grade_id(cell)]
    return nb


def _first_answer(release: Path, lesson: str = LESSON) -> str:
    return next(iter(_answers(release, lesson)))


def _reply(release: Path, nb, response=PASSED, lesson: str = LESSON, tmp_path=None) -> dict:
    """The Validate reply for `nb`, saved as a student's lesson, given nbgrader's `response`; the
    course (its source/) is the release's."""
    path = _saved(nb, lesson, tmp_path)
    return validate.review_response(copy.deepcopy(response), path, release.parents[1])


def _saved(nb, lesson: str, tmp_path: Path) -> Path:
    """`nb` saved as a student's lesson (the assignment's folder, the lesson's name)."""
    path = tmp_path / ASSIGNMENT / f"{lesson}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


HONEST = [e for e in corpus.entries() if e.expect_full and not e.expect_review]
PLANTED = {  # what a student might leave in an answer cell, and what the dialog must say of it
    "import os": ("import os\n", "imports os", "reaches files or the operating system"),
    "exec": ('exec("y = 1")\n', "uses exec", "reaches Python's builtins or the import system"),
}


# --------------------------------------------------------------------------- 1. fast

@pytest.mark.parametrize("entry", corpus.entries(), ids=lambda e: f"{e.notebook}/{e.name}")
def test_published_rules_give_the_graders_findings(entry, release):
    """The hub's students scan against the published rules, the grader against the source: the same
    findings, whatever the answer (honest, wrong, tampering)."""
    src = _source(release, entry.notebook)
    nb = _student(release, entry)
    assert validate.review(nb, validate.rules(src)) == validate.review(nb, src)


@pytest.mark.parametrize("lesson", LESSONS)
@pytest.mark.parametrize("planted", sorted(PLANTED) + ["grader name", "scratch open"])
def test_published_rules_flag_what_the_grader_flags(lesson, planted, release):
    src = _source(release, lesson)
    hidden = sorted(scan.reserved_names(src) - {"_probe"})
    answer = _first_answer(release, lesson)
    text = {"grader name": f"{hidden[-1]} = 0\n", "scratch open": ""}.get(planted, PLANTED.get(planted, ("",))[0])
    nb = _solved(release, lesson, **{answer: text + _answers(release, lesson)[answer]})
    if planted == "scratch open":
        nb.cells.append(nbformat.v4.new_code_cell("print(open('notes.txt').read())"))
    found = validate.review(nb, src)
    assert found, f"{planted}: the grader's scan flags nothing"
    assert validate.review(nb, validate.rules(src)) == found


@pytest.mark.parametrize("lesson", LESSONS)
def test_published_rules_hold_no_hidden_test_and_no_solution(lesson, release):
    """No line of a hidden test or a solution that the release does not show anyway."""
    src = _source(release, lesson)
    text = json.dumps(validate.rules(src))
    shown = json.dumps(notebooks.read(release / f"{lesson}.ipynb"))
    secret = set()
    for cell in src.cells:
        inside = None
        for line in cell.source.splitlines():
            if line.strip() in ("### BEGIN HIDDEN TESTS", "### BEGIN SOLUTION"):
                inside = line
            elif line.strip() in ("### END HIDDEN TESTS", "### END SOLUTION"):
                inside = None
            elif inside and len(line.strip()) > 12 and not line.strip().startswith("#"):
                secret.add(line.strip())
    assert secret, "no hidden test or solution line found to look for"
    secret = {s for s in secret if json.dumps(s)[1:-1] not in shown}
    assert secret, "every hidden test and solution line is in the release"
    leaked = sorted(s for s in secret if json.dumps(s)[1:-1] in text)
    assert not leaked, leaked[:5]
    assert "BEGIN SOLUTION" not in text


@pytest.mark.parametrize("lesson", LESSONS)
def test_the_solution_shows_no_flag(lesson, release, tmp_path):
    reply = _reply(release, _solved(release, lesson), lesson=lesson, tmp_path=tmp_path)
    assert reply["review"] == [] and reply["value"] == {} and reply["success"] is True, reply["review"]
    reply = _reply(release, notebooks.read(release / f"{lesson}.ipynb"), lesson=lesson, tmp_path=tmp_path)
    assert reply["review"] == [], reply["review"]  # the untouched release


@pytest.mark.parametrize("entry", HONEST, ids=lambda e: f"{e.notebook}/{e.name}")
def test_an_honest_corpus_answer_shows_no_flag(entry, release, tmp_path):
    reply = _reply(release, _student(release, entry), lesson=entry.notebook, tmp_path=tmp_path)
    assert reply["review"] == [] and reply["value"] == {}, reply["review"]


@pytest.mark.parametrize("planted", sorted(PLANTED))
def test_a_planted_flag_is_named_in_plain_words(planted, release, tmp_path):
    code, what, meaning = PLANTED[planted]
    answer = _first_answer(release)
    reply = _reply(release, _solved(release, **{answer: code + _answers(release)[answer]}), tmp_path=tmp_path)
    assert [(f["cell"], f["what"]) for f in reply["review"]] == [(answer, what)]
    assert reply["success"] is True and reply["nbgrader"] == {}   # nbgrader's own result, unchanged
    (entry,) = reply["value"]["failed"]                            # where the labextension shows it
    assert entry["source"] == f"{answer}: flagged for review (not a test failure)\n" \
        f"  line 1: {what} ({meaning})\n      {code.strip()}"
    assert "Not a test failure" in entry["error"] and "nbgrader's tests passed" in entry["error"]


def test_a_scratch_cell_is_flagged_only_for_what_it_reaches(release, tmp_path):
    nb = _solved(release)
    nb.cells.append(nbformat.v4.new_code_cell("x = torch.linspace(-4, 4, 9)\nprint(hard_swish(x) - F.hardswish(x))"))
    assert _reply(release, nb, tmp_path=tmp_path)["review"] == []          # comparing with the built-in: fine
    nb.cells.append(nbformat.v4.new_code_cell("print(open('notes.txt').read())"))
    reply = _reply(release, nb, tmp_path=tmp_path)
    cell = f"cell {len(nb.cells) - 1}"
    assert [(f["cell"], f["what"]) for f in reply["review"]] == [(cell, "uses open")]
    assert reply["value"]["failed"][0]["source"].startswith(f"{cell}: flagged for review")
    assert "      print(open('notes.txt').read())" in reply["value"]["failed"][0]["source"]


def test_nbgraders_failure_stays_first_and_the_flag_follows(release, tmp_path):
    failure = {"source": "assert False", "error": "<span>AssertionError</span>"}
    answer = _first_answer(release)
    nb = _solved(release, **{answer: 'exec("y = 1")\n' + _answers(release)[answer]})
    reply = _reply(release, nb, {"success": True, "value": {"failed": [failure]}}, tmp_path=tmp_path)
    assert reply["nbgrader"] == {"failed": [failure]}
    first, flag = reply["value"]["failed"]
    assert first == failure
    assert "uses exec" in flag["source"] and "nbgrader's failures are listed above" in flag["error"]


@pytest.mark.parametrize("value", [{"changed": [{"source": "x"}]},
                                   {"type_changed": [{"source": "x", "old_type": "code", "new_type": "markdown"}]}])
def test_changed_cells_are_shown_as_nbgrader_gives_them(value, release, tmp_path):
    answer = _first_answer(release)
    nb = _solved(release, **{answer: "import os\n" + _answers(release)[answer]})
    reply = _reply(release, nb, {"success": True, "value": value}, tmp_path=tmp_path)
    assert reply["value"] == value and reply["review"][0]["what"] == "imports os"


def test_an_error_of_nbgrader_keeps_its_text_and_lists_the_flag(release, tmp_path):
    answer = _first_answer(release)
    nb = _solved(release, **{answer: "import os\n" + _answers(release)[answer]})
    reply = _reply(release, nb, {"success": False, "value": "Traceback: boom"}, tmp_path=tmp_path)
    assert reply["success"] is False and reply["value"].startswith("Traceback: boom\n")
    assert "imports os" in reply["value"]


def test_a_notebook_that_is_no_lesson_says_the_scan_did_not_run(release, tmp_path):
    reply = _reply(release, _solved(release), lesson="not_a_lesson", tmp_path=tmp_path)
    assert reply["review"] == [] and "could not run" in reply["review_note"]
    assert "could not run" in reply["value"]["failed"][0]["error"]


def test_published_rules_are_found_where_the_hub_puts_them(release, tmp_path, monkeypatch):
    source = release.parents[1] / "source" / ASSIGNMENT
    exchange = tmp_path / "exchange"
    written = validate.write_rules(source, exchange / "course" / validate.REVIEW_DIR / ASSIGNMENT)
    assert sorted(p.name for p in written) == sorted(p.name for p in source.glob("*.ipynb"))
    monkeypatch.setenv("LAB_HUB_EXCHANGE", str(exchange))
    monkeypatch.setenv("LAB_HUB_COURSE_ID", "course")
    student = tmp_path / "home" / ASSIGNMENT / f"{LESSON}.ipynb"
    found = validate.find_rules(student, tmp_path / "no-course")  # no source/ readable here
    assert found is not None and json.dumps(found) == json.dumps(notebooks.read(written[0].parent / student.name))
    monkeypatch.delenv("LAB_HUB_EXCHANGE")
    assert validate.find_rules(student, tmp_path / "no-course") is None


# --------------------------------------------------------------------------- what Validate runs

VALIDATE_LESSON = "03_saved_tensor_hooks"   # the quickest lesson to run whole
VALIDATE_WRONG = "hooks_pack_keeps_tensor"  # a corpus mistake a visible part of a graded test catches


def _release_code(release: Path, lesson: str) -> set[str]:
    return {c.source.strip() for c in notebooks.read(release / f"{lesson}.ipynb").cells if c.cell_type == "code"}


@pytest.mark.parametrize("lesson", LESSONS)
def test_published_rules_mark_the_same_show_only_cells(lesson, release):
    """On the hub, Validate reads which cells only show from the published rules: the source's."""
    expected = _release_code(release, lesson) & plan.skipped_sources(_source(release, lesson))
    assert expected, f"{lesson}: no show-only cell in the release"
    rules = validate.rules(_source(release, lesson))
    assert _release_code(release, lesson) & plan.skipped_sources(rules) == expected


def test_validate_skips_what_grading_skips_and_keeps_the_text(release, tmp_path):
    nb = _solved(release, VALIDATE_LESSON)
    path = _saved(nb, VALIDATE_LESSON, tmp_path)
    skip = validate.show_only(path, release.parents[1])
    out = copy.deepcopy(nb)
    validate.skipping_execute(skip)(timeout=120).preprocess(out, {"metadata": {"path": str(path.parent)}})
    before = [c for c in nb.cells if c.cell_type == "code"]
    after = [c for c in out.cells if c.cell_type == "code"]
    skipped = plan.skip_plan([c.source for c in before], skip)
    assert [c.source for c in after] == [c.source for c in before]  # nbgrader's checksums see what was saved
    solved = {c.source.strip(): c.outputs for c in notebooks.read(ROOT / "solutions" / ASSIGNMENT /
                                                                    f"{VALIDATE_LESSON}.ipynb").cells
              if c.cell_type == "code"}
    assert any(solved.get(before[i].source.strip()) for i in skipped), "no skipped cell shows anything when run"
    assert all(after[i].outputs == [] for i in skipped)
    ran = [i for i in range(len(after)) if i not in skipped]
    assert all(after[i].execution_count for i in ran)
    graded = [i for i in ran if notebooks.is_graded_test(after[i])]
    assert graded and all(not any(o.get("output_type") == "error" for o in after[i].outputs) for i in graded)
    # a notebook that looks names up dynamically runs every cell, as grading runs it
    dynamic = [c.source for c in before] + ["print(sorted(globals())[:1])"]
    assert plan.skip_plan(dynamic, skip) == set()


def test_validate_gives_nbgraders_verdict_running_what_grading_runs(release, tmp_path):
    from nbgrader.validator import Validator

    entry = next(e for e in corpus.entries(VALIDATE_LESSON) if e.name == VALIDATE_WRONG)
    path = _saved(_student(release, entry), VALIDATE_LESSON, tmp_path)
    whole = Validator().validate(str(path))
    ours = validate.validator(validate.show_only(path, release.parents[1]))().validate(str(path))
    assert ours.get("failed"), ours
    assert [f["source"] for f in ours["failed"]] == [f["source"] for f in whole.get("failed", [])]
    assert set(ours) == set(whole)


# --------------------------------------------------------------------------- 2., 3. a real server

@pytest.fixture(scope="module")
def artifacts():
    """This module's screenshots and server log (test_browser's fixture, overridden: its own folder)."""
    out = ARTIFACTS / "validate"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    return out


def _post_validate(srv, path: str) -> dict:
    req = urllib.request.Request(f"{srv.url}/assignments/validate", data=json.dumps({"path": path}).encode(),
                                 method="POST", headers={"Authorization": f"token {srv.token}",
                                                         "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=180) as resp:
        return json.load(resp)


def test_the_validate_url_of_make_labs_server_lists_the_flags(server, release):  # noqa: F811
    """The reply of the real handler, nbgrader's validation run: a passing notebook with a planted
    import, a failing one (a corpus mistake) with a planted exec. (A solved notebook's "Success!"
    through the same server command: tests/test_browser.py.)"""
    answer = _first_answer(release)
    wrong = next(e for e in corpus.entries(LESSON) if e.name == "closed_interval_kinks")
    cases = {
        "planted": (_solved(release, **{answer: "import os\n" + _answers(release)[answer]}), ["imports os"]),
        "wrong": (_solved(release, **{g: ('exec("y = 1")\n' if i == 0 else "") + t
                             for i, (g, t) in enumerate(wrong.cells.items())}), ["uses exec"]),
    }
    for name, (nb, flags) in cases.items():
        rel = f"{lab.WORK}/{name}/{ASSIGNMENT}/{LESSON}.ipynb"
        (server.course / rel).parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, str(server.course / rel))
        reply = _post_validate(server, rel)
        assert reply["success"] is True, reply
        assert [f["what"] for f in reply["review"]] == flags, (name, reply["review"])
        nbgrader_failed = reply["nbgrader"].get("failed", [])
        assert bool(nbgrader_failed) == (name == "wrong"), (name, reply["nbgrader"])
        assert reply["value"].get("failed", [])[:len(nbgrader_failed)] == nbgrader_failed
        assert len(reply["value"].get("failed", [])) == len(nbgrader_failed) + bool(flags)
    # nbgrader's version handler is served beside it (the labextension asks before validating)
    req = urllib.request.Request(f"{server.url}/nbgrader_version?version=0",
                                 headers={"Authorization": f"token {server.token}"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.load(resp)["success"] is False   # "0" is no nbgrader version: the mismatch message


def test_validate_in_jupyterlab_shows_the_flag(server, page, artifacts, release):  # noqa: F811
    rel = lab.notebook_url_path(notebook=f"{LESSON}.ipynb")
    path = server.course / rel
    answer = _first_answer(release)
    nbformat.write(_solved(release), str(path))  # the other answers solved; this one typed below
    server.close_sessions()
    page.goto(f"{server.url}/lab/tree/{rel}?reset&token={server.token}")
    nb = Notebook(page, server, path, artifacts)
    nb.cells.nth(nb.ncells - 1).wait_for(state="attached", timeout=60_000)
    nb.type_answer(answer, "import os\n" + _answers(release)[answer])
    text = nb.validate().inner_text()
    nb.shot("flagged.png")
    assert "Not a test failure: flagged for review." in text, text[-2000:]
    assert "nbgrader's tests passed." in text, text[-2000:]
    assert "line 1: imports os (reaches files or the operating system)" in text, text[-2000:]
    nb.close_dialog()
