"""The student's path in a real JupyterLab, driven in a real (headless) Chromium.

JupyterLab is started exactly as `make lab` starts it (`labs.lab.command`), on a free
loopback port with a token, in a throwaway course directory (nbgrader_config.py,
source/, release/, and the student's working copy made by `labs.lab.prepare`), with
Jupyter's config, data, runtime and settings directories of its own. For the
HardSwish lesson the test then does what a student does:

1. opens the notebook and runs all cells: the untouched stub raises
   NotImplementedError inside the self-check, which fails;
2. types a correct solution into the answer cell through the editor, saves, runs
   all again: the self-check passes and no cell errors;
3. presses nbgrader's Validate: success; with a wrong solution typed in, Validate
   reports the failing graded test;
4. saves a screenshot of every step under artifacts/browser/.

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

import pytest

from labs import ASSIGNMENT, ROOT, checks, corpus, lab, notebooks

CHROMIUM = Path(os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium"))
# The closed network refuses Chromium's background connections unless these are off.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-quic",
]
ARTIFACTS = ROOT / "artifacts" / "browser"
NOTEBOOK = "01_hardswish.ipynb"
ANSWER_ID, SELFCHECK_ID = "hardswish_answer", "hardswish_selfcheck"
WRONG_ENTRY = "closed_interval_kinks"   # tests/corpus/01_hardswish/: fails test_kinks visibly
BUDGET_S = 120                          # the whole browser test, server start included
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


def _solution_text() -> str:
    """What a student who solved it types: the source's answer cell, region markers dropped."""
    nb = notebooks.read(ROOT / "source" / ASSIGNMENT / NOTEBOOK)
    (cell,) = [c for c in nb.cells if notebooks.grade_id(c) == ANSWER_ID]
    lines = [ln for ln in cell.source.splitlines()
             if notebooks.SOLUTION_BEGIN not in ln and notebooks.SOLUTION_END not in ln]
    return "\n".join(lines) + "\n"


def _answer_on_disk(path: Path) -> str:
    nb = notebooks.read(path)
    return next(c.source for c in nb.cells if notebooks.grade_id(c) == ANSWER_ID)


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
                  "(`apt-get install -y chromium`; .ci/run installs it when it can)")
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
    env = dict(os.environ)
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

    def type_answer(self, text: str) -> None:
        """Replace the answer cell's source through its CodeMirror editor, save, and check the file."""
        editor = self.cell(ANSWER_ID).locator(".cm-content")
        editor.scroll_into_view_if_needed()
        editor.click()
        self.page.keyboard.press("ControlOrMeta+a")
        self.page.keyboard.insert_text(text)
        self.page.keyboard.press("Escape")          # command mode, like a student leaving the cell
        self.page.keyboard.press("ControlOrMeta+s")
        _wait_for(lambda: _answer_on_disk(self.path).rstrip() == text.rstrip(), 20,
                  "the typed answer to be saved to disk")

    def validate(self, timeout_ms: int = VALIDATE_TIMEOUT_MS):
        self.page.locator(".jp-NotebookPanel-toolbar jp-button", has_text="Validate").click()
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
        self.page.screenshot(path=str(out))
        return out


# --------------------------------------------------------------------------- tests

def test_student_path_in_jupyterlab(server, page, artifacts):
    started = time.monotonic()
    path = server.course / lab.notebook_url_path(notebook=NOTEBOOK)
    nb = Notebook(page, server, path, artifacts)
    graded = [c for c in notebooks.read(path).cells if notebooks.is_graded_test(c)]

    # 0. `make lab`'s landing page: the lesson itself, with a kernel and the Validate button.
    page.goto(f"{server.url}/?token={server.token}")  # default_url: the lesson
    nb.cells.nth(nb.ncells - 1).wait_for(state="attached", timeout=60_000)
    assert nb.cells.count() == nb.ncells
    page.locator(".jp-NotebookPanel-toolbar jp-button", has_text="Validate").wait_for()
    _wait_for(lambda: server.api("/api/kernels"), 30, "the notebook's kernel to start")
    nb.wait_idle(30_000)

    # 1. Untouched release, Run All: the stub raises inside the self-check, which fails;
    #    Run All stops there, so no graded test cell runs.
    nb.run_all()
    nb.cell(SELFCHECK_ID).locator(".jp-OutputArea-output[data-mime-type*='error'], .jp-RenderedText",
                                  has_text="NotImplementedError").first.wait_for(timeout=RUN_TIMEOUT_MS)
    nb.wait_idle(RUN_TIMEOUT_MS)
    selfcheck = nb.outputs(SELFCHECK_ID)
    assert "NotImplementedError" in selfcheck and "Self-check passed" not in selfcheck, selfcheck
    assert "raise NotImplementedError()" in nb.cell(ANSWER_ID).locator(".cm-content").text_content()
    assert nb.outputs("setup").strip() == "Using device: cpu"
    for cell in graded:
        prompt = nb.cell(notebooks.grade_id(cell)).locator(".jp-InputPrompt").text_content()
        assert prompt.strip() in ("[ ]:", ""), f"{notebooks.grade_id(cell)} ran after the failure: {prompt}"
    nb.shot("1-release-run-all-selfcheck-fails.png", focus=SELFCHECK_ID, block="start")

    # 2. A correct solution typed into the answer cell, Run All: the self-check passes, no cell errors.
    solution = _solution_text()
    nb.type_answer(solution)
    nb.run_all()
    nb.cell(SELFCHECK_ID).locator(".jp-OutputArea-output",
                                  has_text="Self-check passed").wait_for(timeout=RUN_TIMEOUT_MS)
    nb.wait_idle(RUN_TIMEOUT_MS)
    errors = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output[data-mime-type*='error']")
    assert errors.count() == 0, errors.first.text_content()
    last_prompt = nb.cells.nth(nb.ncells - 2).locator(".jp-InputPrompt").text_content()  # the benchmark
    assert last_prompt.strip().startswith("[") and last_prompt.strip()[1:-2].isdigit(), last_prompt
    nb.shot("2-solution-typed-selfcheck-passes.png", focus=SELFCHECK_ID)

    # 3a. Validate (saves, then nbgrader validate on the file): success.
    dialog = nb.validate()
    text = dialog.inner_text()
    assert "Success! Your notebook passes all the tests." in text, text
    nb.shot("3-validate-success.png")
    nb.close_dialog()

    # 3b. A wrong solution (the seed's closed-interval kinks): Validate names the failing test.
    wrong = next(e for e in corpus.entries("01_hardswish") if e.name == WRONG_ENTRY)
    nb.type_answer(wrong.cells[ANSWER_ID])
    dialog = nb.validate()
    text = dialog.inner_text()
    assert dialog.get_attribute("class") and "validation-failed" in dialog.get_attribute("class"), text
    failed = {notebooks.grade_id(c) for c in graded if c.source.splitlines()[0] in text}
    assert "test_kinks" in failed, text
    assert failed <= wrong.expect_fails, f"Validate reported {failed}, the corpus expects {wrong.expect_fails}"
    assert "expected gradients [0, 1] at x = -3, 3, got [-0.5, 1.5]" in text, text
    nb.shot("4-validate-wrong-solution-fails.png")
    nb.close_dialog()

    elapsed = time.monotonic() - started
    print(f"student path in JupyterLab: {elapsed:.1f} s; screenshots in {artifacts}")
    assert elapsed < BUDGET_S, f"the browser test took {elapsed:.0f} s (budget {BUDGET_S} s)"


def test_formgrader_loads_for_the_course(server, page, artifacts):
    page.goto(f"{server.url}/formgrader?token={server.token}")
    row = page.locator("tr", has_text=ASSIGNMENT)
    row.first.wait_for(timeout=30_000)
    body = page.locator("body").inner_text()
    assert "not a subdirectory" not in body and "Manage Assignments" in body, body[:2000]
    page.screenshot(path=str(artifacts / "5-formgrader.png"))
