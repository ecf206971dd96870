"""Shared fixtures. Notebooks under tests/ are test data, never nbval targets."""

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from labs import ROOT
from labs.course import notebooks

from .services import idle_cpu_group, remove_group

collect_ignore_glob = ["corpus/*", "data/*", "**/*.ipynb"]

# Kernels started by nbval and nbgrader inherit this: stored outputs are the CPU ones.
os.environ.setdefault("LAB_DEVICE", "cpu")
# The solution's probe data (labs/grading/reference.py) depends only on the source, the kit and
# the runner: every throwaway course of this session shares one copy instead of recomputing it.
os.environ.setdefault("LAB_REFERENCE_CACHE", tempfile.mkdtemp(prefix="lab-reference-"))

LESSONS = [p.stem for p in notebooks.lesson_paths(ROOT / "source")]


_BACKGROUND = pytest.StashKey[tuple]()


def pytest_collection_modifyitems(session, config, items):
    """The corpora's two gradings are the slowest jobs (tests/corpora.py): through a Dask cluster into
    PostgreSQL (`graded`), then serially into SQLite (`serial`). They start now, in one background
    process at a small CPU share (`services.idle_cpu_group`: they take the CPU the other tests leave
    idle, such as the second core beside a one-process test), and the tests that read them run
    last, the serial comparison at the very end."""
    lanes = [lane for lane, fixture in (("parallel", "graded"), ("serial", "serial"))
             if any(fixture in getattr(item, "fixturenames", ()) for item in items)]
    if not lanes or config.option.collectonly:
        return

    def rank(item) -> int:
        names = getattr(item, "fixturenames", ())
        return 2 if "serial" in names else 1 if "graded" in names else 0

    items[:] = sorted(items, key=rank)  # stable: each group keeps its order
    folder = Path(tempfile.mkdtemp(prefix="lab-corpora-"))
    log = open(folder / "background.log", "w")
    group = idle_cpu_group()

    def low_priority():
        os.nice(19)
        if group is not None:
            with contextlib.suppress(OSError):
                (group / "cgroup.procs").write_text(str(os.getpid()))

    proc = subprocess.Popen([sys.executable, "-m", "tests.corpora", str(folder), *lanes], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=low_priority)
    config.stash[_BACKGROUND] = (proc, folder, group)


def pytest_unconfigure(config):
    proc, folder, group = config.stash.get(_BACKGROUND, (None, None, None))
    if proc is not None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if os.environ.get("LAB_KEEP_COURSE"):
            for lane in ("parallel", "serial"):
                if (folder / lane / "course").is_dir():
                    shutil.copytree(folder / lane / "course", Path(os.environ["LAB_KEEP_COURSE"]) / lane,
                                    dirs_exist_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
        remove_group(group)


def _background(request, lane: str) -> dict:
    """One lane's result from the background grading (tests/corpora.py), waited for."""
    proc, folder, _ = request.config.stash[_BACKGROUND]
    result = folder / f"{lane}.pickle"
    deadline = time.monotonic() + 3600
    while not result.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)
    if not result.exists():
        log = (folder / "background.log").read_text(errors="replace")
        if proc.poll() is None:
            pytest.fail(f"the background grading of the corpora ({lane}) did not finish within an hour:\n{log[-4000:]}")
        pytest.fail(f"the background grading of the corpora ({lane}) failed (exit {proc.returncode}):\n{log[-4000:]}")
    return pickle.loads(result.read_bytes())


@pytest.fixture(scope="session")
def serial(request) -> dict:
    """The corpora's sample graded serially (JOBS=1, SQLite): what test_parallel compares."""
    return _background(request, "serial")


@pytest.fixture(scope="session")
def graded(request) -> dict:
    """The corpora (the solution, the untouched release and every corpus entry) through the
    instructor's workflow, past one machine: a Dask cluster of the grading's own on loopback (`dask
    scheduler` and two `dask worker` processes) into a PostgreSQL server of its own (unix socket),
    graded in the background (tests/corpora.py). The gradebook's scores, the results, the course
    (its autograded notebooks), the summary, the gradebook's URL and the scheduler's address."""
    return _background(request, "parallel")
