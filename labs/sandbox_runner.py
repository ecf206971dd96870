"""Runs INSIDE the sandbox: execute one notebook, cell by cell, and write what each cell did.

    python sandbox_runner.py IN.ipynb OUT.jsonl CELL_TIMEOUT CELL_OUTPUT_BYTES

One JSON line when the kernel is ready ({"runner": {"started": t, "kernel_ready": t}}), then one
per code cell, written as soon as the cell finishes:
    {"index": i, "status": "ok" | "error" | "timeout" | "died", "outputs": [...], "ename": ..., "seconds": s}
Nothing here is trusted: the student's code runs beside this process and may rewrite or
replace any of it. The coordinator (labs/sandbox.py) reads the file as hostile data, with
its own caps, and enforces the wall-clock budget from outside.
"""

import json
import os
import signal
import sys
import time

# jsonschema's optional IRI check compiles ~40 Lark grammars at import (about 1.5 s of CPU per
# notebook); notebooks never use it (labs/nbgrader_cli.py says more).
sys.modules.setdefault("rfc3987_syntax", None)

import nbformat  # noqa: E402
from nbclient import NotebookClient  # noqa: E402
from nbclient.exceptions import CellTimeoutError, DeadKernelError  # noqa: E402


def _capped(outputs: list, limit: int) -> list:
    """Outputs whose JSON fits in `limit` bytes: long texts cut, then whole outputs dropped."""
    kept, used = [], 0
    for out in outputs:
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


def main(src: str, dest: str, timeout: int, limit: int) -> int:
    started = time.time()
    nb = nbformat.read(src, as_version=4)
    client = NotebookClient(nb, timeout=timeout, interrupt_on_timeout=True, allow_errors=True,
                            kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": "."}})
    with open(dest, "a", encoding="utf-8") as log, client.setup_kernel():
        log.write(json.dumps({"runner": {"started": started, "kernel_ready": time.time()}}) + "\n")
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            started_cell = time.monotonic()
            try:
                client.execute_cell(cell, index)
                if time.monotonic() - started_cell >= timeout:
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
            line = {"index": index, "status": status, "outputs": _capped(cell.get("outputs", []), limit),
                    "ename": str(errors[0])[:60] if errors else None, "seconds": time.monotonic() - started_cell}
            log.write(json.dumps(line) + "\n")
            log.flush()
            if status == "died":
                break
        log.write(json.dumps({"runner": {"done": time.time()}}) + "\n")
        log.flush()
        # No polite kernel shutdown (about a second per notebook): the kernel's process group is
        # killed here, and the sandbox kills every process it holds anyway.
        try:
            os.killpg(os.getpgid(client.km.provisioner.process.pid), signal.SIGKILL)
        except Exception:  # noqa: BLE001 - already gone, or no provisioner: nothing left to stop
            pass
        os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
