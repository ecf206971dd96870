"""Real services the grading tests start for themselves, on this machine only, and stop after:
a PostgreSQL server in a temporary folder (unix socket only) and a Dask cluster on loopback."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from labs import ROOT


def _pg_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed (Debian: apt-get install postgresql)")
    return str(found)


@contextlib.contextmanager
def postgres(folder: Path, user: str = "postgres"):
    """A PostgreSQL server of its own: `initdb` in `folder` as the unprivileged `user` (initdb refuses
    root), listening on a unix socket in `folder` only (no TCP). Yields an SQLAlchemy URL."""
    account = pwd.getpwnam(user)
    folder.mkdir(parents=True, exist_ok=True)
    data, sock = folder / "data", folder / "socket"
    sock.mkdir(exist_ok=True)
    for path in (folder, sock):
        os.chown(path, account.pw_uid, account.pw_gid)
    for parent in folder.parents:  # the server must reach its folder
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o011)
    as_user = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups", "--"]
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(folder)}
    subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True, env=env)
    options = f"-k {sock} -c listen_addresses='' -c fsync=off"
    subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
                    "-o", options, "start"], check=True, capture_output=True, env=env)
    try:
        subprocess.run([*as_user, _pg_bin("createdb"), "-h", str(sock), "-U", user, "gradebook"], check=True,
                       capture_output=True, env=env)
        yield f"postgresql+psycopg2://{user}@/gradebook?host={sock}"
    finally:
        subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, env=env)


@contextlib.contextmanager
def dask_cluster(folder: Path, workers: int = 2):
    """`dask scheduler` and `workers` x `dask worker` as separate processes on 127.0.0.1.
    Yields the scheduler's address."""
    folder.mkdir(parents=True, exist_ok=True)
    sched_file = folder / "scheduler.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DASK_DISTRIBUTED__WORKER__DAEMON": "False"}
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    procs = [subprocess.Popen([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                               "--scheduler-file", str(sched_file)], env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=open(folder / "scheduler.log", "w"))]
    try:
        for _ in range(300):
            if sched_file.exists() and sched_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(sched_file.read_text())["address"]
        for i in range(workers):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--nworkers", "1",
                 "--host", "127.0.0.1", "--no-dashboard", "--memory-limit", "0", "--name", f"grader-{i}"],
                env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                stderr=open(folder / f"worker-{i}.log", "w")))
        from dask.distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def idle_cpu_group() -> Path | None:
    """A cgroup-v1 cpu group with a small share (cpu.shares=128, an eighth of a normal group's): what
    runs in it, and all it starts, mostly takes the CPU nothing else wants. Not the smallest share
    (2): on a busy machine that starved the background grading so far that correct corpus answers
    timed out. `nice` alone does not do this here: every sandbox starts a session of its own, and the
    kernel's autogroups give each session an equal share of the CPU whatever its nice value. None
    where no such group can be made (cgroup v2, no permission): then nice only."""
    from labs.grading import sandbox

    try:
        group = Path("/sys/fs/cgroup/cpu") / sandbox._own_cgroup("cpu") / f"lab-idle-{os.getpid()}"
        group.mkdir()
        (group / "cpu.shares").write_text("128")
        return group
    except OSError:
        return None


def remove_group(group: Path | None) -> None:
    for _ in range(50):  # its last processes may still be exiting
        try:
            if group is not None:
                group.rmdir()
            return
        except OSError:
            time.sleep(0.1)
