"""The course on a JupyterHub (labs/hub): the hand-out, the whole cycle in a browser on a real hub, permissions.

The hub test starts a real JupyterHub (PAM, configurable-http-proxy, one server per system user)
with an instructor and two students of its own (random names, removed at the end), an exchange
and a state folder in a throwaway directory. Debian's Chromium, headless, driven by Playwright
(tests/test_browser.py's fixtures and notebook helpers), then does what each person does:

1. the instructor logs in on the hub's login page and clicks the formgrader's Release button;
2. each student logs in, fetches the lab in the Assignments tab (exactly release/), opens the
   lesson from there, types answers into the editor (one the model answers, one a corpus
   mistake), presses Validate (success; the failing test's message) and Submit;
3. from a terminal, the wrong student submits under the right one's name: Collect does not file it;
4. the instructor clicks Collect (its log names the refused submission), Autograde for each
   submission (the project's sandboxed, judged grading: the judge's record in each autograded
   notebook), Generate Feedback and Release Feedback;
5. each student clicks Fetch Feedback and opens the feedback page: their own score and messages,
   no hidden test;
6. the instructor's terminal (JupyterLab's) runs `python -m labs.grading export --course .` as the
   docs say: the scores the students saw.

Screenshots of each step, numbered in order, go to artifacts/browser/hub/ (last-<role>.png: the
page where a step failed). The permission test then attacks what the cycle left, as a student
would: from a shell and from a notebook run as the student. At the end no account, process or
port of the hub is left, and the repository's modes are back.
"""

from __future__ import annotations

import csv
import json
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import tempfile
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from labs import ASSIGNMENT, ROOT, VENV_BIN
from labs import hub as labhub
from labs.course import corpus, notebooks
from labs.hub import handout
from tests import test_browser
from tests.test_browser import Notebook, _solutions, _wait_for, browser, chromium  # noqa: F401 (its fixtures)

LESSON = "01_hardswish"
WRONG = "closed_interval_kinks"               # a corpus mistake (tests/corpus/01_hardswish/)
ARTIFACTS = test_browser.ARTIFACTS / "hub"         # screenshots, numbered in order
PROXY_CACHE = Path(tempfile.gettempdir()) / "lab-hub-proxy"   # configurable-http-proxy, installed once


# --------------------------------------------------------------------------- the hand-out (no hub)

def test_handout_holds_the_release_and_the_environment_and_nothing_else(tmp_path):
    path = handout.build(tmp_path / "h.zip")
    with zipfile.ZipFile(path) as zf:
        files = {n.split("/", 1)[1]: zf.read(n) for n in zf.namelist()}
    released = sorted((ROOT / "release" / ASSIGNMENT).glob("*.ipynb"))
    assert set(files) == {f"{ASSIGNMENT}/{p.name}" for p in released} | {
        "requirements.txt", "environment.yml", "README.md"}
    for p in released:
        assert files[f"{ASSIGNMENT}/{p.name}"] == p.read_bytes(), p.name
    assert files["requirements.txt"] == (ROOT / "requirements.txt").read_bytes()
    readme = files["README.md"].decode()
    assert "pip install -r requirements.txt" in readme and f"jupyter lab {ASSIGNMENT}/01_hardswish.ipynb" in readme
    # no source, no solutions: no hidden test, no solution region, no model answer line
    text = b"\n".join(files.values()).decode()
    for marker in ("BEGIN HIDDEN TESTS", "BEGIN SOLUTION", "_probe(", "solutions/"):
        assert marker not in text, marker
    # the answer proper: the model answer's lines that the stub does not have
    stub = (ROOT / "release" / ASSIGNMENT / f"{LESSON}.ipynb").read_text()
    answer = "\n".join(_solutions(LESSON).values())
    lines = {ln.strip() for ln in answer.splitlines() if len(ln.strip()) > 20 and ln.strip() not in stub}
    assert len(lines) >= 3 and not [ln for ln in lines if ln in text]
    assert handout.build(tmp_path / "again.zip").read_bytes() == path.read_bytes()  # reproducible


# --------------------------------------------------------------------------- the hub

def _free_base() -> int:
    for _ in range(200):
        port = 20000 + secrets.randbelow(20000)
        if all(labhub.port_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise AssertionError("no three free consecutive ports")


def _repo_modes() -> dict[str, tuple[int, int]]:
    return {p.name: (stat.S_IMODE(p.lstat().st_mode), p.lstat().st_gid) for p in ROOT.iterdir()}


@pytest.fixture(scope="module")
def hub():
    if os.geteuid() != 0 or not shutil.which("bwrap") or not shutil.which("npm") or not shutil.which("runuser"):
        reason = "the hub test needs root, bubblewrap, npm and runuser"
        if os.environ.get("LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    tag = secrets.token_hex(3)
    base = Path(tempfile.mkdtemp(prefix="lab-hub-test-"))
    os.chmod(base, 0o755)   # the exchange and the students' Python live here
    settings = labhub.Settings(state=base / "state", exchange=base / "exchange", ip="127.0.0.1",
                               port=_free_base(), instructor=f"lhi{tag}", runtime=base / "env",
                               proxy_dir=PROXY_CACHE)
    students = [f"lha{tag}", f"lhb{tag}"]
    before = _repo_modes()
    t0 = time.monotonic()
    running = labhub.start(settings, students)
    print(f"\nhub: login page in {running.seconds_to_login:.1f} s ({time.monotonic() - t0:.1f} s with the class)")
    state = {"settings": settings, "students": students, "instructor": settings.instructor, "running": running,
             "password": running.users["password"], "base": base}
    uids = {pwd.getpwnam(u).pw_uid for u in [settings.instructor, *students]}
    try:
        yield state
    finally:
        left = labhub.stop(settings, remove=True)
        gone = [u for u in [settings.instructor, *students] if labhub.user_exists(u)]
        after = _repo_modes()
        shutil.rmtree(base, ignore_errors=True)
    assert left == {"processes": [], "ports": []}, left
    assert not labhub.processes_of(uids), "processes of the hub's accounts survived"
    assert not gone, f"accounts left behind: {gone}"
    assert not [p for p in settings.ports if not labhub.port_free(p)]
    assert {k: v for k, v in after.items() if k in before} == before, "the repository's modes were not restored"


def _student_env(state) -> dict:
    s = state["settings"]
    return {"JUPYTER_CONFIG_PATH": f"{ROOT / 'hub' / 'student'}:{ROOT / '.venv' / 'etc' / 'jupyter'}",
            "JUPYTER_PATH": str(ROOT / ".venv" / "share" / "jupyter"), "LAB_HUB_EXCHANGE": str(s.exchange),
            "PATH": f"{s.runtime / 'bin' if (s.runtime / 'bin').exists() else VENV_BIN}:/usr/bin:/bin",
            "LAB_DEVICE": "cpu"}


def _as_student(state, user, *cmd, cwd=None, check=True):
    return labhub.as_user(user, *cmd, env=_student_env(state), cwd=cwd, check=check)


def _nbgrader_as_student(state, user, *args, cwd=None, check=True):
    py = Path(_student_env(state)["PATH"].split(":")[0]) / "python"
    return _as_student(state, user, str(py), "-m", "nbgrader", *args, cwd=cwd, check=check)


# --------------------------------------------------------------------------- the cycle, in a browser

class HubLab:
    """A user's JupyterLab on the hub, as tests/test_browser.py's Notebook drives it: its REST API
    read through the browser's own login (the hub's cookie), nothing else."""

    def __init__(self, page, url: str, user: str):
        self.page, self.user = page, user
        self.url = f"{url}/user/{user}"

    def api(self, path: str):
        r = self.page.request.get(f"{self.url}{path}")
        assert r.ok, f"{self.user}: GET {path}: {r.status}"
        return r.json()

    def kernels_idle(self) -> bool:
        kernels = self.api("/api/kernels")
        return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


class Shots:
    """Screenshots in artifacts/browser/hub/, numbered in the order they were taken."""

    def __init__(self, folder: Path):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder, self.n, self.taken = folder, 0, []

    def __call__(self, page, who: str, what: str) -> Path:
        self.n += 1
        path = self.folder / f"{self.n:02d}-{who}-{what}.png"
        page.screenshot(path=str(path))
        self.taken.append(path.name)
        return path


def _quiet_lab(user: str) -> None:
    """No JupyterLab news prompt (a toast over the notebook, and a request to the internet)."""
    pw = pwd.getpwnam(user)
    folder = Path(pw.pw_dir) / ".jupyter" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    subprocess.run(["chown", "-R", f"{user}:{pw.pw_gid}", str(Path(pw.pw_dir) / ".jupyter")], check=True)


def _login(chrome, url: str, user: str, password: str):
    """The hub's login page, the user's name and password (PAM), their server spawned, JupyterLab up."""
    context = chrome.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto(f"{url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_url(re.compile(rf"/user/{user}/lab"), timeout=120_000)
    page.locator(".jp-LabShell #jp-main-dock-panel").wait_for(timeout=60_000)
    page.locator("#jp-mainmenu-nbgrader, .lm-MenuBar-item:has-text('Nbgrader')").first.wait_for(timeout=30_000)
    return page


def _menu(page, menu: str, item: str) -> None:
    page.locator(".lm-MenuBar-item", has_text=menu).first.click()
    page.locator(".lm-Menu").get_by_role("menuitem", name=item, exact=True).click()


def _assignments(page):
    """The Assignments tab (Nbgrader > Assignment List), refreshed; its panel."""
    tab = page.locator(".lm-TabBar-tab", has_text="Assignments")
    if tab.count():
        tab.first.click()
        page.locator("#refresh_assignments_list").click()
    else:
        _menu(page, "Nbgrader", "Assignment List")
    panel = page.locator("#nbgrader-assignment-list")
    for which in ("released", "fetched", "submitted"):
        panel.locator(f"#{which}_assignments_list_loading").wait_for(state="hidden", timeout=30_000)
    return panel


def _formgrader_action(page, cell, timeout_ms: int = 60_000) -> str:
    """Click a formgrader button (a link in a table cell), wait for its result, return the log; OK."""
    cell.locator("a").click()
    modal = page.locator("#success-modal, #error-modal")
    modal.wait_for(state="visible", timeout=timeout_ms)
    # shown, not fading in (bootstrap's transition): opaque, the dialog in place
    page.wait_for_function("""() => { const m = document.querySelector('.modal.in');
        if (!m) return false;
        const t = getComputedStyle(m.querySelector('.modal-dialog')).transform;
        return getComputedStyle(m).opacity === '1' && (t === 'none' || t === 'matrix(1, 0, 0, 1, 0, 0)'); }""")
    text = modal.inner_text()
    assert modal.get_attribute("id") == "success-modal", text[-3000:]
    return text


def _close_modal(page) -> None:
    page.locator(".modal.in .modal-footer button").click()
    page.locator(".modal").wait_for(state="detached")
    page.locator(".modal-backdrop").wait_for(state="detached")


@pytest.fixture
def opened(request):
    """Each user's browser page, by role; at teardown any page still open (a step failed) is saved
    as last-<role>.png, and every context is closed."""
    pages: dict = {}
    yield pages
    for who, page in pages.items():
        try:
            page.screenshot(path=str(ARTIFACTS / f"last-{who}.png"), timeout=5_000)
        except Exception:  # noqa: BLE001 - a page already closed or broken: nothing to save
            pass
        page.context.close()


def test_hub_cycle_in_the_browser(hub, browser, opened):  # noqa: F811  (browser: tests/test_browser.py's fixture)
    t0 = time.monotonic()
    s, inst, (good, bad) = hub["settings"], hub["instructor"], hub["students"]
    course = labhub.course_dir(s)
    shots = Shots(ARTIFACTS)
    seconds: dict[str, float] = {}
    # The release generated in the instructor's course is exactly the repository's release/.
    for p in (ROOT / "release" / ASSIGNMENT).glob("*.ipynb"):
        assert notebooks.read(course / "release" / ASSIGNMENT / p.name).cells == notebooks.read(p).cells
    for user in (inst, good, bad):
        _quiet_lab(user)

    # 1. The instructor logs in (PAM) and releases the lab with the formgrader's Release button.
    teacher = opened["instructor"] = _login(browser, s.url, inst, hub["password"])
    seconds["instructor login"] = time.monotonic() - t0
    formgrader = f"{s.url}/user/{inst}/formgrader"
    teacher.goto(formgrader)
    row = teacher.locator("tr", has_text=ASSIGNMENT).first
    row.locator("td.release a").wait_for()
    assert "Manage Assignments" in teacher.locator("body").inner_text()
    text = _formgrader_action(teacher, row.locator("td.release"))
    assert f"Successfully released '{ASSIGNMENT}'" in text, text
    shots(teacher, "instructor", "release")
    _close_modal(teacher)
    outbound = s.exchange / labhub.COURSE_ID / "outbound" / ASSIGNMENT
    released = sorted(p.name for p in (ROOT / "release" / ASSIGNMENT).iterdir())
    assert sorted(p.name for p in outbound.iterdir()) == released

    # 2. Students log in (their servers: no formgrader), fetch from the Assignments tab, type their
    #    answers, Validate, Submit.
    wrong = next(e for e in corpus.entries(LESSON) if e.name == WRONG)
    answers = {good: _solutions(LESSON), bad: wrong.cells}
    who = {good: "right", bad: "wrong"}
    students = {}
    for student in (good, bad):
        t1 = time.monotonic()
        page = students[student] = opened[who[student]] = _login(browser, s.url, student, hub["password"])
        assert page.request.get(f"{s.url}/user/{student}/formgrader").status == 404, \
            "a student's server serves the formgrader"
        panel = _assignments(page)
        item = panel.locator("#released_assignments_list .list_item", has_text=ASSIGNMENT)
        item.wait_for()
        shots(page, who[student], "assignments-released")
        item.get_by_role("button", name="Fetch").click()
        fetched = panel.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first
        fetched.wait_for()
        home = Path(pwd.getpwnam(student).pw_dir) / ASSIGNMENT
        files = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
        assert files == sorted(p.name for p in (ROOT / "release" / ASSIGNMENT).glob("*") if p.is_file())
        for p in home.glob("*.ipynb"):
            assert p.read_bytes() == (ROOT / "release" / ASSIGNMENT / p.name).read_bytes()
        shots(page, who[student], "fetched")
        # the lesson, opened from the fetched assignment's list of notebooks
        fetched.locator(".assignment-notebooks-link").first.click()
        fetched.locator("a", has_text=LESSON).first.click()
        nb = Notebook(page, HubLab(page, s.url, student), home / f"{LESSON}.ipynb", ARTIFACTS)
        nb.cells.nth(nb.ncells - 1).wait_for(state="attached", timeout=60_000)
        _wait_for(lambda nb=nb: nb.server.api("/api/kernels"), 60, "the notebook's kernel to start")
        nb.wait_idle(60_000)
        for grade_id, typed in answers[student].items():
            nb.type_answer(grade_id, typed)
        report = nb.validate().inner_text()
        if student == good:
            assert "Success! Your notebook passes all the tests." in report, report[-2000:]
        else:
            assert "expected gradients [0, 1] at x = -3, 3, got [-0.5, 1.5]" in report, report[-2000:]
        shots(page, who[student], "validate")
        nb.close_dialog()
        panel = _assignments(page)
        panel.locator("#fetched_assignments_list .list_item", has_text=ASSIGNMENT).first.get_by_role(
            "button", name="Submit").click()
        panel.locator("#submitted_assignments_list .list_item", has_text=ASSIGNMENT).first.wait_for()
        inbound = list((s.exchange / labhub.COURSE_ID / "inbound").glob(f"{student}+{ASSIGNMENT}+*"))
        assert len(inbound) == 1 and labhub.pwd.getpwuid(inbound[0].stat().st_uid).pw_name == student
        shots(page, who[student], "submitted")
        seconds[f"{who[student]} student"] = time.monotonic() - t1

    # 3. From a terminal, the wrong student submits the untouched release under the right one's
    #    name, after them: Collect must not file it under that name.
    time.sleep(1.1)
    forged = Path(pwd.getpwnam(bad).pw_dir) / "forged" / ASSIGNMENT
    shutil.copytree(ROOT / "release" / ASSIGNMENT, forged)
    subprocess.run(["chown", "-R", f"{bad}:{bad}", str(forged.parent)], check=True)
    _nbgrader_as_student(hub, bad, "submit", ASSIGNMENT, "--student", good, cwd=forged.parent, check=False)
    assert len(list((s.exchange / labhub.COURSE_ID / "inbound").glob(f"{good}+{ASSIGNMENT}+*"))) == 2

    # 4. The instructor: Collect, Autograde (each submission), Generate Feedback, Release Feedback.
    t1 = time.monotonic()
    teacher.goto(formgrader)
    row = teacher.locator("tr", has_text=ASSIGNMENT).first
    row.locator("td.collect a").wait_for()
    log = _formgrader_action(teacher, row.locator("td.collect"))
    assert "NOT COLLECTED" in log and f"names {good}" in log, log
    shots(teacher, "instructor", "collect")
    _close_modal(teacher)
    mine = notebooks.read(course / "submitted" / good / ASSIGNMENT / f"{LESSON}.ipynb")
    gid, typed = next(iter(_solutions(LESSON).items()))
    assert next(c.source for c in mine.cells if notebooks.grade_id(c) == gid).rstrip() == typed.rstrip(), \
        "the forged submission replaced the student's own"
    assert row.locator("td.num-submissions").inner_text().strip() == "2"   # one submission per student
    row.locator("td.num-submissions a").click()
    teacher.wait_for_url(re.compile("manage_submissions"))
    for student in (good, bad):
        line = teacher.locator("tr", has_text=student).first
        line.locator("td.autograde a").wait_for()
        text = _formgrader_action(teacher, line.locator("td.autograde"), timeout_ms=300_000)
        assert f"Successfully autograded '{ASSIGNMENT}' for student '{student}'" in text, text
        shots(teacher, "instructor", f"autograde-{who[student]}")
        _close_modal(teacher)
        graded = notebooks.read(course / "autograded" / student / ASSIGNMENT / f"{LESSON}.ipynb")
        assert graded.metadata.get("lab_grading", {}).get("verdicts"), "not graded by the sandboxed judge"
    teacher.goto(formgrader)
    row = teacher.locator("tr", has_text=ASSIGNMENT).first
    for step, cls, said in (("generate-feedback", "td.generate-feedback", "generated feedback"),
                            ("release-feedback", "td.release-feedback", "released feedback")):
        row.locator(f"{cls} a").wait_for()
        text = _formgrader_action(teacher, row.locator(cls), timeout_ms=120_000)
        assert f"Successfully {said} of '{ASSIGNMENT}'" in text, text
        shots(teacher, "instructor", step)
        _close_modal(teacher)
    seconds["instructor grading"] = time.monotonic() - t1

    # 5. Each student fetches feedback in the Assignments tab and opens it: their own score and
    #    messages, no hidden test.
    scores = {}
    for student in (good, bad):
        page = students[student]
        panel = _assignments(page)
        # the submission with feedback (the wrong student also lists the one forged under the other's name)
        items = panel.locator("#submitted_assignments_list .list_item:not(.nested_list_item)")
        ready = _wait_for(lambda items=items: [i for i, text in enumerate(items.all_inner_texts())
                                               if "(feedback available to fetch)" in text], 30,
                          "feedback to fetch in the Assignments tab")
        assert len(ready) == 1, panel.inner_text()
        submitted = items.nth(ready[0])
        submitted.get_by_role("button", name="Fetch Feedback").click()
        folder = Path(pwd.getpwnam(student).pw_dir) / ASSIGNMENT / "feedback"
        pages = _wait_for(lambda folder=folder: list(folder.rglob(f"{LESSON}.html")), 30, "the feedback")
        assert len(pages) == 1, pages
        html = pages[0].read_text()
        view = submitted.get_by_text("(view feedback)")
        try:
            view.first.wait_for()
        except Exception as err:
            raise AssertionError(f"{who[student]}: no (view feedback) link in:\n{submitted.inner_text()}") from err
        shots(page, who[student], "feedback-fetched")
        view.first.click()
        listing = page.locator(".jp-DirListing-item", has_text=f"{LESSON}.html")
        listing.wait_for()
        listing.dblclick()
        shown = page.frame_locator(".jp-HTMLViewer iframe").locator("body")
        shown.get_by_text("Score:").first.wait_for()
        seen = shown.inner_text()
        shots(page, who[student], "feedback-open")
        for text in (html, seen):
            for marker in ("BEGIN HIDDEN TESTS", "_probe(", "<script>alert"):
                assert marker not in text, (student, marker)
        score = re.search(r"Score: ([\d.]+) / ([\d.]+)", seen)
        assert score, seen[:2000]
        scores[student] = score.groups()
        if student == good:
            assert scores[good][0] == scores[good][1], f"the model answers scored {scores[good]}"
        else:
            assert float(scores[bad][0]) < float(scores[bad][1]), scores[bad]
            assert "Failed" in seen or "failed" in seen, seen[:3000]
            assert good not in seen and good not in html

    # 6. The instructor's terminal runs the course's tools as docs/instructors.md says (`python` is the
    #    venv's, labs importable: no login shell resetting PATH): export gives the scores the students saw.
    t1 = time.monotonic()
    teacher.goto(f"{s.url}/user/{inst}/lab")
    teacher.locator(".jp-LabShell #jp-main-dock-panel").wait_for(timeout=60_000)
    card = teacher.locator(".jp-LauncherCard:visible", has_text="Terminal")
    teacher.locator(".jp-LauncherCard:visible, .lm-TabBar-addButton:visible").first.wait_for()
    if not card.count():
        teacher.locator(".lm-TabBar-addButton:visible").first.click()    # "+": a launcher
    card.first.click()
    terminal = teacher.locator(".jp-Terminal .xterm").first
    terminal.wait_for(timeout=60_000)
    terminal.click()
    done = course / ".autograde.rc"
    teacher.keyboard.type(f"cd ~/{labhub.COURSE_ID} && python -m labs.grading export --course . 2>&1 "
                          f"| tee autograde.log; echo ${{PIPESTATUS[0]}} > {done.name}")
    teacher.keyboard.press("Enter")
    rc = _wait_for(lambda: done.exists() and done.read_text().strip(), 120, "the workflow's export")
    log = (course / "autograde.log").read_text()
    shots(teacher, "instructor", "terminal-workflow-export")
    assert rc == "0", log[-3000:]
    with open(course / "grades.csv", newline="") as f:
        rows = {(r["student_id"], r["notebook"]): r for r in csv.DictReader(f)}
    for student in (good, bad):
        row = rows[(student, LESSON)]
        assert (float(row["score"]), float(row["max_score"])) == tuple(map(float, scores[student])), row
    seconds["terminal export"] = time.monotonic() - t1
    for page in opened.values():
        page.context.close()
    opened.clear()
    seconds["cycle"] = time.monotonic() - t0
    print(f"hub cycle in the browser: {good} {scores[good]}, {bad} {scores[bad]}; "
          + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()) + f"; screenshots: {shots.taken}")
    hub["cycle_done"] = True




PROBE = r"""
import json, os
results = {}
for what, path in PATHS:
    try:
        if what == "list":
            os.listdir(path)
        elif what == "read":
            open(path, "rb").read(1)
        else:
            open(path, "wb").write(b"x")
        results[path] = "ALLOWED"
    except OSError as err:
        results[path] = type(err).__name__
print(json.dumps(results))
"""


def test_hub_permissions_as_a_student(hub):
    if not test_browser.CHROMIUM.exists() and os.environ.get("LAB_REQUIRE_BROWSER") != "1":
        pytest.skip("needs the browser cycle's submissions and feedback (no Chromium: the cycle was skipped)")
    assert hub.get("cycle_done"), "the cycle test must run first (submissions and feedback to attack)"
    s, (good, bad) = hub["settings"], hub["students"]
    course = labhub.course_dir(s)
    ex = s.exchange / labhub.COURSE_ID
    home = Path(pwd.getpwnam(good).pw_dir)
    feedback_page = next((home / ASSIGNMENT / "feedback").rglob(f"{LESSON}.html"))
    attempts = [
        ("list", str(ex / "inbound")), ("list", str(ex / "feedback")),
        ("read", str(home / ASSIGNMENT / f"{LESSON}.ipynb")), ("read", str(feedback_page)),
        ("list", str(home)),
        ("read", str(course / "source" / ASSIGNMENT / f"{LESSON}.ipynb")), ("read", str(course / "gradebook.db")),
        ("list", str(course / "submitted")),
        ("read", str(ROOT / "source" / ASSIGNMENT / f"{LESSON}.ipynb")),
        ("read", str(ROOT / "solutions" / ASSIGNMENT / f"{LESSON}.ipynb")),
        ("list", str(ROOT / "tests" / "corpus")), ("read", str(ROOT / ".git" / "config")),
        ("write", str(ex / "outbound" / ASSIGNMENT / "planted.ipynb")), ("write", str(ex / "feedback" / "x.html")),
    ]
    # Each of these works for the instructor or the owner (so a denial is the permission, not a typo).
    assert all(Path(p).exists() or what == "write" for what, p in attempts)
    script = f"PATHS = {attempts!r}\n{PROBE}"

    # a student's terminal
    shell = _as_student(hub, bad, "python3", "-c", script)
    from_shell = json.loads(shell.stdout.strip().splitlines()[-1])
    # a notebook the student runs (their kernel, their uid)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(script)])
    path = Path(pwd.getpwnam(bad).pw_dir) / "probe.ipynb"
    nbformat.write(nb, str(path))
    os.chown(path, pwd.getpwnam(bad).pw_uid, -1)
    py = Path(_student_env(hub)["PATH"].split(":")[0]) / "python"
    _as_student(hub, bad, str(py), "-m", "nbconvert", "--to", "notebook", "--execute", "--inplace", str(path))
    out = nbformat.read(str(path), as_version=4).cells[0].outputs
    from_notebook = json.loads("".join(o.get("text", "") for o in out).strip().splitlines()[-1])
    for where, results in (("shell", from_shell), ("notebook", from_notebook)):
        allowed = {p: r for p, r in results.items() if r == "ALLOWED"}
        assert not allowed, f"from a student's {where}: {allowed}"
        assert len(results) == len(attempts)
    # and the owner reads their own (the denial above is not a broken path)
    own = labhub.as_user(good, "python3", "-c", f"open({str(feedback_page)!r}).read(1); print('ok')")
    assert own.stdout.strip() == "ok"
    # the exchange still holds only what was put there
    assert not (ex / "outbound" / ASSIGNMENT / "planted.ipynb").exists()
