"""The student's path in a real JupyterLab, driven in a real (headless) Chromium.

JupyterLab is started exactly as `make lab` starts it (`labs.course.lab.command`), on a free
loopback port with a token, in a throwaway course directory (nbgrader_config.py,
source/, release/, and the student's working copy made by `labs.course.lab.prepare`), with
Jupyter's config, data, runtime and settings directories of its own. For each of the
three lessons, in order, the test then does what a student does:

1. opens the notebook and runs all cells: the untouched stub raises
   NotImplementedError inside the first self-check, which fails;
2. types a correct solution into every answer cell through the editor, saves, runs
   all again: every self-check passes, every cell ran and no cell errors;
3. presses nbgrader's Validate: success; with a wrong solution (a corpus entry) typed
   in, Validate reports a failing graded test that the corpus entry names;
4. saves a screenshot of every step under artifacts/browser/<lesson>/.

A second test loads the instructor's formgrader for the course. Waits are explicit
(kernel and prompt states, outputs, dialogs), each bounded; the server and the
browser are shut down in fixture teardowns even when a step fails.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from labs import ASSIGNMENT, ROOT
from labs.course import checks, corpus, lab, notebooks

CHROMIUM = Path(os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium"))
# The closed network refuses Chromium's background connections unless these are off.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts" / "browser"
# Per lesson: a wrong corpus entry (tests/corpus/<lesson>/) whose mistake the visible part of a
# graded test catches, so Validate fails on it, and a phrase Validate's report must show.
LESSONS = {
    "01_hardswish": ("closed_interval_kinks", "expected gradients [0, 1] at x = -3, 3, got [-0.5, 1.5]"),
    "02_checkpointing": ("activations_kept", None),
    "03_saved_tensor_hooks": ("hooks_pack_keeps_tensor", "backward should recompute once, with grad enabled"),
    "04_modern_swish": ("ignores_upstream", None),
}
BUDGET_S = 180                          # one lesson's path
RUN_TIMEOUT_MS = 60_000                 # one "Run All" of the lesson
VALIDATE_TIMEOUT_MS = 90_000            # nbgrader validate runs the notebook in a fresh kernel


# --------------------------------------------------------------------------- helpers

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout_s: float, what: str, interval_s: float = 0.1):
    """Poll `predicate` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(interval_s)


def _solutions(lesson: str) -> dict[str, str]:
    """What a student who solved it types: each of the source's answer cells, region markers dropped."""
    nb = notebooks.read(ROOT / "source" / ASSIGNMENT / f"{lesson}.ipynb")
    return {notebooks.grade_id(c): corpus.model_answer(nb, notebooks.grade_id(c))
            for c in nb.cells if notebooks.is_answer(c) and c.cell_type == "code"}


def _answer_on_disk(path: Path, grade_id: str) -> str | None:
    """The answer cell as saved, or None while Jupyter is still writing the file (read it again)."""
    try:
        nb = notebooks.read(path)
    except (nbformat.reader.NotJSONError, ValueError, OSError):
        return None
    return next(c.source for c in nb.cells if notebooks.grade_id(c) == grade_id)


@dataclass
class Server:
    url: str
    token: str
    course: Path
    log: Path

    def api(self, path: str):
        req = urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def close_sessions(self) -> None:
        """Shut every open notebook's kernel down (the previous lesson's), as a student closing it would."""
        for session in self.api("/api/sessions"):
            req = urllib.request.Request(f"{self.url}/api/sessions/{session['id']}", method="DELETE",
                                         headers={"Authorization": f"token {self.token}"})
            urllib.request.urlopen(req, timeout=10).close()
        _wait_for(lambda: not self.api("/api/kernels"), 20, "the previous kernels to stop")

    def kernels_idle(self) -> bool:
        kernels = self.api("/api/kernels")
        return bool(kernels) and all(k["execution_state"] == "idle" for k in kernels)


def _stop(proc: subprocess.Popen, server: Server | None) -> None:
    """Ask the server to shut down (it stops its kernels), then make sure its group is gone."""
    if proc.poll() is None and server is not None:
        try:
            req = urllib.request.Request(f"{server.url}/api/shutdown", method="POST",
                                         headers={"Authorization": f"token {server.token}"})
            urllib.request.urlopen(req, timeout=5).close()
            proc.wait(timeout=15)
        except (OSError, urllib.error.URLError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        try:
            os.killpg(proc.pid, sig)
            proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = (f"Chromium not found at {CHROMIUM}: the browser test needs Debian's chromium "
                  "(`apt-get install -y chromium`; `make test` installs it when it can)")
        if os.environ.get("LAB_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " and LAB_REQUIRE_BROWSER=1")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="module")
def artifacts() -> Path:
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def server(tmp_path_factory, chromium, artifacts) -> Iterator[Server]:
    """JupyterLab as `make lab` starts it, on a throwaway course; stopped at teardown."""
    started = time.monotonic()
    base = tmp_path_factory.mktemp("browser")
    course = checks.course_copy(base / "course")
    shutil.copytree(ROOT / "release", course / "release")
    lab.prepare(course)
    # No JupyterLab news prompt (a toast over the notebook, and a request to the internet).
    settings = base / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = lab.environment()   # as `make lab` starts it: the repository on PYTHONPATH (our Validate)
    env.update({
        "JUPYTER_CONFIG_DIR": str(base / "jupyter-config"),
        "JUPYTER_RUNTIME_DIR": str(base / "jupyter-runtime"),
        "JUPYTER_DATA_DIR": str(base / "jupyter-data"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "lab-settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "lab-workspaces"),
        "IPYTHONDIR": str(base / "ipython"),
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "LAB_DEVICE": "cpu",
    })
    port, token = _free_port(), secrets.token_hex(16)
    cmd = lab.command(course, f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
                      f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False")
    log = base / "jupyterlab.log"
    srv = Server(url=f"http://127.0.0.1:{port}", token=token, course=course, log=log)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        def up() -> bool:
            if proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
            try:
                return "started" in srv.api("/api/status")
            except (OSError, urllib.error.URLError):
                return False

        _wait_for(up, 60, "JupyterLab to answer /api/status")
        print(f"\nJupyterLab up in {time.monotonic() - started:.1f} s at {srv.url}")
        yield srv
    finally:
        _stop(proc, srv)
        shutil.copy(log, artifacts / "jupyterlab.log")


@pytest.fixture(scope="module")
def browser(chromium) -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, artifacts, request):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(30_000)
    pg = context.new_page()
    try:
        yield pg
    finally:
        try:  # the page as the test left it: what went wrong, when something did
            pg.screenshot(path=str(artifacts / f"last-{request.node.name}.png"), timeout=5_000)
        finally:
            context.close()


# --------------------------------------------------------------------------- the notebook UI

class Notebook:
    """The open notebook in JupyterLab, driven through menus, editor and toolbar."""

    def __init__(self, page, server: Server, path: Path, artifacts: Path):
        self.page, self.server, self.path, self.artifacts = page, server, path, artifacts
        nb = notebooks.read(path)
        self.index = {notebooks.grade_id(c): i for i, c in enumerate(nb.cells) if notebooks.grade_id(c)}
        self.ncells = len(nb.cells)
        self.cells = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell")

    def cell(self, grade_id: str):
        return self.cells.nth(self.index[grade_id])

    def outputs(self, grade_id: str) -> str:
        # textContent: innerText is empty for cells the browser skips rendering (off screen)
        return self.cell(grade_id).locator(".jp-OutputArea").text_content()

    def wait_idle(self, timeout_ms: int) -> None:
        """No cell queued or running ([*]), the toolbar's indicator idle, the kernel idle."""
        self.page.wait_for_function(
            """() => ![...document.querySelectorAll('.jp-InputPrompt')]
                      .some(p => p.textContent.includes('*'))""", timeout=timeout_ms)
        self.page.locator('.jp-Notebook-ExecutionIndicator[data-status="idle"]').first.wait_for(
            timeout=timeout_ms)
        _wait_for(self.server.kernels_idle, timeout_ms / 1000, "the kernel to be idle")

    def run_all(self) -> None:
        self.page.locator(".lm-MenuBar-item", has_text="Run").first.click()
        self.page.locator(".lm-Menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()

    def type_answer(self, grade_id: str, text: str) -> None:
        """Replace an answer cell's source through its CodeMirror editor, save, and check the file."""
        editor = self.cell(grade_id).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")          # command mode, like a student leaving the cell
        self.page.keyboard.press("ControlOrMeta+s")
        _wait_for(lambda: (_answer_on_disk(self.path, grade_id) or "").rstrip() == text.rstrip(), 20,
                  "the typed answer to be saved to disk")

    def validate(self, timeout_ms: int = VALIDATE_TIMEOUT_MS):
        self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar jp-button",
                          has_text="Validate").click()
        dialog = self.page.locator(".jp-Dialog .validation-success, .jp-Dialog .validation-failed")
        dialog.wait_for(timeout=timeout_ms)
        return dialog

    def close_dialog(self) -> None:
        self.page.locator(".jp-Dialog .jp-mod-accept").click()
        self.page.locator(".jp-Dialog").wait_for(state="detached")

    def shot(self, name: str, focus: str | None = None, block: str = "center") -> Path:
        if focus is not None:
            cell = self.cell(focus)
            # block="center": the cell's outputs mid-window, its code and the cell above over them
            target = cell.locator(".jp-OutputArea").first if block == "center" else cell
            target.evaluate("(el, block) => el.scrollIntoView({block})", block)
            cell.locator(".jp-InputArea").wait_for(state="visible")
            # Off-screen cells are painted lazily (content-visibility): wait for two frames.
            self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
            self.page.wait_for_function(
                "el => { const r = el.getBoundingClientRect(); return r.bottom > 0 && r.top < innerHeight"
                " && el.querySelector('.cm-line') !== null; }", arg=cell.element_handle())
        out = self.artifacts / name
        out.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(out))
        return out


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("lesson", list(LESSONS))
def test_student_path_in_jupyterlab(server, page, artifacts, lesson):
    started = time.monotonic()
    path = server.course / lab.notebook_url_path(notebook=f"{lesson}.ipynb")
    nb = Notebook(page, server, path, artifacts)
    cells = notebooks.read(path).cells
    graded = [c for c in cells if notebooks.is_graded_test(c)]
    answers = [notebooks.grade_id(c) for c in cells if notebooks.is_answer(c) and c.cell_type == "code"]
    selfchecks = [notebooks.grade_id(c) for c in cells if (notebooks.grade_id(c) or "").endswith("_selfcheck")]
    assert graded and answers and selfchecks, f"{lesson}: no graded test, answer or self-check cell"
    code = [i for i, c in enumerate(cells) if c.cell_type == "code"]
    shots = f"{lesson}/"

    # 0. The lesson open in JupyterLab (make lab's landing page for the first), with a kernel
    #    and the Validate button.
    server.close_sessions()
    page.goto(f"{server.url}/lab/tree/{lab.notebook_url_path(notebook=f'{lesson}.ipynb')}"
              f"?reset&token={server.token}")  # reset: only this lesson open
    nb.cells.nth(nb.ncells - 1).wait_for(state="attached", timeout=60_000)
    assert nb.cells.count() == nb.ncells
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NotebookPanel-toolbar jp-button",
                 has_text="Validate").wait_for()
    _wait_for(lambda: server.api("/api/kernels"), 30, "the notebook's kernel to start")
    nb.wait_idle(30_000)

    # 1. Untouched release, Run All: the stub raises (inside the first self-check, or in the answer
    #    cell itself where the stub leaves a class attribute to write); Run All stops there, so
    #    no graded test cell runs.
    first = selfchecks[0]
    nb.run_all()
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output",
                 has_text="NotImplementedError").first.wait_for(timeout=RUN_TIMEOUT_MS)
    nb.wait_idle(RUN_TIMEOUT_MS)
    raised = [g for g in (answers[0], first) if "NotImplementedError" in (nb.outputs(g) or "")]
    assert raised, f"no NotImplementedError in {answers[0]} or {first}"
    assert "Self-check passed" not in (nb.outputs(first) or "")
    assert "raise NotImplementedError()" in nb.cell(answers[0]).locator(".cm-content").text_content()
    assert nb.outputs("setup").strip() == "Using device: cpu"
    for cell in graded:
        prompt = nb.cell(notebooks.grade_id(cell)).locator(".jp-InputPrompt").text_content()
        assert prompt.strip() in ("[ ]:", ""), f"{notebooks.grade_id(cell)} ran after the failure: {prompt}"
    nb.shot(shots + "1-release-run-all-stub-raises.png", focus=raised[0], block="start")

    # 2. The correct solutions typed into the answer cells, Run All: every self-check passes,
    #    every code cell ran, no cell errors.
    for grade_id, text in _solutions(lesson).items():
        nb.type_answer(grade_id, text)
    nb.run_all()
    for grade_id in selfchecks:
        nb.cell(grade_id).locator(".jp-OutputArea-output",
                                  has_text="Self-check passed").wait_for(timeout=RUN_TIMEOUT_MS)
    nb.wait_idle(RUN_TIMEOUT_MS)
    errors = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type*='error']")
    assert errors.count() == 0, errors.first.text_content()
    for i in code:
        prompt = nb.cells.nth(i).locator(".jp-InputPrompt").text_content().strip()
        assert prompt.startswith("[") and prompt[1:-2].isdigit(), f"code cell {i} did not run: {prompt!r}"
    nb.shot(shots + "2-solution-typed-selfcheck-passes.png", focus=selfchecks[-1])

    # 3a. Validate (saves, then nbgrader validate on the file): success.
    dialog = nb.validate()
    text = dialog.inner_text()
    assert "Success! Your notebook passes all the tests." in text, text
    nb.shot(shots + "3-validate-success.png")
    nb.close_dialog()

    # 3b. A wrong solution from the corpus: Validate names a failing test the corpus entry loses.
    name, phrase = LESSONS[lesson]
    wrong = next(e for e in corpus.entries(lesson) if e.name == name)
    for grade_id, text in wrong.cells.items():
        nb.type_answer(grade_id, text)
    dialog = nb.validate()
    text = dialog.inner_text()
    assert dialog.get_attribute("class") and "validation-failed" in dialog.get_attribute("class"), text
    failed = {notebooks.grade_id(c) for c in graded if c.source.splitlines()[0] in text}
    assert failed and failed <= wrong.expect_fails, \
        f"Validate reported {failed}, the corpus expects {wrong.expect_fails}:\n{text[:2000]}"
    assert phrase is None or phrase in text, text
    nb.shot(shots + "4-validate-wrong-solution-fails.png")
    nb.close_dialog()

    elapsed = time.monotonic() - started
    print(f"{lesson}: student path in JupyterLab {elapsed:.1f} s; screenshots in {artifacts / lesson}")
    assert elapsed < BUDGET_S, f"the browser path of {lesson} took {elapsed:.0f} s (budget {BUDGET_S} s)"


def test_formgrader_loads_for_the_course(server, page, artifacts):
    page.goto(f"{server.url}/formgrader?token={server.token}")
    row = page.locator("tr", has_text=ASSIGNMENT)
    row.first.wait_for(timeout=30_000)
    body = page.locator("body").inner_text()
    assert "not a subdirectory" not in body and "Manage Assignments" in body, body[:2000]
    page.screenshot(path=str(artifacts / "5-formgrader.png"))
