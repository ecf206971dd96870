"""Shared fixtures. Notebooks under tests/ are test data, never nbval targets."""

import contextlib
import os
import pickle
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from labs import ROOT
from labs.course import notebooks

from .corpora import grade_corpora
from .services import dask_cluster, idle_cpu_group, postgres, remove_group

collect_ignore_glob = ["corpus/*", "data/*", "**/*.ipynb"]

# Kernels started by nbval and nbgrader inherit this: stored outputs are the CPU ones.
os.environ.setdefault("LAB_DEVICE", "cpu")
# The solution's probe data (labs/grading/reference.py) depends only on the source, the kit and
# the runner: every throwaway course of this session shares one copy instead of recomputing it.
os.environ.setdefault("LAB_REFERENCE_CACHE", tempfile.mkdtemp(prefix="lab-reference-"))

LESSONS = [p.stem for p in notebooks.lesson_paths(ROOT / "source")]


SERIAL_TEST = "test_serial_grading_gives_exactly_the_parallel_scores"
_SERIAL = pytest.StashKey[tuple]()


def pytest_collection_modifyitems(session, config, items):
    """The serial grading of the corpora (JOBS=1, SQLite) is the slowest job and needs one core:
    it starts now, in the background at the lowest priority (`services.idle_cpu_group`: on the
    core the one-process tests leave idle), and the test that compares it runs last."""
    serial = [item for item in items if getattr(item, "originalname", "") == SERIAL_TEST]
    if not serial or config.option.collectonly:
        return
    items[:] = [item for item in items if getattr(item, "originalname", "") != SERIAL_TEST] + serial
    folder = Path(tempfile.mkdtemp(prefix="lab-serial-"))
    log = open(folder / "serial.log", "w")
    group = idle_cpu_group()

    def low_priority():
        os.nice(19)
        if group is not None:
            with contextlib.suppress(OSError):
                (group / "cgroup.procs").write_text(str(os.getpid()))

    proc = subprocess.Popen([sys.executable, "-m", "tests.corpora", str(folder)], cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                            preexec_fn=low_priority)
    config.stash[_SERIAL] = (proc, folder, group)


def pytest_unconfigure(config):
    proc, folder, group = config.stash.get(_SERIAL, (None, None, None))
    if proc is not None:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
        remove_group(group)


@pytest.fixture(scope="session")
def serial(request) -> dict:
    """The background serial grading's result (tests/corpora.py), waited for."""
    proc, folder, _ = request.config.stash[_SERIAL]
    try:
        proc.wait(timeout=3600)
    except subprocess.TimeoutExpired:
        pytest.fail("the serial grading of the corpora did not finish within an hour")
    log = (folder / "serial.log").read_text(errors="replace")
    assert proc.returncode == 0, f"the serial grading of the corpora failed:\n{log[-4000:]}"
    return pickle.loads((folder / "serial.pickle").read_bytes())


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict:
    """The corpora (the solution, the untouched release and every corpus entry) through the
    instructor's workflow, past one machine: a Dask cluster of the test's own on loopback (`dask
    scheduler` and two `dask worker` processes) into a PostgreSQL server of its own (unix socket).
    Returns the gradebook's scores, the results and the course; test_parallel compares them with
    the serial grading into SQLite."""
    services = tmp_path_factory.mktemp("services")
    with postgres(services / "pg") as url, dask_cluster(services / "dask", workers=2) as address, \
            pytest.MonkeyPatch.context() as env:
        env.setenv("LAB_DB_URL", url)
        out = grade_corpora(tmp_path_factory.mktemp("course"), scheduler=address)
    out["scheduler"] = address
    yield out
    if os.environ.get("LAB_KEEP_COURSE"):
        shutil.copytree(out["course"].root, Path(os.environ["LAB_KEEP_COURSE"]), dirs_exist_ok=True)
