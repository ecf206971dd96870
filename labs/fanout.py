"""Grading fan-out: every submitted notebook executed in its own sandbox, many at once, on Dask.

    coordinator (this process, trusted)
      │ prepares each submitted notebook exactly as `nbgrader autograde` will (its configured
      │ sanitize preprocessors against the gradebook's source cells) and skips what is cached
      ▼
    Dask workers (an embedded LocalCluster, or an existing cluster: `SCHEDULER=tcp://host:8786`
      │ or DASK_SCHEDULER_ADDRESS): each task runs ONE notebook in a fresh sandbox
      │ (labs/sandbox.py) and returns data, the `Run`; workers write nothing
      ▼
    coordinator: stores each Run under .lab-grader/runs/<key>.json (the only writer), then
    `nbgrader autograde` grades serially; SandboxedExecute finds every run by the same key,
    the judge decides, SaveAutoGrades writes the gradebook (the only gradebook writer).

The key is a hash of what runs (cell types and sources, the probe kit, the runner, the
limits, the device): a task that runs twice (a worker died, a regrade) computes the same
key and the same data, and the coordinator writes a key once. A notebook nbgrader prepares
differently from here (it never should) is simply executed by SandboxedExecute itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import nbformat

from . import notebooks, sandbox

CACHE = Path(".lab-grader") / "runs"


def run_key(nb, limits: sandbox.Limits) -> str:
    from . import grader

    parts = [json.dumps([(c.cell_type, c.source) for c in nb.cells]), grader.KIT.read_text(),
             sandbox.RUNNER.read_text(), sandbox.device(),
             f"{limits.cell_seconds}/{limits.notebook_seconds}/{limits.memory_mb}/{limits.threads}"]
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


def execute_task(cells: list[tuple[str, str]], limits: dict) -> dict:
    """A worker's whole job: run one notebook in a sandbox, return its Run as plain data."""
    from . import grader

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src)
        for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return asdict(grader.execute(nb, lim=sandbox.Limits(**limits)))


def prepared(course: Path, assignment: str, student: str, notebook: str, db_url: str, preprocessors):
    """What SandboxedExecute will run for this submission: the notebook after the configured
    sanitize preprocessors (as nbgrader prepares it), made runnable (labs/grader.py)."""
    from . import grader

    nb = notebooks.read(course / "submitted" / student / assignment / f"{notebook}.ipynb")
    resources = {"unique_key": notebook, "lab_course_root": str(course),
                 "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook, "db_url": db_url}}
    for pp in preprocessors:
        nb, resources = pp.preprocess(nb, resources)
    source = notebooks.read(course / "source" / assignment / f"{notebook}.ipynb")
    return grader.runnable(nb, grader.skipped_sources(source))


def sanitize_preprocessors(course: Path) -> list:
    from traitlets.config.loader import PyFileConfigLoader
    from traitlets.utils.importstring import import_item

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return [import_item(name)(config=config) for name in config.Autograde.sanitize_preprocessors]


def client_for(jobs: int, scheduler: str | None):
    """A Dask client: the cluster at `scheduler` (or DASK_SCHEDULER_ADDRESS), else a LocalCluster
    of `jobs` single-threaded worker processes started here and closed with the client."""
    from dask.distributed import Client, LocalCluster

    address = scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        return Client(address, timeout="30s")
    cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None,
                           memory_limit=0, silence_logs=40)
    return Client(cluster)


def fan_out(course: Path, assignment: str, students: list[str], db_url: str, limits: sandbox.Limits,
            jobs: int, scheduler: str | None = None, out=sys.stdout) -> dict:
    """Execute every submitted notebook of `students` in parallel; store each run. Returns counts."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    preprocessors = sanitize_preprocessors(course)
    names = [p.stem for p in sorted((course / "source" / assignment).glob("*.ipynb"))]
    todo: dict[str, list[tuple[str, str]]] = {}
    cached = skipped = 0
    for student in students:
        for name in names:
            if not (course / "submitted" / student / assignment / f"{name}.ipynb").is_file():
                continue
            try:
                nb = prepared(course, assignment, student, name, db_url, preprocessors)
            except Exception:  # nbgrader meets the same notebook and reports it; nothing to run early
                skipped += 1
                continue
            key = run_key(nb, limits)
            if cache_file(course, key).exists():
                cached += 1
            else:
                todo.setdefault(key, [(c.cell_type, c.source) for c in nb.cells])
    stats = {"notebooks": cached + len(todo), "cached": cached, "executed": 0, "skipped": skipped, "seconds": 0.0}
    if not todo:
        return stats
    t0 = time.perf_counter()
    with client_for(jobs, scheduler) as client:
        futures = {client.submit(execute_task, cells, asdict(limits), key=f"lab-run-{key}", pure=False): key
                   for key, cells in todo.items()}
        with tqdm(total=len(futures), desc="executing notebooks", unit="nb", file=out, mininterval=1.0) as bar:
            for future in as_completed(futures):
                store(course, futures[future], future.result())
                stats["executed"] += 1
                bar.update(1)
    stats["seconds"] = time.perf_counter() - t0
    return stats
