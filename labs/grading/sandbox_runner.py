"""Runs INSIDE the sandbox: execute one notebook, cell by cell, and write what each cell did.

    python sandbox_runner.py IN.ipynb LOG_FD CELL_TIMEOUT CELL_OUTPUT_BYTES NOTEBOOK_OUTPUT_BYTES [FIRST_CELL_TIMEOUT]

FIRST_CELL_TIMEOUT (default CELL_TIMEOUT) is the first code cell's: the grader's own, when it puts one there.

LOG_FD is a descriptor the coordinator (labs/grading/sandbox.py) opened on a file outside the sandbox and
passed down. One JSON line when the kernel is ready ({"runner": {"started": t, "kernel_ready": t}}),
then one per code cell, written as soon as the cell finishes:
    {"index": i, "status": "ok" | "error" | "timeout" | "died", "outputs": [...], "ename": ..., "seconds": s}
and marks of the runner's own: {"runner": {"disk_full": "work" | "tmp"}}, {"runner": {"done": t}}.

Who can write the log: only this process. The student's code runs in the kernel, a child of this
process under the same uid, so before the kernel starts this process
- makes itself non-dumpable (prctl PR_SET_DUMPABLE 0): a process of the same uid without
  CAP_SYS_PTRACE can then neither open /proc/<this>/fd/N nor /proc/<this>/mem, nor ptrace it,
  nor take its descriptors with pidfd_getfd (the sandbox's seccomp filter denies those calls too);
- marks the log close-on-exec and closes every other inherited descriptor, and jupyter_client
  starts the kernel with close_fds: the kernel never holds the log;
- is the sandbox's PID 1 (bubblewrap's --as-pid-1), and ignores SIGINT once the kernel runs: from
  inside the sandbox no signal but the ones it handles reaches PID 1, so the student's code cannot
  stop it. If it dies anyway, records are missing (cells not run), never forged.
What the kernel still controls is what it sends as its own cells' outputs (inherent: that is the
data), so the coordinator reads the log as hostile data all the same, with its own caps, and
enforces the wall-clock budget from outside.
"""

import ctypes
import json
import os
import signal
import sys
import threading
import time

# jsonschema's optional IRI check compiles ~40 Lark grammars at import (about 1.5 s of CPU per
# notebook); notebooks never use it (labs/nbgrader_cli.py says more).
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402

PR_SET_DUMPABLE = 4
FULL_BYTES = 1 << 20        # a bounded folder with less than this free has filled its bound
OUTPUT_DEPTH = 48           # an output's nesting; the coordinator drops a log line nested over 64 (MAX_DEPTH)


def _not_dumpable() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_DUMPABLE, 0) failed")


class Log:
    """Whole lines on the inherited descriptor, one write each, from any thread. Cell records stop
    once `budget` bytes are written (the coordinator reads no more than that and says so); the
    runner's own marks are small and always written."""

    def __init__(self, fd: int, budget: int):
        self.fd, self.left, self.lock = fd, budget, threading.Lock()

    def write(self, entry: dict, counted: bool = True) -> None:
        data = (json.dumps(entry) + "\n").encode()
        with self.lock:
            if counted:
                if self.left < 0:
                    return
                self.left -= len(data)
            view = memoryview(data)
            while view:
                view = view[os.write(self.fd, view):]


def _depth(value: object) -> int:
    """How deeply `value` nests lists and dicts (iterative: any depth)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            stack += [(v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)]
    return deepest


def _capped(outputs: list, limit: int) -> list:
    """Outputs whose JSON fits in `limit` bytes and OUTPUT_DEPTH levels: long texts cut, too deep
    outputs replaced by a note, then whole outputs dropped."""
    kept, used = [], 0
    for out in outputs:
        if _depth(out) > OUTPUT_DEPTH:
            out = {"output_type": "stream", "name": "stdout", "text": "[output dropped: nested too deeply]\n"}
        out = dict(out)
        if isinstance(out.get("text"), str) and len(out["text"]) > limit // 4:
            out["text"] = out["text"][: limit // 4] + "\n[output cut]\n"
        size = len(json.dumps(out))
        if used + size > limit:
            kept.append({"output_type": "stream", "name": "stdout", "text": "[further output dropped]\n"})
            break
        kept.append(out)
        used += size
    return kept


class Watch(threading.Thread):
    """Notes, on the log, a bounded folder (work folder, /tmp) that filled up; as PID 1, reaps the
    orphans the kernel's children leave (never the kernel itself: jupyter_client waits for it)."""

    def __init__(self, log: Log):
        super().__init__(daemon=True)
        self.log, self.kernel, self.full = log, None, set()

    def check(self) -> None:
        for name, path in (("work", "."), ("tmp", "/tmp")):
            try:
                st = os.statvfs(path)
            except OSError:
                continue
            if name not in self.full and st.f_bavail * st.f_frsize < FULL_BYTES:
                self.full.add(name)
                self.log.write({"runner": {"disk_full": name}}, counted=False)

    def reap(self) -> None:
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == self.kernel:
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as fh:
                    state, ppid = fh.read().rpartition(b")")[2].split()[:2]
                if state == b"Z" and int(ppid) == 1:
                    os.waitpid(int(entry), os.WNOHANG)
            except (OSError, ValueError):
                continue

    def run(self) -> None:
        while True:
            self.check()
            if os.getpid() == 1 and self.kernel is not None:
                self.reap()
            time.sleep(0.2)


def main(src: str, log_fd: int, timeout: int, limit: int, budget: int, first_timeout: int | None = None) -> int:
    started = time.time()
    _not_dumpable()
    os.set_inheritable(log_fd, False)
    os.closerange(3, log_fd)
    os.closerange(log_fd + 1, 1 << 16)
    log = Log(log_fd, budget)
    watch = Watch(log)
    watch.start()
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(nb, timeout=timeout, interrupt_on_timeout=True, allow_errors=True,
                            kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": "."}})
    with client.setup_kernel():
        watch.kernel = client.km.provisioner.process.pid
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # after the kernel started: it keeps its default
        log.write({"runner": {"started": started, "kernel_ready": time.time()}}, counted=False)
        first = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            limit_s = first_timeout if index == first and first_timeout else timeout
            client.timeout = limit_s
            started_cell = time.monotonic()
            try:
                client.execute_cell(cell, index)
                if time.monotonic() - started_cell >= limit_s:
                    status = "timeout"
                elif any(o.get("output_type") == "error" for o in cell.outputs):
                    status = "error"
                else:
                    status = "ok"
            except CellTimeoutError:
                status = "timeout"
            except DeadKernelError:
                status = "died"
            errors = [o.get("ename") for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            log.write({"index": index, "status": status, "outputs": _capped(cell.get("outputs", []), limit),
                       "ename": str(errors[0])[:60] if errors else None, "seconds": time.monotonic() - started_cell})
            if status == "died" or log.left < 0:
                break
        watch.check()
        log.write({"runner": {"done": time.time()}}, counted=False)
        # No polite kernel shutdown (about a second per notebook): the kernel's process group is
        # killed here, and the sandbox kills every process it holds anyway.
        try:
            os.killpg(os.getpgid(client.km.provisioner.process.pid), signal.SIGKILL)
        except Exception:  # noqa: BLE001 - already gone, or no provisioner: nothing left to stop
            pass
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]),
                  int(sys.argv[6]) if len(sys.argv) > 6 else None))
