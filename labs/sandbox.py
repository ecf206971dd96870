"""Every notebook runs in a sandbox of its own (bubblewrap + a cgroup), and only data comes out.

`run_notebook(nb, limits)` writes the notebook into a private work folder, starts
`labs/sandbox_runner.py` inside bubblewrap, waits at most the notebook's wall-clock
budget, kills everything the submission started, and returns what each code cell did
(`Run`), read from the runner's log as hostile data (size-capped, type-checked).

What the sandbox gives the student's code:
- no network (its own network namespace: only its own loopback);
- the system, the Python prefix and the venv read-only; nothing else of this machine:
  no course (source, release, solutions, gradebook, other students' work, autograded
  and feedback trees), no home folder, no grader environment variables (`--clearenv`);
- a private writable work folder holding only its notebook, and a private /tmp;
- its own PID namespace (`--die-with-parent`): every process it started dies with it;
- a cgroup: memory and process count bounded for the whole submission, not per process;
- rlimits: CPU time, file size, no core dumps, per-process address space;
- a per-cell timeout (inside), a wall-clock budget per notebook (enforced from outside),
  an output cap in bytes per cell and per notebook (enforced when reading).
The grader never blocks on the submission: the runner's stdout and stderr go to a file,
the wait has a deadline, and the kill does not depend on the submission's cooperation.

If the sandbox cannot be created, `SandboxUnavailable` says why; `Limits(unsafe=True)`
(the instructor's explicit `--unsafe`) runs without bubblewrap and cgroup instead.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

RUNNER = Path(__file__).with_name("sandbox_runner.py")
STATUSES = {"ok", "error", "timeout", "died"}


class SandboxUnavailable(RuntimeError):
    pass


def device() -> str:
    """The device graded notebooks run on: LAB_DEVICE, else the CPU (as nbgrader's environment
    has it, labs/build.py), so a run made by a worker and one made by nbgrader are the same run."""
    return os.environ.get("LAB_DEVICE") or "cpu"


@dataclass(frozen=True)
class Limits:
    memory_mb: int = int(os.environ.get("LAB_GRADE_MEMORY_MB", 4096))   # all processes together (cgroup)
    address_space_factor: int = 2            # per-process RLIMIT_AS, in units of memory_mb
    processes: int = 256                     # threads count too (torch, ipykernel)
    cell_seconds: int = 60
    notebook_seconds: int = int(os.environ.get("LAB_GRADE_NOTEBOOK_SECONDS", 900))
    cell_output_bytes: int = 1 << 20
    notebook_output_bytes: int = 8 << 20
    file_bytes: int = 256 << 20
    threads: int = 1                         # torch/OpenMP threads per notebook (notebooks run side by side)
    unsafe: bool = False


@dataclass
class Run:
    """What came back: per code cell index, its status and outputs (hostile data)."""

    statuses: dict[int, str] = field(default_factory=dict)
    outputs: dict[int, list] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)   # the exception's name, for cells with status "error"
    events: list[str] = field(default_factory=list)   # observed by the coordinator
    seconds: float = 0.0
    timing: dict[str, float] = field(default_factory=dict)       # informational only (the runner's word)
    cell_seconds: dict[int, float] = field(default_factory=dict)


# --- cgroups: memory and process count for the whole submission -------------------------

class Cgroup:
    """A fresh cgroup (v2 where delegated, else v1 memory + pids) that the sandbox starts in."""

    def __init__(self, limits: Limits):
        name = f"lab-sandbox-{uuid.uuid4().hex[:12]}"
        self.dirs: list[Path] = []
        self.memory: Path | None = None
        unified = Path("/sys/fs/cgroup/cgroup.controllers")
        try:
            if unified.exists():
                base = Path("/sys/fs/cgroup") / _own_cgroup("")
                d = base / name
                d.mkdir()
                self.dirs = [d]
                (d / "memory.max").write_text(str(limits.memory_mb << 20))
                (d / "memory.swap.max").write_text("0") if (d / "memory.swap.max").exists() else None
                (d / "pids.max").write_text(str(limits.processes))
                self.memory = d
            else:
                for ctl in ("memory", "pids"):
                    d = Path("/sys/fs/cgroup") / ctl / _own_cgroup(ctl).lstrip("/") / name
                    d.mkdir()
                    self.dirs.append(d)
                mem, pids = self.dirs
                (mem / "memory.limit_in_bytes").write_text(str(limits.memory_mb << 20))
                (pids / "pids.max").write_text(str(limits.processes))
                self.memory = mem
        except OSError as err:
            self.remove()
            raise SandboxUnavailable(f"cannot create a cgroup for the submission's memory and process limits "
                                     f"({err}); grade as root where cgroups exist, or pass --unsafe") from None

    def enter(self) -> None:  # in the child, before exec
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(os.getpid()))

    def oom_killed(self) -> bool:
        if self.memory is None:
            return False
        for name in ("memory.events", "memory.oom_control"):
            path = self.memory / name
            if path.exists():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and value.strip() not in ("", "0"):
                        return True
        return False

    def kill(self) -> None:
        for _ in range(100):
            pids = {int(p) for d in self.dirs if (d / "cgroup.procs").exists()
                    for p in (d / "cgroup.procs").read_text().split()}
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.02)

    def remove(self) -> None:
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)


def _own_cgroup(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, ctls, path = line.split(":", 2)
        if (controller and controller in ctls.split(",")) or (not controller and ctls == ""):
            return path.lstrip("/")
    raise OSError(f"no {controller or 'unified'} cgroup for this process")


# --- bubblewrap --------------------------------------------------------------------------

def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for top in ("/bin", "/sbin", "/lib", "/lib64", "/lib32"):
        p = Path(top)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), top]
        elif p.is_dir():
            args += ["--ro-bind", top, top]
    for etc in ("/etc/fonts", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d", "/etc/localtime",
                "/etc/alternatives", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group"):
        args += ["--ro-bind-try", etc, etc]
    prefixes = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix)}
    prefixes.add(Path(sys.executable).resolve().parent.parent)
    for prefix in sorted(prefixes):
        if not str(prefix).startswith("/usr"):
            args += ["--ro-bind", str(prefix), str(prefix)]
    return args


def bwrap_command(work: Path, argv: list[str], env: dict[str, str]) -> list[str]:
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise SandboxUnavailable("bubblewrap (`bwrap`) is not installed: `apt-get install bubblewrap`, "
                                 "or pass --unsafe to grade without a sandbox")
    args = [bwrap, "--unshare-all", "--unshare-user", "--uid", "65534", "--gid", "65534", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session", "--hostname", "sandbox",
            # /tmp first: a later bind hides an earlier one, and the venv may live under /tmp
            "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", *_system_binds(),
            "--bind", str(work), "/sandbox", "--ro-bind", str(RUNNER), "/grader/runner.py", "--chdir", "/sandbox",
            "--clearenv"]
    if env.get("LAB_DEVICE") == "cuda":
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(dev), str(dev)]
    for key, value in env.items():
        args += ["--setenv", key, value]
    return args + argv


_FONT_CACHE: list[Path] = []


def _font_cache() -> Path | None:
    """Matplotlib's font list, built once per grading process in a private folder (trusted: no
    student code runs there). A fresh sandbox would otherwise rebuild it at its first
    `import matplotlib`, about 0.4 s per notebook."""
    if not _FONT_CACHE:
        folder = Path(tempfile.mkdtemp(prefix="lab-fontcache-"))
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MPLCONFIGDIR": str(folder), "HOME": str(folder)}
        try:
            subprocess.run([sys.executable, "-c", "import matplotlib.font_manager"], env=env, timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        except (OSError, subprocess.SubprocessError):
            pass
        _FONT_CACHE.append(folder)
    found = sorted(_FONT_CACHE[0].glob("fontlist-*.json"))
    return found[-1] if found else None


def _seed_matplotlib(work: Path) -> None:
    """A writable MPLCONFIGDIR in the work folder, holding a copy of the trusted font list."""
    config = work / ".matplotlib"
    config.mkdir()
    os.chmod(config, 0o777)
    cache = _font_cache()
    if cache:
        shutil.copyfile(cache, config / cache.name)
        os.chmod(config / cache.name, 0o666)


def _sandbox_env(limits: Limits) -> dict[str, str]:
    return {
        "OMP_NUM_THREADS": str(limits.threads), "MKL_NUM_THREADS": str(limits.threads),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/sandbox", "LANG": "C.UTF-8",
        "LAB_DEVICE": device(), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": "/sandbox/.matplotlib", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
    }


def check(limits: Limits = Limits()) -> None:
    """Raise SandboxUnavailable unless a sandbox can be created here (cheap: runs `true`)."""
    if limits.unsafe:
        return
    with tempfile.TemporaryDirectory(prefix="lab-sandbox-") as tmp:
        cgroup = Cgroup(limits)
        try:
            proc = subprocess.run(bwrap_command(Path(tmp), ["/bin/true"], {}), capture_output=True, text=True,
                                  timeout=30)
        finally:
            cgroup.remove()
    if proc.returncode:
        raise SandboxUnavailable(f"bubblewrap cannot create a sandbox here: {proc.stderr.strip()[:500]}")


# --- one notebook ------------------------------------------------------------------------

def run_notebook(nb: nbformat.NotebookNode, limits: Limits = Limits()) -> Run:
    """Execute `nb` in a fresh sandbox; return each code cell's status and outputs."""
    run, started = Run(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lab-sandbox-") as tmp:
        work = Path(tmp) / "work"
        work.mkdir()
        os.chmod(work, 0o777)
        nbformat.write(nb, str(work / "notebook.ipynb"))
        _seed_matplotlib(work)
        log = Path(tmp) / "runner.log"
        argv = [str(Path(sys.executable)), "/grader/runner.py" if not limits.unsafe else str(RUNNER),
                "notebook.ipynb", "cells.jsonl", str(limits.cell_seconds), str(limits.cell_output_bytes)]
        env = _sandbox_env(limits)
        cgroup = None if limits.unsafe else Cgroup(limits)

        def enter():
            if cgroup:
                cgroup.enter()
            cpu = limits.notebook_seconds + 30
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
            resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_bytes, limits.file_bytes))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            space = (limits.memory_mb * limits.address_space_factor) << 20
            resource.setrlimit(resource.RLIMIT_AS, (space, space))

        try:
            if limits.unsafe:
                cmd = argv
                env = {**env, "HOME": str(work), "MPLCONFIGDIR": str(work / ".matplotlib"),
                       "IPYTHONDIR": str(Path(tmp) / "ipython"), "JUPYTER_RUNTIME_DIR": str(Path(tmp) / "rt")}
            else:
                cmd = bwrap_command(work, argv, env)
            with open(log, "wb") as out:
                popen_at = time.time()
                proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                        preexec_fn=enter, start_new_session=True)
                try:
                    proc.wait(timeout=limits.notebook_seconds)
                except subprocess.TimeoutExpired:
                    run.events.append(f"the notebook ran past its wall-clock budget of {limits.notebook_seconds} s "
                                      "and was stopped")
                finally:
                    _kill_group(proc)
                    if cgroup:
                        cgroup.kill()
            ended_at = time.time()
            if cgroup and cgroup.oom_killed():
                run.events.append(f"the submission ran out of its memory bound ({limits.memory_mb} MiB for all "
                                  "its processes together) and a process was killed")
            _read_cells(work / "cells.jsonl", nb, limits, run)
            runner = run.timing.pop("runner", None)
            if isinstance(runner, dict) and all(isinstance(runner.get(k), float) for k in ("started", "kernel_ready")):
                run.timing = {"sandbox start": max(0.0, runner["started"] - popen_at),
                              "kernel start": max(0.0, runner["kernel_ready"] - runner["started"])}
                if isinstance(runner.get("done"), float):
                    run.timing["teardown"] = max(0.0, ended_at - runner["done"])
        finally:
            if cgroup:
                cgroup.kill()
                cgroup.remove()
    run.seconds = time.monotonic() - started
    return run


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _read_cells(path: Path, nb, limits: Limits, run: Run) -> None:
    """The runner's log, as hostile data: bounded reads, known fields, known types."""
    if not path.is_file():
        return
    code = {i for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    budget = limits.notebook_output_bytes
    with open(path, "rb") as fh:
        while budget > 0:
            line = fh.readline(min(budget, limits.cell_output_bytes + 4096) + 1)
            if not line:
                break
            budget -= len(line)
            if not line.endswith(b"\n") or len(line) > limits.cell_output_bytes + 4096:
                run.events.append("a cell's output exceeded the output cap and was dropped")
                while line and not line.endswith(b"\n") and budget > 0:  # skip the rest, in bounded pieces
                    line = fh.readline(1 << 20)
                    budget -= len(line)
                continue
            try:
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("runner"), dict):
                    marks = run.timing.setdefault("runner", {})
                    for key, value in list(entry["runner"].items())[:4]:
                        marks.setdefault(str(key)[:20], value)
                    continue
                index, status, outputs = entry["index"], entry["status"], entry["outputs"]
            except (ValueError, KeyError, TypeError):
                continue
            if type(index) is int and index in code and status in STATUSES and isinstance(outputs, list):
                run.statuses.setdefault(index, status)
                run.outputs.setdefault(index, outputs)
                if isinstance(entry.get("ename"), str) and entry["ename"].isidentifier():
                    run.errors.setdefault(index, entry["ename"][:60])
                if isinstance(entry.get("seconds"), float):
                    run.cell_seconds.setdefault(index, entry["seconds"])
        else:
            if fh.read(1):
                run.events.append(f"the notebook's output exceeded {limits.notebook_output_bytes >> 20} MiB; "
                                  "the rest was dropped")
