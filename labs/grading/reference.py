"""The reference run: the instructor's solution through the same sandbox and probes.

`reference` executes the source notebook (as `plan.runnable` makes it) once per version of the
source, the probe kit, the runner, the device and torch, and caches its records under the course's
.lab-grader/reference/ (no sandbox sees it). The judge compares every submission with these
records; expected values are computed here, never in a student's kernel. `declaration` reads what
an exercise re-implements and may use from the source's metadata (never a submission's).
"""

from __future__ import annotations

import hashlib
import json
import os
from importlib.metadata import version
from pathlib import Path

from ..course import notebooks
from . import judge, sandbox
from .execute import KIT, execute
from .plan import runnable, skipped_sources


def declaration(source_nb) -> dict[str, list[str]]:
    """What the exercise re-implements and what its answers may use, from the source notebook's
    metadata `lab.exercise` (the instructor's; a submission's metadata is never read): `reimplements`
    (dotted patterns: a review flag in an answer cell), `ops` (aten names) and `calls` (qualified
    Python names): evidence in a probe's own log; `allow` (dotted patterns an answer cell may use).
    A missing key is an empty list."""
    raw = source_nb.metadata.get("lab", {}).get("exercise", {})
    raw = raw if isinstance(raw, dict) else {}
    return {k: [str(v) for v in raw.get(k) or () if isinstance(v, str)]
            for k in ("reimplements", "ops", "calls", "allow")}


class ReferenceFailed(RuntimeError):
    pass


def reference(course: Path, assignment: str, notebook: str, cell_seconds: int = 60) -> dict[str, dict]:
    """{grade_id: {key: record}} of the source notebook, cached by what it depends on, in the
    course's .lab-grader/reference/ or in LAB_REFERENCE_CACHE (a folder of the grader's, shared
    by courses made from the same source: the tests' throwaway courses)."""
    src = course / "source" / assignment / f"{notebook}.ipynb"
    parts = [notebooks.content_hash(src), KIT.read_text(), sandbox.RUNNER.read_text(),
             sandbox.device(), version("torch")]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    folder = Path(os.environ.get("LAB_REFERENCE_CACHE") or course / ".lab-grader" / "reference")
    cache = folder / f"{notebook}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    nb = notebooks.read(src)
    run = execute(runnable(nb, skipped_sources(nb)), cell_seconds)
    graded = [i for i, c in enumerate(nb.cells) if notebooks.is_graded_test(c)]
    out: dict[str, dict] = {}
    problems = list(run.events)
    for i in graded:
        gid = notebooks.grade_id(nb.cells[i])
        if run.statuses.get(i) != "ok":
            problems.append(f"{gid}: the solution's cell ended with status {run.statuses.get(i, 'not run')}")
        try:
            out[gid] = judge.records(run.outputs.get(i, []))
        except judge.Malformed as err:
            problems.append(f"{gid}: {err}")
    problems += judge.check_reference(out, [notebooks.grade_id(nb.cells[i]) for i in graded])
    if problems:
        raise ReferenceFailed(f"the solution of {notebook} does not pass its own probes: " + "; ".join(problems))
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(out))
    partial.replace(cache)  # atomic: a reader never sees half a reference
    return out
