"""The course on a JupyterHub (labs/hub): the hand-out, the exchange cycle on a real hub, permissions.

The hub test starts a real JupyterHub (PAM, configurable-http-proxy, one server per system user)
with an instructor and two students of its own (random names, removed at the end), an exchange
and a state folder in a throwaway directory, and:

1. the instructor releases the lab (nbgrader release_assignment, as the instructor);
2. each student logs in to the hub (PAM), fetches, answers (one with the model answers, one with
   a corpus mistake), validates and submits, as that system user;
3. a student submits under the other's name: collect files only the real owner's submission;
4. the instructor collects, autogrades, generates and releases feedback through the formgrader's
   own HTTP endpoints (what its buttons post), logged in to the hub; grading is the project's
   sandboxed, judged grading (the judge's record in each autograded notebook);
5. each student fetches feedback and sees their own score and messages, no hidden test;
6. permissions, tried as a student would: from a shell and from a notebook run as the student.

At the end no account, process or port of the hub is left, and the repository's modes are back.
"""

from __future__ import annotations

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

from labs import ASSIGNMENT, ROOT, VENV_BIN, corpus, notebooks
from labs import hub as labhub
from labs.hub import handout
from tests.test_browser import _solutions

LESSON = "01_hardswish"
WRONG = "closed_interval_kinks"               # a corpus mistake (tests/corpus/01_hardswish/)
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


def _as_student(state, user, *cmd, check=True):
    return labhub.as_user(user, *cmd, env=_student_env(state), check=check)


def _nbgrader_as_student(state, user, *args, check=True):
    py = Path(_student_env(state)["PATH"].split(":")[0]) / "python"
    return _as_student(state, user, str(py), "-m", "nbgrader", *args, check=check)


class HubSession:
    """A user logged in to the hub with a password (PAM), their server spawned."""

    def __init__(self, url: str, user: str, password: str):
        import requests

        self.url, self.user, self.s = url, user, requests.Session()
        page = self.s.get(f"{url}/hub/login", timeout=10)
        xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
        r = self.s.post(f"{url}/hub/login?next=/hub/spawn/{user}", timeout=120,
                        data={"username": user, "password": password, "_xsrf": xsrf})
        assert r.status_code == 200 and "/hub/login" not in r.url, f"{user} could not log in: {r.url}"
        deadline = time.monotonic() + 120
        while not self._lab_up():
            assert time.monotonic() < deadline, f"{user}'s server did not start"
            time.sleep(0.5)

    def _lab_up(self) -> bool:
        r = self.s.get(f"{self.url}/user/{self.user}/lab", timeout=30)
        return r.status_code == 200 and "/hub/" not in r.url and "jupyter-config-data" in r.text

    def get(self, path: str):
        return self.s.get(f"{self.url}/user/{self.user}{path}", timeout=60)

    def post(self, path: str):
        self.get("/formgrader")  # the _xsrf cookie
        token = self.s.cookies.get("_xsrf", path=f"/user/{self.user}/") or self.s.cookies.get("_xsrf")
        return self.s.post(f"{self.url}/user/{self.user}{path}", headers={"X-XSRFToken": token}, timeout=600)


def _answer(path: Path, cells: dict[str, str], owner: str) -> None:
    nb = notebooks.read(path)
    for cell in nb.cells:
        if notebooks.grade_id(cell) in cells:
            cell.source = cells[notebooks.grade_id(cell)]
    nbformat.write(nb, str(path))
    pw = pwd.getpwnam(owner)
    os.chown(path, pw.pw_uid, pw.pw_gid)


def test_hub_cycle_release_fetch_submit_grade_feedback(hub):
    t0 = time.monotonic()
    s, inst, (good, bad) = hub["settings"], hub["instructor"], hub["students"]
    course = labhub.course_dir(s)
    # The release generated in the instructor's course is exactly the repository's release/.
    for p in (ROOT / "release" / ASSIGNMENT).glob("*.ipynb"):
        assert notebooks.read(course / "release" / ASSIGNMENT / p.name).cells == notebooks.read(p).cells

    # 1. The instructor logs in; the formgrader is there; releases the lab.
    teacher = HubSession(s.url, inst, hub["password"])
    assert "Manage Assignments" in teacher.get("/formgrader").text
    r = teacher.post(f"/formgrader/api/assignment/{ASSIGNMENT}/release")
    assert r.status_code == 200 and json.loads(r.text)["success"], r.text[-2000:]
    outbound = s.exchange / labhub.COURSE_ID / "outbound" / ASSIGNMENT
    released = sorted(p.name for p in (ROOT / "release" / ASSIGNMENT).iterdir())
    assert sorted(p.name for p in outbound.iterdir()) == released

    # 2. Students log in (their servers: no formgrader), fetch, answer, validate, submit.
    wrong = next(e for e in corpus.entries(LESSON) if e.name == WRONG)
    answers = {good: _solutions(LESSON), bad: wrong.cells}
    for student in (good, bad):
        session = HubSession(s.url, student, hub["password"])
        assert session.get("/formgrader").status_code == 404, "a student's server serves the formgrader"
        _nbgrader_as_student(hub, student, "fetch_assignment", ASSIGNMENT)
        home = Path(pwd.getpwnam(student).pw_dir) / ASSIGNMENT
        fetched = sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if p.is_file())
        assert fetched == sorted(p.name for p in (ROOT / "release" / ASSIGNMENT).glob("*") if p.is_file())
        for p in home.glob("*.ipynb"):
            assert p.read_bytes() == (ROOT / "release" / ASSIGNMENT / p.name).read_bytes()
        _answer(home / f"{LESSON}.ipynb", answers[student], student)
        v = _nbgrader_as_student(hub, student, "validate", str(home / f"{LESSON}.ipynb"), check=False)
        if student == good:
            assert "Success! Your notebook passes all the tests." in v.stdout, v.stdout[-2000:]
        else:
            assert "VALIDATION FAILED" in v.stdout or "failed" in v.stdout.lower(), v.stdout[-2000:]
        _nbgrader_as_student(hub, student, "submit", ASSIGNMENT)

    # 3. The bad student submits the untouched release under the good one's name, after them.
    time.sleep(1.1)
    forged = Path(pwd.getpwnam(bad).pw_dir) / "forged" / ASSIGNMENT
    shutil.copytree(ROOT / "release" / ASSIGNMENT, forged)
    subprocess.run(["chown", "-R", f"{bad}:{bad}", str(forged.parent)], check=True)
    _nbgrader_as_student(hub, bad, "submit", ASSIGNMENT, "--student", good, check=False)

    # 4. Collect, autograde, feedback: the formgrader's endpoints, as the instructor.
    r = teacher.post(f"/formgrader/api/assignment/{ASSIGNMENT}/collect")
    assert r.status_code == 200, r.text[-2000:]
    log = json.loads(r.text)
    assert json.loads(r.text)["success"], log
    assert "NOT COLLECTED" in log["log"] and f"names {good}" in log["log"], log["log"]
    mine = notebooks.read(course / "submitted" / good / ASSIGNMENT / f"{LESSON}.ipynb")
    typed = next(iter(_solutions(LESSON).items()))
    assert next(c.source for c in mine.cells if notebooks.grade_id(c) == typed[0]) == typed[1], \
        "the forged submission replaced the student's own"
    for student in (good, bad):
        r = teacher.post(f"/formgrader/api/submission/{ASSIGNMENT}/{student}/autograde")
        assert r.status_code == 200 and json.loads(r.text)["success"], r.text[-3000:]
        graded = notebooks.read(course / "autograded" / student / ASSIGNMENT / f"{LESSON}.ipynb")
        assert graded.metadata.get("lab_grading", {}).get("verdicts"), "not graded by the sandboxed judge"
    for step in ("generate_feedback", "release_feedback"):
        r = teacher.post(f"/formgrader/api/assignment/{ASSIGNMENT}/{step}")
        assert r.status_code == 200 and json.loads(r.text)["success"], r.text[-3000:]

    # 5. Each student fetches feedback: their own score and messages, no hidden test.
    full = wrong_lost = None
    for student in (good, bad):
        _nbgrader_as_student(hub, student, "fetch_feedback", ASSIGNMENT)
        pages = list((Path(pwd.getpwnam(student).pw_dir) / ASSIGNMENT / "feedback").rglob(f"{LESSON}.html"))
        assert len(pages) == 1, pages
        html = pages[0].read_text()
        for marker in ("BEGIN HIDDEN TESTS", "_probe(", "<script>alert"):
            assert marker not in html, (student, marker)
        score = re.search(r"Score: ([\d.]+) / ([\d.]+)", html)
        assert score, html[:2000]
        if student == good:
            full = score.groups()
            assert full[0] == full[1], f"the model answers scored {full}"
        else:
            wrong_lost = score.groups()
            assert float(wrong_lost[0]) < float(wrong_lost[1]), wrong_lost
            assert "Failed" in html or "failed" in html
            assert good not in html
    print(f"hub cycle in {time.monotonic() - t0:.1f} s: {good} {full}, {bad} {wrong_lost}")
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
