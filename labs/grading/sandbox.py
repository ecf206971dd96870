"""Every notebook runs in a sandbox of its own (bubblewrap + a cgroup), and only data comes out.

`run_notebook(nb, limits)` opens the runner's log in a private folder of the grader's, starts
`labs/grading/sandbox_runner.py` inside bubblewrap with that log as an inherited descriptor, waits at most
the notebook's wall-clock budget, kills everything the submission started, and returns what each
code cell did (`Run`), read from the log as hostile data.

What the sandbox gives the student's code, in the order data flows:
1. In: bubblewrap's options come on an in-memory file (`--args FD`), so no command line names a
   host path; the notebook, a copy of the trusted matplotlib font list and the runner's source
   are copied in (`--file`, `--ro-bind-data`): no folder of the grader's is bound.
2. What it sees: the system (/usr and friends, a few /etc files), the Python prefix and the venv,
   read-only; nothing else of this machine: no course (source, release, solutions, gradebook,
   other students' work, autograded and feedback trees), no home folder, no grader environment
   variables (`--clearenv`), no network (its own network namespace: only its own loopback).
   The one host path it can read is the prefix's and the venv's own: they are bound at their own
   paths because a venv is not relocatable (its scripts, pyvenv.cfg and /proc/self/mountinfo
   name it), so the course's folder name shows as the venv's parent. Nothing else of the
   grader's (its temporary folders, the course's other files, its working folder) shows in any
   /proc/*/cmdline, environ, mountinfo or fd link.
3. Where it writes: a work folder (/sandbox, holding its notebook) and /tmp, each a tmpfs of
   `disk_mb` MiB (`--size`). Nothing lands on the grader's disk; tmpfs pages are memory, so they
   count in the memory bound too. A folder that fills up is reported as an event ("the
   submission filled its disk bound of N MiB").
4. What it may ask the kernel: a seccomp filter (`--seccomp FD`, `seccomp_filter`, classic BPF
   built here) makes ptrace, mount, namespaces (unshare, setns, clone with a namespace flag),
   bpf, keyrings, modules, kexec, perf, userfaultfd, io_uring, process_vm_*, handles and a few
   more fail with EPERM, as does any other architecture's system call (i386 and x32 on x86_64).
   An architecture without a filter (neither x86_64 nor aarch64) raises SandboxUnavailable: it
   never runs unfiltered. Nested user namespaces are off (`--disable-userns`) as well; no
   capabilities (`--cap-drop ALL`, uid 65534).
5. How long and how much: its own PID namespace, the runner as PID 1 (`--as-pid-1`,
   `--die-with-parent`): every process it started dies with it; a cgroup bounds memory and
   process count for the whole submission, not per process; rlimits bound CPU time, file size,
   core dumps and per-process address space; a per-cell timeout (inside), a wall-clock budget
   per notebook (from outside). `torch.compile` runs eagerly (TORCH_COMPILE_DISABLE=1): compiling
   changes no value a graded test reads, and no submission builds and loads native code through
   Inductor (a lesson's show-only compile cell, run when a notebook looks names up dynamically,
   took about 18 s of CPU per notebook and timed out the batch's short cells).
6. Out: the runner writes one record per cell to the log descriptor, which only the runner holds
   (the kernel never inherits it; the runner is non-dumpable and ignores the signals a process
   inside can send to PID 1: labs/grading/sandbox_runner.py says how). A killed runner means missing
   records, never forged ones. The kernel's own cells' outputs are still the kernel's word.
7. Read back (`_read_cells`): bytes per line and in all, nesting depth checked before parsing
   (`MAX_DEPTH`), a time budget, known fields and types; a bad line drops that record only.
The grader never blocks on the submission: the runner's stdout and stderr go nowhere, the wait
has a deadline, and the kill does not depend on the submission's cooperation.

If the sandbox cannot be created, `SandboxUnavailable` says why; `Limits(unsafe=True)`
(the instructor's explicit `--unsafe`) runs without bubblewrap, cgroup and seccomp instead.
"""

from __future__ import annotations

import json
import os
import platform
import re
import resource
import shutil
import signal
import struct
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
    has it, labs/course/build.py), so a run made by a worker and one made by nbgrader are the same run."""
    return os.environ.get("LAB_DEVICE") or "cpu"


@dataclass(frozen=True)
class Limits:
    memory_mb: int = int(os.environ.get("LAB_GRADE_MEMORY_MB", 4096))   # all processes together (cgroup)
    address_space_factor: int = 2            # per-process RLIMIT_AS, in units of memory_mb
    processes: int = 256                     # threads count too (torch, ipykernel)
    cell_seconds: int = 60
    first_cell_seconds: int | None = None    # the first code cell's own timeout (the grader's probe kit)
    notebook_seconds: int = int(os.environ.get("LAB_GRADE_NOTEBOOK_SECONDS", 900))
    cell_output_bytes: int = 1 << 20
    notebook_output_bytes: int = 8 << 20
    file_bytes: int = 256 << 20
    disk_mb: int = int(os.environ.get("LAB_GRADE_DISK_MB", 512))   # each of the work folder and /tmp (tmpfs)
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


# --- seccomp: the system calls a notebook never needs ----------------------------------

# name: (x86_64 number, aarch64 number); None where the call does not exist on that architecture.
# Checked against the kernel headers by tests/test_sandbox_edges.py.
DENIED_SYSCALLS: dict[str, tuple[int | None, int | None]] = {
    "ptrace": (101, 117), "process_vm_readv": (310, 270), "process_vm_writev": (311, 271),
    "pidfd_getfd": (438, 438), "kcmp": (312, 272),
    "mount": (165, 40), "umount2": (166, 39), "pivot_root": (155, 41), "chroot": (161, 51),
    "open_tree": (428, 428), "move_mount": (429, 429), "fsopen": (430, 430), "fsconfig": (431, 431),
    "fsmount": (432, 432), "fspick": (433, 433), "mount_setattr": (442, 442),
    "unshare": (272, 97), "setns": (308, 268),
    "bpf": (321, 280), "perf_event_open": (298, 241), "userfaultfd": (323, 282),
    "keyctl": (250, 219), "add_key": (248, 217), "request_key": (249, 218),
    "kexec_load": (246, 104), "kexec_file_load": (320, 294), "init_module": (175, 105),
    "finit_module": (313, 273), "delete_module": (176, 106), "create_module": (174, None),
    "swapon": (167, 224), "swapoff": (168, 225), "reboot": (169, 142), "acct": (163, 89),
    "quotactl": (179, 60), "quotactl_fd": (443, 443), "syslog": (103, 116), "vhangup": (153, 58),
    "open_by_handle_at": (304, 265), "name_to_handle_at": (303, 264), "lookup_dcookie": (212, 18),
    "settimeofday": (164, 170), "clock_settime": (227, 112), "clock_adjtime": (305, 266),
    "adjtimex": (159, 171), "iopl": (172, None), "ioperm": (173, None), "uselib": (134, None),
    "nfsservctl": (180, 42), "_sysctl": (156, None), "fanotify_init": (300, 262),
    "io_uring_setup": (425, 425), "io_uring_enter": (426, 426), "io_uring_register": (427, 427),
}
# clone(2) with a namespace flag is unshare(2) by another name; clone3 passes its flags in memory
# a filter cannot read, so it answers ENOSYS and the C library falls back to clone(2).
CLONE_NAMESPACE_FLAGS = 0x7E020080   # NEWTIME, NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET
_ARCHES = {  # machine: (AUDIT_ARCH_*, column in DENIED_SYSCALLS, clone, clone3)
    "x86_64": (0xC000003E, 0, 56, 435),
    "aarch64": (0xC00000B7, 1, 220, 435),
}
_EPERM, _ENOSYS = 1, 38
RET_ALLOW, RET_ERRNO = 0x7FFF0000, 0x00050000
X32_SYSCALL_BIT = 0x40000000


def seccomp_filter(machine: str) -> bytes:
    """The classic-BPF program bubblewrap installs (`--seccomp FD`) before it starts the runner:
    the listed calls, clone(2) with a namespace flag, any other architecture's calls (i386 and
    x32 on x86_64) fail with EPERM; clone3 fails with ENOSYS; everything else is allowed."""
    if machine not in _ARCHES:
        raise SandboxUnavailable(f"no seccomp filter for this machine's architecture ({machine!r}); the sandbox "
                                 "will not run notebooks unfiltered (pass --unsafe to grade without a sandbox)")
    arch, column, clone, clone3 = _ARCHES[machine]
    prog: list[tuple[int, str | int, str | int, int]] = []  # (code, jump if true, jump if false, k)
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    prog += [(ld, 0, 0, 4), (jeq, 0, "deny", arch), (ld, 0, 0, 0)]
    if machine == "x86_64":
        prog.append((jge, "deny", 0, X32_SYSCALL_BIT))
    for number in sorted({row[column] for row in DENIED_SYSCALLS.values() if row[column] is not None}):
        prog.append((jeq, "deny", 0, number))
    prog += [(jeq, "enosys", 0, clone3), (jeq, 0, "allow", clone), (ld, 0, 0, 16),
             (jset, "deny", "allow", CLONE_NAMESPACE_FLAGS)]
    labels = {"allow": len(prog), "deny": len(prog) + 1, "enosys": len(prog) + 2}
    prog += [(ret, 0, 0, RET_ALLOW), (ret, 0, 0, RET_ERRNO | _EPERM), (ret, 0, 0, RET_ERRNO | _ENOSYS)]
    out = bytearray()
    for pc, (code, jt, jf, k) in enumerate(prog):
        jt, jf = (labels[j] - pc - 1 if isinstance(j, str) else j for j in (jt, jf))
        assert 0 <= jt < 256 and 0 <= jf < 256
        out += struct.pack("=HBBI", code, jt, jf, k)
    return bytes(out)


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
    # The interpreter runs at the path this process runs it by (sys.executable, unresolved: a venv's python
    # finds its pyvenv.cfg next to that path). Each prefix is bound at its real path and, where the path
    # goes through a link (a symlinked .venv), at the linked path too, onto the same real folder.
    binds: dict[str, str] = {}
    for prefix in (Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).parent.parent):
        real = prefix.resolve()
        for at in (real, Path(os.path.abspath(prefix))):
            if not str(at).startswith("/usr"):
                binds.setdefault(str(at), str(real))
    for at, real in sorted(binds.items()):
        args += ["--ro-bind", real, at]
    return args


def _memfd(name: str, data: bytes) -> int:
    """An anonymous in-memory file holding `data`, read from its start by bubblewrap."""
    fd = os.memfd_create(name, os.MFD_CLOEXEC)   # Popen's pass_fds makes it inheritable in bwrap only
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def bwrap_command(files: dict[str, bytes], argv: list[str], env: dict[str, str], limits: Limits,
                  fds: list[int]) -> list[str]:
    """bubblewrap's command line: `bwrap --args FD -- ARGV`, every option (host paths included) in an
    in-memory file, so no process's command line names them. `files` (path in the work folder:
    content) are copied into the sandbox's own work folder. The descriptors to pass to bwrap are
    appended to `fds`; the caller closes them."""
    bwrap = shutil.which("bwrap")
    if not bwrap:
        raise SandboxUnavailable("bubblewrap (`bwrap`) is not installed: `apt-get install bubblewrap`, "
                                 "or pass --unsafe to grade without a sandbox")
    seccomp = seccomp_filter(platform.machine())
    disk = str(limits.disk_mb << 20)
    args = ["--unshare-all", "--unshare-user", "--disable-userns", "--uid", "65534", "--gid", "65534",
            "--cap-drop", "ALL", "--die-with-parent", "--new-session", "--as-pid-1", "--hostname", "sandbox",
            # /tmp first: a later bind hides an earlier one, and the venv may live under /tmp
            "--proc", "/proc", "--dev", "/dev", "--size", disk, "--perms", "1777", "--tmpfs", "/tmp",
            *_system_binds(),
            "--size", disk, "--perms", "0777", "--tmpfs", "/sandbox"]
    for name in sorted({str(Path(n).parent) for n in files} - {"."}):
        args += ["--perms", "0777", "--dir", f"/sandbox/{name}"]
    for name, data in files.items():
        fds.append(_memfd(name, data))
        args += ["--perms", "0666", "--file", str(fds[-1]), f"/sandbox/{name}"]
    fds.append(_memfd("runner", RUNNER.read_bytes()))
    args += ["--perms", "0444", "--ro-bind-data", str(fds[-1]), "/grader/runner.py", "--chdir", "/sandbox",
             "--clearenv"]
    if env.get("LAB_DEVICE") == "cuda":
        for dev in sorted(Path("/dev").glob("nvidia*")):
            args += ["--dev-bind", str(dev), str(dev)]
    for key, value in env.items():
        args += ["--setenv", key, value]
    fds.append(_memfd("seccomp", seccomp))
    args += ["--seccomp", str(fds[-1])]
    if any("\0" in a for a in args):
        raise ValueError("an argument of the sandbox holds a NUL character")
    fds.append(_memfd("args", b"".join(a.encode() + b"\0" for a in args)))
    return [bwrap, "--args", str(fds[-1]), "--", *argv]   # bubblewrap takes the command itself only here


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


def _work_files(nb) -> dict[str, bytes]:
    """What the work folder starts with: the notebook, and a writable MPLCONFIGDIR holding a copy of
    the trusted font list."""
    files = {"notebook.ipynb": nbformat.writes(nb).encode()}
    cache = _font_cache()
    if cache:
        files[f".matplotlib/{cache.name}"] = cache.read_bytes()
    return files


def _sandbox_env(limits: Limits) -> dict[str, str]:
    return {
        "OMP_NUM_THREADS": str(limits.threads), "MKL_NUM_THREADS": str(limits.threads),
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin", "HOME": "/sandbox", "LANG": "C.UTF-8",
        "LAB_DEVICE": device(), "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "MPLCONFIGDIR": "/sandbox/.matplotlib", "IPYTHONDIR": "/tmp/ipython", "JUPYTER_RUNTIME_DIR": "/tmp/jupyter",
        "JUPYTER_PLATFORM_DIRS": "1", "PYTHONDONTWRITEBYTECODE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "TORCH_COMPILE_DISABLE": "1",
    }


def check(limits: Limits = Limits()) -> None:
    """Raise SandboxUnavailable unless a sandbox can be created here (cheap: runs `true`)."""
    if limits.unsafe:
        return
    cgroup, fds = Cgroup(limits), []
    try:
        cmd = bwrap_command({}, ["/bin/true"], {}, limits, fds)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30, pass_fds=fds)
        if proc.returncode:
            raise SandboxUnavailable(f"bubblewrap cannot create a sandbox here: {proc.stderr.strip()[:500]}")
        # The interpreter the runner needs, started the way a run starts it (sandbox_runner.py imports these).
        cmd = bwrap_command({}, [sys.executable, "-c", "import jupyter_client, ipykernel"], _sandbox_env(limits),
                            limits, fds)
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, pass_fds=fds, env=_sandbox_env(limits))
        if proc.returncode:
            raise SandboxUnavailable(f"the sandbox cannot start the interpreter {sys.executable} (exit status "
                                     f"{proc.returncode}): {proc.stderr.strip()[-500:]}")
    finally:
        _close(fds)
        cgroup.remove()


# --- one notebook ------------------------------------------------------------------------

def run_notebook(nb: nbformat.NotebookNode, limits: Limits = Limits()) -> Run:
    """Execute `nb` in a fresh sandbox; return each code cell's status and outputs."""
    run, started = Run(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="lab-sandbox-") as tmp:
        # The runner's log: opened here, outside anything the sandbox can see, and handed to the
        # runner as an inherited descriptor (see labs/grading/sandbox_runner.py for who holds it).
        log = Path(tmp) / "cells.jsonl"
        log_fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fds = [log_fd]
        argv = [str(Path(sys.executable)), "/grader/runner.py" if not limits.unsafe else str(RUNNER),
                "notebook.ipynb", str(log_fd), str(limits.cell_seconds), str(limits.cell_output_bytes),
                str(limits.notebook_output_bytes), str(limits.first_cell_seconds or limits.cell_seconds)]
        env = _sandbox_env(limits)
        cgroup = None

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
                work = Path(tmp) / "work"
                work.mkdir()
                for name, data in _work_files(nb).items():
                    (work / name).parent.mkdir(exist_ok=True)
                    (work / name).write_bytes(data)
                cmd = argv
                env = {**env, "HOME": str(work), "MPLCONFIGDIR": str(work / ".matplotlib"),
                       "IPYTHONDIR": str(Path(tmp) / "ipython"), "JUPYTER_RUNTIME_DIR": str(Path(tmp) / "rt")}
            else:
                work = Path(tmp)   # bwrap's working directory; the sandbox's work folder is its own tmpfs
                cmd = bwrap_command(_work_files(nb), argv, env, limits, fds)
                cgroup = Cgroup(limits)
            popen_at = time.time()
            # The runner's stdout and stderr are inherited by the kernel: not a file on the grader's disk.
            proc = subprocess.Popen(cmd, cwd=work, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, preexec_fn=enter, start_new_session=True,
                                    pass_fds=fds)
            _close(fds)   # the log's only writer is now the runner
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
            if proc.returncode not in (None, 0) and log.stat().st_size == 0 and not run.events:
                # not one line from the runner: the interpreter itself did not start (never the student's doing)
                run.events.append(f"the sandbox could not start the interpreter {argv[0]} (exit status "
                                  f"{proc.returncode}, no output from the runner)")
            try:
                _read_cells(log, nb, limits, run)
            except Exception as err:  # noqa: BLE001 - one notebook's log never stops the batch
                run.events.append(f"the runner's log could not be read ({type(err).__name__}); "
                                  "the rest of it was dropped")
            runner = run.timing.pop("runner", None)
            if isinstance(runner, dict) and all(isinstance(runner.get(k), float) for k in ("started", "kernel_ready")):
                run.timing = {"sandbox start": max(0.0, runner["started"] - popen_at),
                              "kernel start": max(0.0, runner["kernel_ready"] - runner["started"])}
                if isinstance(runner.get("done"), float):
                    run.timing["teardown"] = max(0.0, ended_at - runner["done"])
        finally:
            _close(fds)
            if cgroup:
                cgroup.kill()
                cgroup.remove()
    run.seconds = time.monotonic() - started
    return run


def _close(fds: list[int]) -> None:
    while fds:
        os.close(fds.pop())


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


MAX_DEPTH = 64             # JSON nesting of one log line (an output's own JSON data included)
READ_SECONDS = 10.0        # for the whole log: far above what its byte budget takes to parse
_DISK_PLACES = {"work": "work folder", "tmp": "/tmp"}


def _depth_within(line: bytes, limit: int) -> bool:
    """Whether the JSON text `line` nests at most `limit` arrays and objects deep (linear time, no
    recursion; a line that is not JSON may pass here and fail json.loads)."""
    line = re.sub(rb'\\.', b"", line)               # escapes out: every '"' left opens or closes a string
    line = re.sub(rb'"[^"]*"', b"", line)           # strings out
    brackets = line.translate(None, _NOT_BRACKETS)
    if len(brackets) <= 2 * limit:
        return True
    import numpy as np  # a running depth over up to a line's length of brackets, in C

    opens = np.isin(np.frombuffer(brackets, dtype=np.uint8), (ord("["), ord("{")))
    return int(np.cumsum(opens.astype(np.int64) * 2 - 1).max()) <= limit


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _read_cells(path: Path, nb, limits: Limits, run: Run) -> None:
    """The runner's log, as hostile data: bounded reads (bytes per line and in all, nesting depth
    checked before parsing, a time budget), known fields, known types. A line that fails any of
    these is dropped: its cell has no record, and the other cells keep theirs."""
    if not path.is_file():
        return
    code = {i for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    budget, deadline, dropped = limits.notebook_output_bytes, time.monotonic() + READ_SECONDS, 0
    with open(path, "rb") as fh:
        while budget > 0:
            if time.monotonic() > deadline:
                run.events.append("reading the notebook's records took too long; the rest was dropped")
                return
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
                if not _depth_within(line, MAX_DEPTH):
                    raise ValueError("nested too deeply")
                entry = json.loads(line)
                if isinstance(entry, dict) and isinstance(entry.get("runner"), dict):
                    _runner_marks(entry["runner"], limits, run)
                    continue
                index, status, outputs = entry["index"], entry["status"], entry["outputs"]
            except (ValueError, KeyError, TypeError, RecursionError, MemoryError):
                dropped += 1
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
    if dropped:
        run.events.append(f"{dropped} record(s) of the runner's log were malformed and dropped")


def _runner_marks(marks: dict, limits: Limits, run: Run) -> None:
    """The runner's own marks: timing (informational), and a bounded folder that filled up."""
    timing = run.timing.setdefault("runner", {})
    for key in ("started", "kernel_ready", "done"):
        if isinstance(marks.get(key), float):
            timing.setdefault(key, marks[key])
    place = _DISK_PLACES.get(marks.get("disk_full")) if isinstance(marks.get("disk_full"), str) else None
    if place and not limits.unsafe:
        event = f"the submission filled its disk bound of {limits.disk_mb} MiB (its {place})"
        if event not in run.events:
            run.events.append(event)
