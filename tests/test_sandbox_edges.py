"""The sandbox's edges (labs/grading/sandbox.py, labs/grading/sandbox_runner.py), each held against the attack that
broke it (issue 16): the runner's log rewritten from the kernel, a hostile log line that crashed the
batch, a disk filled outside any bound, system calls a notebook never needs, host paths read from
inside. Where a control can show the attack is real, the same code runs without the defence."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from labs import ROOT
from labs.grading import sandbox

FAST = sandbox.Limits(cell_seconds=30, notebook_seconds=90, memory_mb=2048, processes=128)
UNSAFE = sandbox.Limits(cell_seconds=30, notebook_seconds=90, unsafe=True)


def notebook(*cells: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def run(*cells: str, limits: sandbox.Limits = FAST) -> sandbox.Run:
    return sandbox.run_notebook(notebook(*cells), limits)


def text(result: sandbox.Run, index: int) -> str:
    return "".join(o.get("text", "") for o in result.outputs.get(index, []) if o.get("output_type") == "stream")


def facts(result: sandbox.Run, index: int) -> dict:
    out = text(result, index).strip()
    assert out, (result.statuses, result.outputs.get(index), result.events)
    return json.loads(out.splitlines()[-1])


# --- 1. the channel: what the judge reads, the student's processes cannot write ----------------

STUB = "raise NotImplementedError('a stub')"
FORGED = [{"output_type": "stream", "name": "stdout", "text": "FORGED full marks"}]
# Writes a forged record for cell 0 wherever it can: the old log in the work folder, every
# file descriptor of every other process it can open (/proc/<pid>/fd/*, truncated first), and
# reports which /proc/<pid>/mem it could open for writing. TARGETS picks the processes.
ATTACK = r'''
import json, os
forged = json.dumps({{"index": 0, "status": "ok", "outputs": {forged!r}}}) + "\n"
forged = forged + json.dumps({{"runner": {{"disk_full": "work"}}}}) + "\n"
me = os.getpid()
family = {{me, os.getppid()}}
report = {{"fds_written": [], "mem_opened": [], "work_log": None, "own_fds": []}}
try:
    with open("cells.jsonl", "w") as fh:
        fh.write(forged)
    report["work_log"] = "written"
except OSError as err:
    report["work_log"] = type(err).__name__
for fd in os.listdir("/proc/self/fd"):
    try:
        report["own_fds"].append(os.readlink(f"/proc/self/fd/{{fd}}"))
    except OSError:
        pass
pids = {targets}
def places(pid):                                    # the process, and each of its threads
    try:
        return [f"/proc/{{pid}}"] + [f"/proc/{{pid}}/task/{{t}}" for t in os.listdir(f"/proc/{{pid}}/task")]
    except OSError:
        return [f"/proc/{{pid}}"]
for pid, base in [(pid, base) for pid in pids if pid != me for base in places(pid)]:
    try:
        fds = os.listdir(f"{{base}}/fd")
    except OSError:
        fds = [str(n) for n in range(64)]          # not listable: guess the numbers
    for fd in fds:
        if pid in family and pid != 1 and fd in ("0", "1", "2"):
            continue                                 # our own pipes to the kernel machinery
        try:
            out = os.open(f"{{base}}/fd/{{fd}}", os.O_WRONLY | os.O_TRUNC)   # forged lines first
        except OSError:
            continue
        try:
            target = os.readlink(f"{{base}}/fd/{{fd}}")
        except OSError:
            target = "?"
        if "socket" in target or "pipe" in target or "anon_inode" in target:
            os.close(out)
            continue                                 # the kernel's own machinery: not a file
        try:
            os.write(out, forged.encode())
            report["fds_written"].append([pid, fd, target])
        except OSError:
            pass
        os.close(out)
    try:
        with open(f"{{base}}/mem", "r+b"):
            report["mem_opened"].append(pid)
    except OSError:
        pass
print(json.dumps(report))
'''


def attack(targets: str) -> str:
    return ATTACK.format(forged=FORGED, targets=targets)


EVERY_PID = "sorted(int(p) for p in os.listdir('/proc') if p.isdigit())"


def _assert_not_forged(result: sandbox.Run) -> None:
    assert result.statuses.get(0) == "error", result.statuses
    assert result.errors.get(0) == "NotImplementedError"
    assert "FORGED" not in json.dumps(result.outputs.get(0)), result.outputs.get(0)
    assert not any("disk bound" in e for e in result.events), result.events


def test_the_kernel_cannot_rewrite_the_log_from_python():
    result = run(STUB, attack(EVERY_PID), "print('after the attack')")
    _assert_not_forged(result)
    report = facts(result, 1)
    assert report["work_log"] == "written", "the work folder is writable, and no longer where the log is"
    assert report["fds_written"] == [], report["fds_written"]
    assert 1 not in report["mem_opened"], "the runner (PID 1) is not dumpable: its memory is closed"
    assert not any("cells.jsonl" in link for link in report["own_fds"]), report["own_fds"]
    assert result.statuses == {0: "error", 1: "ok", 2: "ok"} and "after the attack" in text(result, 2)
    assert result.events == [], result.events


def test_the_kernel_cannot_rewrite_the_log_from_a_subprocess():
    code = attack(EVERY_PID)
    result = run(STUB, f"import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', {code!r}], "
                       "capture_output=True, text=True, timeout=60).stdout)")
    _assert_not_forged(result)
    report = facts(result, 1)
    # it could write its parent's (the kernel's: the student's own) descriptors, never the runner's (PID 1)
    assert [w for w in report["fds_written"] if w[0] == 1 or "cells.jsonl" in w[2]] == [], report
    assert 1 not in report["mem_opened"], report
    assert not any("cells.jsonl" in link for link in report["own_fds"]), report["own_fds"]


def test_the_same_attack_forges_the_log_of_a_runner_it_can_reach():
    """Control: without the sandbox the kernel runs as the grader's root, whose CAP_SYS_PTRACE
    opens even a non-dumpable runner's descriptors: the attack code does reach the log, and the
    coordinator then reads the forged record. (Only the parent is attacked here: this is the host.)"""
    result = run(STUB, attack("[os.getppid()]"), limits=UNSAFE)
    report = facts(result, 1)
    assert any(link.endswith("cells.jsonl") for _, _, link in report["fds_written"]), report
    assert result.statuses.get(0) == "ok" and "FORGED" in json.dumps(result.outputs[0])


def test_signals_do_not_stop_the_runner_and_a_killed_runner_forges_nothing():
    result = run(STUB, """
import os, signal
for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL, signal.SIGSTOP):
    try:
        os.kill(1, sig)
    except OSError as err:
        print(type(err).__name__)
print("sent")
""", "print('the runner still records')")
    assert result.statuses == {0: "error", 1: "ok", 2: "ok"}, result.statuses
    assert "the runner still records" in text(result, 2)

    # The runner killed from outside while the kernel attacks: what follows is missing, not forged.
    marker = f"lab-test-runner-kill-{uuid.uuid4().hex[:8]}"
    killed: list[int] = []

    def killer():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for proc in psutil.process_iter(["cmdline"]):
                if marker in " ".join(proc.info["cmdline"] or []):
                    try:
                        runner = next(p for p in proc.parents() if "/grader/runner.py" in p.cmdline())
                    except (StopIteration, psutil.Error):
                        continue
                    time.sleep(1.0)                  # the attack has run by now
                    runner.send_signal(signal.SIGKILL)
                    killed.append(runner.pid)
                    return
            time.sleep(0.2)

    thread = threading.Thread(target=killer)
    thread.start()
    result = run(STUB, "import subprocess, sys, time\nsubprocess.Popen([sys.executable, '-c', "
                       f"'import time; time.sleep(60)', '{marker}'])\n" + attack(EVERY_PID) + "\ntime.sleep(40)",
                 "print('never')")
    thread.join()
    assert killed, "the runner was found and killed"
    assert result.statuses == {0: "error"}, result.statuses
    _assert_not_forged(result)


# --- 2. the log, read outside the sandbox as hostile data ----------------------------------------

def _log(tmp_path: Path, *lines: bytes) -> Path:
    path = tmp_path / "cells.jsonl"
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def _record(index: int, outputs: object = (), status: str = "ok") -> bytes:
    return json.dumps({"index": index, "status": status, "outputs": list(outputs) if outputs == () else outputs,
                       "ename": None, "seconds": 0.1}).encode()


def test_a_deeply_nested_line_drops_that_record_only(tmp_path):
    nb = notebook("a", "b", "c")
    deep = b'{"index": 1, "status": "ok", "outputs": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}"
    with pytest.raises(RecursionError):      # what crashed the whole batch before (issue 16)
        json.loads(deep)
    path = _log(tmp_path, _record(0), deep, _record(2))
    result = sandbox.Run()
    sandbox._read_cells(path, nb, FAST, result)
    assert result.statuses == {0: "ok", 2: "ok"}
    assert any("malformed" in e for e in result.events), result.events


def test_nesting_within_the_bound_is_read_and_beyond_it_dropped(tmp_path):
    nb = notebook("a", "b")

    def nested(depth: int) -> dict:
        value: object = 1
        for _ in range(depth):
            value = {"k": [value]}
        return {"output_type": "display_data", "data": {"application/json": value}, "metadata": {}}

    # The record itself nests 2 (object, outputs list) + 2 (output, data) around the JSON value.
    ok, deep = nested((sandbox.MAX_DEPTH - 4) // 2), nested(sandbox.MAX_DEPTH)
    path = _log(tmp_path, _record(0, [ok]), _record(1, [deep]))
    result = sandbox.Run()
    sandbox._read_cells(path, nb, FAST, result)
    assert result.statuses == {0: "ok"} and result.outputs[0] == [ok]


@pytest.mark.parametrize("line", [
    b'"' + b'\\"' * 400_000,                                   # escaped quotes: quadratic for a naive string regex
    b"[" * 500_000 + b"]" * 500_000,
    b'["' + b"\\\\" * 400_000 + b'"]' + b"[" * 100,
    b'{"a":' * 300_000 + b"1" + b"}" * 300_000,
])
def test_hostile_lines_are_judged_in_bounded_time(tmp_path, line):
    started = time.monotonic()
    assert sandbox._depth_within(line, sandbox.MAX_DEPTH) in (True, False)
    assert time.monotonic() - started < 1.0
    limits = sandbox.Limits(cell_output_bytes=2 << 20)
    path = _log(tmp_path, *[line] * 4, _record(0))
    result = sandbox.Run()
    started = time.monotonic()
    sandbox._read_cells(path, notebook("a"), limits, result)
    assert time.monotonic() - started < 4.0
    assert result.statuses == {0: "ok"}


def test_depth_counts_brackets_inside_strings_as_text():
    assert sandbox._depth_within(json.dumps(["[" * 1000, "{" * 1000, '\\"[[[']).encode(), 2)
    assert not sandbox._depth_within(json.dumps([[["x"]]]).encode(), 2)
    assert sandbox._depth_within(json.dumps([[["x"]]]).encode(), 3)


def test_a_notebook_that_displays_deep_json_keeps_its_status_not_that_output():
    result = run("""
from IPython.display import display
value = 1
for _ in range(300):
    value = [value]
display({"application/json": value}, raw=True)
""", "print('next cell')")
    assert result.statuses == {0: "ok", 1: "ok"}, result.statuses
    assert "nested too deeply" in text(result, 0) and "next cell" in text(result, 1)
    assert result.events == [], result.events


# --- 3. disk: the work folder and /tmp are bounded, and the grader's disk is not touched ---------

def test_writing_two_gib_fills_the_bound_not_the_graders_disk():
    limits = sandbox.Limits(cell_seconds=60, notebook_seconds=120, memory_mb=2048, processes=128, disk_mb=256)
    places = [Path("/"), Path("/tmp"), ROOT]
    before = {p: shutil.disk_usage(p).free for p in places}
    lowest = dict(before)
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            for p in places:
                lowest[p] = min(lowest[p], shutil.disk_usage(p).free)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = run("""
import errno, json, os
chunk = b"x" * (64 << 20)
written = {}
for folder in (".", "/tmp"):
    written[folder] = 0
    try:
        for i in range(16):                          # 1 GiB per folder, 2 GiB in all
            with open(os.path.join(folder, f"fill-{i}"), "wb") as fh:
                fh.write(chunk)
            written[folder] += len(chunk)
    except OSError as err:
        written[folder + " stopped"] = errno.errorcode.get(err.errno)
print(json.dumps(written))
""", limits=limits)
    finally:
        stop.set()
        sampler.join()
    seen = facts(result, 0)
    assert seen[". stopped"] == "ENOSPC" and seen["/tmp stopped"] == "ENOSPC", seen
    assert seen["."] <= 256 << 20 and seen["/tmp"] <= 256 << 20, seen
    assert any(e.startswith("the submission filled its disk bound of 256 MiB") for e in result.events), result.events
    for p in places:
        assert before[p] - lowest[p] < 512 << 20, f"{p}: {(before[p] - lowest[p]) >> 20} MiB of the grader's disk used"


def test_an_honest_notebook_reports_no_disk_event():
    result = run("open('small.txt', 'w').write('x' * 1000)\nimport tempfile\ntempfile.NamedTemporaryFile().write(b'y')")
    assert result.statuses == {0: "ok"} and result.events == [], (result.statuses, result.events)


# --- 4. seccomp ----------------------------------------------------------------------------------

SYSCALLS = r"""
import ctypes, errno, json, os
libc = ctypes.CDLL(None, use_errno=True)
def call(fn, *args):
    ctypes.set_errno(0)
    rc = fn(*args)
    return "ok" if rc >= 0 else errno.errorcode.get(ctypes.get_errno())
CLONE_NEWUSER, CLONE_NEWNS, SIGCHLD = 0x10000000, 0x00020000, 17
os.makedirs("/tmp/mnt", exist_ok=True)
def clone(flags):
    ctypes.set_errno(0)
    rc = libc.syscall(56, flags, 0, 0, 0, 0)
    if rc == 0:
        os._exit(0)                                  # a child, in the unfiltered control
    if rc > 0:
        os.waitpid(rc, 0)
        return "ok"
    return errno.errorcode.get(ctypes.get_errno())
seen = {
    "unshare": call(libc.unshare, CLONE_NEWUSER),
    "mount": call(libc.mount, b"none", b"/tmp/mnt", b"tmpfs", 0, None),
    "clone_newuser": clone(CLONE_NEWUSER | SIGCHLD),
    "keyctl": call(libc.syscall, 250, 0, 0, 0, 0, 0),
    "bpf": call(libc.syscall, 321, 0, 0, 0),
    "io_uring_setup": call(libc.syscall, 425, 1, None),
    "x32_getpid": call(libc.syscall, 0x40000000 + 39),
}
seen["ptrace"] = call(libc.ptrace, 0, 0, None, None)    # PTRACE_TRACEME needs no privilege (last: it sticks)
print(json.dumps(seen))
"""

HONEST = r"""
import json, subprocess, sys, threading, multiprocessing as mp
import torch
x = torch.randn(64, 64, dtype=torch.float64, requires_grad=True)
y = torch.nn.functional.hardswish(x @ x.T).sum()
y.backward()
box = []
t = threading.Thread(target=lambda: box.append(torch.ones(3).sum().item()))
t.start(); t.join()
p = mp.get_context("fork").Process(target=lambda: None)
p.start(); p.join()
out = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True).stdout.strip()
print(json.dumps({"grad": x.grad.shape[0], "thread": box, "fork": p.exitcode, "subprocess": out}))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the syscall numbers in SYSCALLS are x86_64's")
def test_seccomp_denies_what_a_notebook_never_needs_and_torch_still_runs(monkeypatch):
    result = run(SYSCALLS, HONEST)
    seen = facts(result, 0)
    assert seen == {"ptrace": "EPERM", "unshare": "EPERM", "mount": "EPERM", "clone_newuser": "EPERM",
                    "keyctl": "EPERM", "bpf": "EPERM", "io_uring_setup": "EPERM", "x32_getpid": "EPERM"}, seen
    assert result.statuses == {0: "ok", 1: "ok"}, (result.statuses, result.outputs)
    assert facts(result, 1) == {"grad": 64, "thread": [3.0], "fork": 0, "subprocess": "42"}

    # Control: the same sandbox with a filter that allows everything.
    allow_all = struct.pack("=HBBI", 0x06, 0, 0, sandbox.RET_ALLOW)
    monkeypatch.setattr(sandbox, "seccomp_filter", lambda machine: allow_all)
    unfiltered = facts(run(SYSCALLS), 0)
    assert unfiltered["ptrace"] == "ok", unfiltered
    assert unfiltered["unshare"] != "EPERM" and unfiltered["clone_newuser"] != "EPERM", unfiltered  # --disable-userns
    assert unfiltered["io_uring_setup"] != "EPERM" and unfiltered["x32_getpid"] != "EPERM", unfiltered


def test_an_unknown_architecture_refuses_to_run_unfiltered(monkeypatch):
    with pytest.raises(sandbox.SandboxUnavailable, match="seccomp"):
        sandbox.seccomp_filter("riscv64")
    monkeypatch.setattr(sandbox.platform, "machine", lambda: "riscv64")
    with pytest.raises(sandbox.SandboxUnavailable, match="seccomp"):
        sandbox.run_notebook(notebook("print(1)"), FAST)
    with pytest.raises(sandbox.SandboxUnavailable, match="seccomp"):
        sandbox.check(FAST)


def _headers(path: str) -> dict[str, int]:
    text = Path(path).read_text()
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"#define __NR(?:3264)?_(\w+)\s+(\d+)\b", text)}


@pytest.mark.parametrize("column, header", [(0, "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"),
                                            (1, "/usr/include/asm-generic/unistd.h")])
def test_denied_syscall_numbers_match_the_kernel_headers(column, header):
    if not Path(header).exists():
        pytest.skip(f"{header} is not installed (linux-libc-dev)")
    numbers = _headers(header)
    for name, row in sandbox.DENIED_SYSCALLS.items():
        if row[column] is None:
            assert name not in numbers, name
        else:
            assert numbers.get(name) == row[column], (name, numbers.get(name), row[column])


def _bpf(program: bytes, nr: int, arch: int, arg0: int = 0) -> int:
    """A classic-BPF interpreter for the instructions seccomp_filter emits."""
    data = struct.pack("=iIQ6Q", nr, arch, 0, arg0, 0, 0, 0, 0, 0)
    insns = [struct.unpack("=HBBI", program[i:i + 8]) for i in range(0, len(program), 8)]
    pc, acc = 0, 0
    while True:
        code, jt, jf, k = insns[pc]
        if code == 0x20:
            acc = struct.unpack_from("=I", data, k)[0]
            pc += 1
        elif code in (0x15, 0x35, 0x45):
            hit = {0x15: acc == k, 0x35: acc >= k, 0x45: bool(acc & k)}[code]
            pc += 1 + (jt if hit else jf)
        elif code == 0x06:
            return k
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")


@pytest.mark.parametrize("machine", ["x86_64", "aarch64"])
def test_the_filter_program_denies_exactly_the_list(machine):
    program = sandbox.seccomp_filter(machine)
    arch, column, clone, clone3 = sandbox._ARCHES[machine]
    eperm, enosys = sandbox.RET_ERRNO | 1, sandbox.RET_ERRNO | 38
    denied = {row[column] for row in sandbox.DENIED_SYSCALLS.values() if row[column] is not None}
    for nr in range(0, 460):
        expected = eperm if nr in denied else enosys if nr == clone3 else sandbox.RET_ALLOW
        assert _bpf(program, nr, arch) == expected, (machine, nr)
    for flag in (0x10000000, 0x00020000, 0x20000000, 0x40000000, 0x08000000, 0x04000000, 0x02000000, 0x80):
        assert _bpf(program, clone, arch, 0x11 | flag) == eperm, hex(flag)
    assert _bpf(program, clone, arch, 0x003D0F00 | 0x11) == sandbox.RET_ALLOW   # pthread_create's flags
    assert _bpf(program, 39, 0x40000003) == eperm                              # i386 on x86_64
    if machine == "x86_64":
        assert _bpf(program, 0x40000000 + 101, arch) == eperm                  # x32 ptrace


# --- 5. no host path shows inside ----------------------------------------------------------------

PEEK = r"""
import json, os
def read(path, limit=1 << 16):
    try:
        with open(path, "rb") as fh:
            return fh.read(limit).replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError as err:
        return type(err).__name__
def link(path):
    try:
        return os.readlink(path)
    except OSError as err:
        return type(err).__name__
pids = {pids}
seen = {{"environ": dict(os.environ), "cwd": os.getcwd()}}
for name in ("mountinfo", "mounts", "cgroup", "cmdline", "environ", "status", "stat", "maps"):
    seen["self " + name] = read("/proc/self/" + name, 1 << 20)
for pid in pids:
    for name in ("cmdline", "environ", "mountinfo", "cgroup", "stat"):
        seen[f"{{pid}} {{name}}"] = read(f"/proc/{{pid}}/{{name}}")
    for name in ("cwd", "root", "exe"):
        seen[f"{{pid}} {{name}}"] = link(f"/proc/{{pid}}/{{name}}")
    try:
        seen[f"{{pid}} fds"] = [link(f"/proc/{{pid}}/fd/{{fd}}") for fd in os.listdir(f"/proc/{{pid}}/fd")]
    except OSError as err:
        seen[f"{{pid}} fds"] = type(err).__name__
print(json.dumps(seen))
"""


def _host_paths(blob: str) -> list[str]:
    """The grader's own paths in `blob`: the course (but its venv, bound at its own path), its
    temporary folders."""
    venv = str(Path(sys.prefix).resolve())
    rest = blob.replace(venv, "<venv>")
    found = []
    if str(ROOT) in rest:
        found.append(str(ROOT))
    found += sorted(set(re.findall(r"lab-sandbox-\w+|lab-fontcache-\w+", rest)))
    return found


def test_no_host_path_shows_inside(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)    # the grader's working folder, a host path of its own
    result = run(PEEK.format(pids=EVERY_PID), "import subprocess, sys\nprint(subprocess.run([sys.executable, '-c', "
                 f"{PEEK.format(pids=EVERY_PID)!r}], capture_output=True, text=True).stdout)")
    for index in (0, 1):
        seen = facts(result, index)
        blob = json.dumps(seen)
        assert "/grader/runner.py" in seen["1 cmdline"] and "/sandbox" in seen["self mountinfo"], "real data was read"
        assert _host_paths(blob) == [], _host_paths(blob)
        assert str(tmp_path) not in blob
    # Control: without the sandbox the same code names the course (the runner's own path).
    unsafe = run(PEEK.format(pids="[os.getppid()]"), limits=UNSAFE)
    assert str(ROOT) in _host_paths(json.dumps(facts(unsafe, 0)))


# --- 6. the interpreter: a symlinked venv runs, and a sandbox that cannot start it says so -------------

SYMLINKED = r'''
import json, sys
sys.path.insert(0, {root!r})
from labs.grading import sandbox
import nbformat
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import sys; print(sys.prefix)")])
nb.metadata["kernelspec"] = {{"name": "python3", "display_name": "Python 3", "language": "python"}}
sandbox.check(sandbox.Limits(cell_seconds=30, notebook_seconds=90))
r = sandbox.run_notebook(nb, sandbox.Limits(cell_seconds=30, notebook_seconds=90))
print(json.dumps({{"statuses": r.statuses, "events": r.events, "executable": sys.executable,
                  "out": "".join(o.get("text", "") for o in r.outputs.get(0, []))}}))
'''


def test_a_course_whose_venv_is_a_symlink_grades(tmp_path):
    """Seen in a course whose .venv is a symlink: the sandbox bound the resolved prefix but ran the
    interpreter by the linked path, so nothing started. Both paths are bound now."""
    link = tmp_path / "course" / ".venv"
    link.parent.mkdir()
    link.symlink_to(Path(sys.prefix).resolve())
    python = link / "bin" / "python"
    proc = subprocess.run([str(python), "-c", SYMLINKED.format(root=str(ROOT))], capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["executable"] == str(python)
    assert result["statuses"] == {"0": "ok"} and result["events"] == [], result
    assert result["out"].strip() == str(link), result   # the venv, by the path it was started by


def test_a_sandbox_that_cannot_start_the_interpreter_says_so(monkeypatch):
    """Without the interpreter's prefix inside, nothing starts: `check` (run before any student by
    `make autograde`) and a run both name the interpreter, instead of a bare "status not run"."""
    binds = sandbox._system_binds

    def without_prefix():
        args, out = binds(), []
        i = 0
        while i < len(args):
            if args[i] == "--ro-bind" and not args[i + 1].startswith(("/usr", "/bin", "/lib", "/sbin", "/etc")):
                i += 3
                continue
            out.append(args[i])
            i += 1
        return out

    monkeypatch.setattr(sandbox, "_system_binds", without_prefix)
    if not str(Path(sys.executable).resolve()).startswith("/usr"):
        with pytest.raises(sandbox.SandboxUnavailable, match="cannot start the interpreter") as err:
            sandbox.check(FAST)
        assert sys.executable in str(err.value)
        result = run("print(1)")
        assert result.statuses == {}
        assert any("could not start the interpreter" in e and sys.executable in e for e in result.events), \
            result.events
    else:
        pytest.fail("the grader's Python must come from a venv outside /usr for this test (make setup builds one)")
