"""The store of runs: one sandboxed run per key, written once by the coordinator, read by nbgrader.

`run_key` hashes everything that changes a run (the cell types and sources, the probe kit, the
runner and the sandbox's sources, every limit (UNSAFE included), the device, Python and torch);
`store` writes a run under .lab-grader/runs/<key>.json once (atomic rename), `load` reads it back
as a `sandbox.Run`. `timed_out` and `kit_failed` say whether a stored or fresh run is one the
fan-out must retry. The fan-out (labs/grading/fanout.py) writes; SandboxedExecute
(labs/grading/nbgrader_steps.py) reads: neither imports the other.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from dataclasses import asdict
from importlib.metadata import version
from pathlib import Path

from . import sandbox
from .execute import KIT, KIT_FAILED

CACHE = Path(".lab-grader") / "runs"
def run_key(nb, limits: sandbox.Limits) -> str:
    """Everything that changes a run: the notebook, the probe kit, the runner and the sandbox's
    sources, every limit (UNSAFE included), the device, Python and torch."""
    parts = [json.dumps([(c.cell_type, c.source) for c in nb.cells]), KIT.read_text(),
             sandbox.RUNNER.read_text(), Path(sandbox.__file__).read_text(), sandbox.device(),
             json.dumps(asdict(limits), sort_keys=True), platform.python_version(), version("torch")]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def cache_file(course: Path, key: str) -> Path:
    return course / CACHE / f"{key}.json"


def load(course: Path, key: str) -> sandbox.Run | None:
    path = cache_file(course, key)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return sandbox.Run(statuses={int(k): v for k, v in data["statuses"].items()},
                       outputs={int(k): v for k, v in data["outputs"].items()},
                       errors={int(k): v for k, v in data["errors"].items()},
                       events=data["events"], seconds=data["seconds"], timing=data.get("timing", {}),
                       cell_seconds={int(k): v for k, v in data.get("cell_seconds", {}).items()})


def store(course: Path, key: str, run: dict) -> bool:
    """Write one run, once (atomic rename); False when the key was already there."""
    path = cache_file(course, key)
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(run))
    os.replace(tmp, path)
    return True


def timed_out(run: dict | sandbox.Run) -> bool:
    """A cell ran past its timeout, the notebook past its wall-clock budget, or the grader's own
    first cell (the probe kit, before any student code) did not finish: all retried."""
    data = asdict(run) if isinstance(run, sandbox.Run) else run
    return any(s == "timeout" for s in data.get("statuses", {}).values()) or \
        any("wall-clock budget" in str(e) for e in data.get("events", [])) or kit_failed(data)


def kit_failed(run: dict | sandbox.Run) -> bool:
    data = asdict(run) if isinstance(run, sandbox.Run) else run
    return any(str(e) == KIT_FAILED for e in data.get("events", []))
