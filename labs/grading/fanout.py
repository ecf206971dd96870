"""Grading fan-out: every submitted notebook executed in its own sandbox, many at once, on Dask.

    coordinator (this process, trusted)
      │ prepares each submitted notebook exactly as `nbgrader autograde` will (its configured
      │ sanitize preprocessors against the gradebook's source cells) and skips what is cached
      ▼
    Dask workers (an embedded LocalCluster, or an existing cluster: `SCHEDULER=tcp://host:8786`
      │ or DASK_SCHEDULER_ADDRESS): each task runs ONE notebook in a fresh sandbox
      │ (labs/grading/sandbox.py) and returns data, the `Run`; workers write nothing
      ▼
    coordinator: stores each Run under .lab-grader/runs/<key>.json (labs/grading/runs.py; the only writer), then
    `nbgrader autograde` grades serially; SandboxedExecute finds every run by the same key,
    the judge decides, SaveAutoGrades writes the gradebook (the only gradebook writer).

The key (`run_key`) is a hash of everything that changes a run: the cell types and sources,
the probe kit, the runner and the sandbox's sources, every limit (UNSAFE included), the
device, and the Python and torch versions. A task that runs twice (a worker died, a regrade)
computes the same key and the same data, and the coordinator writes a key once. A notebook
nbgrader prepares differently from here (it never should) is simply executed by
SandboxedExecute itself.

One student's notebook stays that student's: a task that raises (a worker crashed on it,
hostile data the reader could not take) is not stored, and nbgrader executes that notebook
itself, where the failure is reported for that student only.

Load never costs marks. A run with a timeout (a cell past its timeout, or the notebook past
its wall-clock budget) is not stored from the batch: after the batch it is run again, alone,
with the same limits (`retry`), while `Contention` measures how long the notebook's own
processes waited for a CPU (the run-queue wait in /proc/<pid>/schedstat of every process the
sandbox holds, sampled) while the cells that timed out ran. If the retry still times out and
that wait reached `STARVED` of those cells' time, the machine was overloaded: the run is not
stored, and the notebook is a grading error to rerun, never a wrong answer. An honest endless loop or a long sleep on a
machine that gave it the CPU (a sleeping process waits for nothing) keeps its timeout.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

from ..course import notebooks
from . import sandbox
from .execute import execute
from .plan import runnable, skipped_sources
from .runs import cache_file, kit_failed, run_key, store, timed_out

# A retry that still times out was starved when its processes waited for a CPU at least this
# share of its wall-clock time (on an idle machine the wait is about 0; see Contention).
STARVED = 0.2

class Contention:
    """How long the processes this process starts (the sandbox and everything in it) waited for
    a CPU: the run-queue wait of /proc/<pid>/schedstat (second field, ns), sampled every
    `interval` seconds over every descendant started while the `with` block runs; and how many
    CPUs the rest of the machine kept busy meanwhile (`others_cores`, from /proc/stat). A process that sleeps
    waits for nothing; one that wants a CPU on a busy machine waits. Linux only: where schedstat
    cannot be read, `available` is False and the wait is 0."""

    def __init__(self, interval: float = 0.1):
        self.interval, self.waited, self.ran, self.seconds = interval, 0.0, 0.0, 0.0
        self.others = 0.0  # CPU-seconds the rest of the machine used meanwhile (all CPUs' busy time less ours)
        self.available = Path(f"/proc/{os.getpid()}/schedstat").is_file()
        self._seen: dict[tuple[int, int], tuple[float, float]] = {}
        self.series: list[tuple[float, float]] = []  # (seconds since the start, wait so far)
        self._stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        try:
            children = psutil.Process().children(recursive=True)
        except psutil.Error:
            return
        for child in children:
            if child.pid in self._before:  # not the block's: started before it (a test's load, a worker)
                continue
            try:
                ran, waited, _ = (int(x) for x in Path(f"/proc/{child.pid}/schedstat").read_text().split()[:3])
                key = (child.pid, int(child.create_time() * 100))
            except (OSError, ValueError, psutil.Error):
                continue
            self._seen[key] = (ran / 1e9, waited / 1e9)
        self.series.append((time.monotonic() - self._t0, sum(w for _, w in self._seen.values())))

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> Contention:
        import psutil

        try:
            self._before = {c.pid for c in psutil.Process().children(recursive=True)}
        except psutil.Error:
            self._before = set()
        self._t0 = time.monotonic()
        self._busy0 = _busy_seconds()
        if self.available:
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.monotonic() - self._t0
        if self.available:
            self._stop.set()
            self._thread.join()
        self.ran = sum(r for r, _ in self._seen.values())
        self.waited = sum(w for _, w in self._seen.values())
        self.others = max(0.0, _busy_seconds() - self._busy0 - self.ran)

    @property
    def others_cores(self) -> float:
        """How many CPUs the rest of the machine kept busy, on average, while the block ran."""
        return self.others / self.seconds if self.seconds else 0.0

    @property
    def share(self) -> float:
        """The wait as a share of the wall-clock time (can pass 1 with several processes)."""
        return self.waited / self.seconds if self.seconds else 0.0

    def share_within(self, windows: list[tuple[float, float]]) -> float:
        """The wait inside these windows (seconds since the start) as a share of their length."""
        def at(t: float) -> float:
            before = [w for s, w in self.series if s <= t]
            return before[-1] if before else 0.0

        length = sum(b - a for a, b in windows)
        return sum(at(b) - at(a) for a, b in windows) / length if length > 0 else self.share


def _busy_seconds() -> float:
    """All CPUs' busy time since boot, in seconds (/proc/stat: everything but idle and iowait)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


@dataclass
class Retry:
    run: dict              # the retry's Run, as data
    timed_out: bool        # the retry timed out too
    starved: float         # Contention.share during the retry
    overloaded: bool       # timed out while starved: a grading error to rerun, never a score
    others_cores: float = 0.0  # CPUs the rest of the machine kept busy during the retry

    def note(self) -> str:
        if kit_failed(self.run):
            return ("the grader's own first cell (the probe kit) did not finish, before any of the student's code "
                    "ran: a grading error, not a score; rerun `make autograde` on an idle machine")
        return (f"ran out of time while the grader was overloaded (its processes waited for a CPU "
                f"{100 * self.starved:.0f}% of the time its timed-out cells ran): a grading error, "
                "not a score; rerun `make autograde` on an idle machine")


def timeout_windows(run: dict) -> list[tuple[float, float]]:
    """When the cells that timed out ran, in seconds since the run started (from the run's own
    timings: a notebook that forges them can only turn its own timeout into a grading error, never
    into marks). Empty when the notebook ran past its wall-clock budget: the whole run counts."""
    if any("wall-clock budget" in str(e) for e in run.get("events", [])):
        return []
    timing = run.get("timing", {})
    t = float(timing.get("sandbox start", 0.0)) + float(timing.get("kernel start", 0.0))
    windows = []
    for index, seconds in sorted((int(k), float(v)) for k, v in run.get("cell_seconds", {}).items()):
        if run.get("statuses", {}).get(index, run.get("statuses", {}).get(str(index))) == "timeout":
            windows.append((t, t + seconds))
        t += seconds
    return windows


def retry(cells: list[tuple[str, str]], limits: sandbox.Limits) -> Retry:
    """Run a notebook that timed out once more, alone, with the same limits, measuring how long its
    processes waited for a CPU while the cells that timed out ran (the whole run for a notebook
    past its wall-clock budget)."""
    with Contention() as load:
        run = execute_task(cells, asdict(limits))
    again = timed_out(run)
    starved = load.share_within(timeout_windows(run)) if again else load.share
    # Starved: its processes waited for a CPU, AND the rest of the machine left it less than one
    # free CPU (a notebook whose own children compete with each other waits too, on an idle
    # machine: that timeout is its own). The grader's own first cell (the probe kit) never
    # timing out is not the student's doing either: a grading error whatever the load.
    busy = starved >= STARVED and load.others_cores > (os.cpu_count() or 1) - 1
    return Retry(run, again, starved, again and (busy or kit_failed(run)), load.others_cores)


def execute_task(cells: list[tuple[str, str]], limits: dict) -> dict:
    """A worker's whole job: run one notebook in a sandbox, return its Run as plain data."""
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(src) if kind == "code" else nbformat.v4.new_markdown_cell(src)
        for kind, src in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return asdict(execute(nb, lim=sandbox.Limits(**limits)))


def prepared(course: Path, assignment: str, student: str, notebook: str, db_url: str, preprocessors):
    """What SandboxedExecute will run for this submission: the notebook after the configured
    sanitize preprocessors (as nbgrader prepares it), made runnable (labs/grading/plan.py)."""
    nb = notebooks.read(course / "submitted" / student / assignment / f"{notebook}.ipynb")
    resources = {"unique_key": notebook, "lab_course_root": str(course),
                 "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook, "db_url": db_url}}
    for pp in preprocessors:
        nb, resources = pp.preprocess(nb, resources)
    source = notebooks.read(course / "source" / assignment / f"{notebook}.ipynb")
    return runnable(nb, skipped_sources(source))


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


def retry_timeouts(course: Path, pending: dict[str, tuple[list, list]], limits: sandbox.Limits,
                   out=sys.stdout) -> dict[tuple[str, str], str]:
    """Each run that timed out (key -> (cells, [(student, notebook)])), again, alone: stored unless
    it timed out again on an overloaded machine. Returns {(student, notebook): note} for those."""
    rerun: dict[tuple[str, str], str] = {}
    for key, (cells, owners) in pending.items():
        try:
            again = retry(cells, limits)
        except Exception:  # noqa: BLE001 - that notebook's alone: nbgrader executes it and reports it
            continue
        names = ", ".join(f"{s}/{n}" for s, n in owners)
        if again.overloaded:
            print(f"  retry {names}: still out of time, machine overloaded ({100 * again.starved:.0f}% "
                  "waiting for a CPU): GRADING ERROR, rerun", file=out, flush=True)
            rerun.update({owner: again.note() for owner in owners})
            continue
        print(f"  retry {names}: " + ("timed out again on a machine that gave it the CPU: the timeout stands"
                                     if again.timed_out else "completed in time"), file=out, flush=True)
        store(course, key, again.run)
    return rerun


def fan_out(course: Path, assignment: str, students: list[str], db_url: str, limits: sandbox.Limits,
            jobs: int, scheduler: str | None = None, out=sys.stdout) -> dict:
    """Execute every submitted notebook of `students` in parallel; store each run; retry timeouts
    alone. Returns counts, and `rerun`: {(student, notebook): note} for grading errors."""
    from dask.distributed import as_completed
    from tqdm import tqdm

    preprocessors = sanitize_preprocessors(course)
    names = [p.stem for p in sorted((course / "source" / assignment).glob("*.ipynb"))]
    todo: dict[str, list[tuple[str, str]]] = {}
    owners: dict[str, list[tuple[str, str]]] = {}
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
                owners.setdefault(key, []).append((student, name))
    stats = {"notebooks": cached + len(todo), "cached": cached, "executed": 0, "skipped": skipped, "seconds": 0.0,
             "crashed": 0, "retried": 0, "rerun": {}}
    if not todo:
        return stats
    t0 = time.perf_counter()
    pending: dict[str, tuple[list, list]] = {}
    with client_for(jobs, scheduler) as client:
        futures = {client.submit(execute_task, cells, asdict(limits), key=f"lab-run-{key}", pure=False): key
                   for key, cells in todo.items()}
        with tqdm(total=len(futures), desc="executing notebooks", unit="nb", file=out, mininterval=1.0) as bar:
            for future in as_completed(futures):
                key = futures[future]
                try:
                    run = future.result()
                except Exception:  # noqa: BLE001 - that notebook's alone: nbgrader executes it and reports it
                    stats["crashed"] += 1
                else:
                    if timed_out(run):
                        pending[key] = (todo[key], owners[key])
                    else:
                        store(course, key, run)
                stats["executed"] += 1
                bar.update(1)
    stats["retried"] = len(pending)
    stats["rerun"] = retry_timeouts(course, pending, limits, out)
    stats["seconds"] = time.perf_counter() - t0
    return stats
