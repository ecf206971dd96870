"""The autograde batch: prepare, execute (fan-out), nbgrader autograde, results and a summary.

`autograde` checks the submissions (labs/grading/intake.py), makes sure the sandbox starts and the
solution passes its own probes (labs/grading/reference.py), executes every notebook in its sandbox,
many at once (labs/grading/fanout.py; runs stored by labs/grading/runs.py), runs `nbgrader
autograde` (whose preprocessors, labs/grading/nbgrader_steps.py, judge each run), and reads the
results back from the gradebook and the autograded notebooks.

Every autograde records its state in .lab-grader/autograde.json (written atomically): started,
then completed, with the students of the batch, when, and the notebooks that are grading
errors to rerun. `export`, `feedback` and `report` refuse (exit 3, in capitals) while the last
autograde did not complete or left grading errors. A notebook that ran out of time is run
again alone (labs/grading/fanout.py: `retry`); if it still runs out of time while its processes were
starved of CPU, it is a grading error to rerun, never a wrong answer. The summary counts the
students of this batch only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from .. import ASSIGNMENT, ROOT, db_url
from ..course import build
from . import execute, fanout, sandbox
from .intake import check_submissions
from .reference import ReferenceFailed, reference
from .runs import run_key

# What a non-ok cell status means, in the summary (labs/grading/sandbox.py's runner statuses).
STATUS_TEXT = {
    "timeout": "a cell ran past the per-cell timeout (timeout)",
    "died": "the kernel died (kernel died: os._exit, a crash, or memory exhausted)",
}


@dataclass
class StudentResult:
    student: str
    problems: list[str] = field(default_factory=list)
    failed: bool = False
    seconds_late: float = 0.0
    late_penalty: float = 0.0
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # notebook -> (score, max)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)     # notebook -> {grade_id: message}
    review: list[str] = field(default_factory=list)                        # flagged for an instructor's review
    findings: list[str] = field(default_factory=list)                      # what grading observed
    rerun: list[str] = field(default_factory=list)                         # grading errors: rerun, not scores


def _grading_report(nb) -> dict:
    """The judge's record of one autograded notebook (labs/grading/nbgrader_steps.py, metadata `lab_grading`)."""
    return nb.metadata.get("lab_grading", {})


def _findings(name: str, report: dict) -> list[str]:
    out = [f"{name}: {event}" for event in report.get("events", [])]
    for index, status in sorted(report.get("statuses", {}).items(), key=lambda kv: int(kv[0])):
        if status in STATUS_TEXT:  # an exception in a student's cell is theirs: the verdicts say what it cost
            out.append(f"{name}: {STATUS_TEXT[status]} (cell {index})")
    out += [f"{name}: ran what the exercise re-implements: {f} (that test scores zero)"
            for f in report.get("forbidden", [])]
    return out


def _maxima(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        return {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}


def results(course: Path, assignment: str = ASSIGNMENT, students=None) -> dict[str, StudentResult]:
    """Each student's scores and findings (only `students`, when given: one batch)."""
    from nbgrader.api import Gradebook

    res: dict[str, StudentResult] = {}
    with Gradebook(db_url(course)) as gb:
        for sub in gb.assignment_submissions(assignment):
            if students is not None and sub.student.id not in students:
                continue
            r = res.setdefault(sub.student.id, StudentResult(sub.student.id))
            r.seconds_late = sub.total_seconds_late
            r.late_penalty = sum(nb.late_submission_penalty or 0.0 for nb in sub.notebooks)
            for nb in sub.notebooks:
                r.scores[nb.name] = (nb.score, nb.max_score)
    for student, r in res.items():
        for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
            report = _grading_report(nbformat.read(str(path), as_version=4))
            r.failures[path.stem] = {g: m for g, m in report.get("verdicts", {}).items() if m}
            r.findings += _findings(path.stem, report)
            r.review += [f"{path.stem}: {flag}" for flag in report.get("review", [])]
    maxima = _maxima(course, assignment)
    for r in res.values():  # notebooks nbgrader did not grade score zero
        for name, most in maxima.items():
            r.scores.setdefault(name, (0.0, most))
    return res


class GradingStopped(RuntimeError):
    pass


def prepare(course: Path, assignment: str, unsafe: bool = False, out=sys.stdout) -> None:
    """Before any student: the sandbox can be created, and the solution passes its own probes
    (the judge's reference, run once per source version and cached in .lab-grader/)."""
    try:
        sandbox.check(sandbox.Limits(unsafe=unsafe))
    except sandbox.SandboxUnavailable as err:
        raise GradingStopped(f"grading stopped: {err}") from None
    if unsafe:
        print("UNSAFE: --unsafe was given: submissions run WITHOUT a sandbox (no isolation from the course, "
              "the network or each other).", file=out, flush=True)
    env = {"LAB_GRADE_UNSAFE": "1"} if unsafe else {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for src in sorted((course / "source" / assignment).glob("*.ipynb")):
            t0 = time.perf_counter()
            try:
                reference(course, assignment, src.stem)
            except ReferenceFailed as err:
                raise GradingStopped(f"grading stopped: {err}") from None
            print(f"  reference {src.stem}: ready ({time.perf_counter() - t0:.0f} s)", file=out, flush=True)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def default_jobs() -> int:
    return int(os.environ.get("JOBS") or os.cpu_count() or 1)


STATE = Path(".lab-grader") / "autograde.json"
RERUN = "rerun `make autograde` (python -m labs.grading autograde) to completion, on an idle machine"


def write_state(course: Path, **state) -> None:
    """The last autograde's state, replaced atomically (a reader sees the old or the new file)."""
    path = course / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def read_state(course: Path) -> dict | None:
    try:
        state = json.loads((course / STATE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"state": "unreadable"}
    return state if isinstance(state, dict) else {"state": "unreadable"}


def not_final(course: Path) -> str | None:
    """Why the gradebook does not hold a finished grading (in capitals), or None when it does."""
    state = read_state(course)
    if state is None:
        return None
    if state.get("state") != "completed":
        return (f"THE LAST AUTOGRADE DID NOT COMPLETE (started {state.get('started', '?')}, state "
                f"{state.get('state', '?')}): THE GRADEBOOK MAY HOLD AN EARLIER RUN'S SCORES. {RERUN.upper()}.")
    if state.get("rerun"):
        return (f"THE LAST AUTOGRADE LEFT {len(state['rerun'])} GRADING ERROR(S) TO RERUN "
                f"({', '.join(sorted(state['rerun'])[:10])}): THEIR SCORES ARE NOT GRADES. {RERUN.upper()}.")
    return None


def _refuse(course: Path, step: str) -> bool:
    why = not_final(course)
    if why:
        print(f"make {step} REFUSED: {why}", file=sys.stderr)
        return True
    if read_state(course) is None and (course / "autograded").is_dir():
        print(f"NOTE: no record of the last autograde in {STATE} (graded by plain nbgrader?): "
              f"{step} cannot tell whether it completed.", file=sys.stderr)
    return False


def _timeout_signs(course: Path, student: str, assignment: str) -> list[str]:
    """The notebooks of one student whose grading shows a timeout (serial mode: nbgrader ran them)."""
    names = []
    for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
        report = _grading_report(nbformat.read(str(path), as_version=4))
        text = json.dumps([report.get("statuses", {}), report.get("events", []), report.get("verdicts", {})])
        if "timeout" in text or "timed out" in text or "wall-clock budget" in text:
            names.append(path.stem)
    return names


def _retry_serial(course: Path, assignment: str, students: list[str], limits, env, out) -> dict:
    """Serial mode (nbgrader executed each notebook): each notebook that ran out of time is run
    again alone (labs/grading/fanout.py: retry); a stored retry is graded again by nbgrader for that student."""
    pending: dict[str, tuple[list, list]] = {}
    preprocessors = fanout.sanitize_preprocessors(course)
    for student in students:
        for name in _timeout_signs(course, student, assignment):
            try:
                nb = fanout.prepared(course, assignment, student, name, db_url(course), preprocessors)
            except Exception:  # noqa: BLE001 - nbgrader reported it already
                continue
            key = run_key(nb, limits)
            cells = [(c.cell_type, c.source) for c in nb.cells]
            pending.setdefault(key, (cells, []))[1].append((student, name))
    if not pending:
        return {}
    print(f"  {len(pending)} notebook(s) ran out of time: running each again, alone", file=out, flush=True)
    rerun = fanout.retry_timeouts(course, pending, limits, out)
    again = sorted({s for _, owners in pending.values() for s, n in owners if (s, n) not in rerun})
    for student in again:
        subprocess.run([sys.executable, "-m", "labs.nbgrader_cli", "autograde", assignment, "--force",
                        "--student", student], cwd=course, env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return rerun


def autograde(course: Path = ROOT, assignment: str = ASSIGNMENT, out=sys.stdout, unsafe: bool = False,
              jobs: int | None = None, scheduler: str | None = None) -> dict[str, StudentResult]:
    """Check, execute every notebook in parallel sandboxes (labs/grading/fanout.py: `jobs` local workers, or
    the Dask cluster at `scheduler`), grade in one nbgrader batch, print progress and a summary.
    jobs=1 without a scheduler: no fan-out, nbgrader executes each notebook itself, in order.
    Either way a notebook that ran out of time is run again alone; one that still does while the
    machine was overloaded is a grading error to rerun. The state of the run is recorded in
    .lab-grader/autograde.json: started, then completed."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    jobs = jobs or default_jobs()
    scheduler = scheduler or os.environ.get("SCHEDULER") or None
    prepare(course, assignment, unsafe, out)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    write_state(course, state="started", started=started, assignment=assignment, students=[], jobs=jobs,
                scheduler=scheduler, unsafe=unsafe, pid=os.getpid())
    pre = check_submissions(course, assignment)
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    students = sorted(pre)
    write_state(course, state="started", started=started, assignment=assignment, students=students, jobs=jobs,
                scheduler=scheduler, unsafe=unsafe, pid=os.getpid())
    print(f"autograde {assignment}: {len(students)} submissions", file=out, flush=True)
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        for student in students:  # nbgrader skips a folder without notebooks: still a zero
            gb.update_or_create_student(student)
    env = build.tool_env(**({"LAB_GRADE_UNSAFE": "1"} if unsafe else {}))
    limits = dataclasses.replace(execute.limits(_cell_seconds(course)), unsafe=unsafe)
    rerun: dict[tuple[str, str], str] = {}
    fanned = jobs > 1 or bool(scheduler)
    if fanned:
        stats = fanout.fan_out(course, assignment, students, db_url(course), limits, jobs, scheduler, out)
        rerun = stats["rerun"]
        where = scheduler or f"{jobs} local workers"
        print(f"  executed {stats['executed']} notebooks on {where} in {stats['seconds']:.0f} s "
              f"({stats['cached']} already done, {stats['retried']} retried alone"
              + (f", {stats['crashed']} left to nbgrader after a crash" if stats["crashed"] else "") + ")",
              file=out, flush=True)
    cmd = [sys.executable, "-m", "labs.nbgrader_cli", "autograde", assignment, "--force"]
    proc = subprocess.Popen(cmd, cwd=course, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log: list[str] = []
    failed: set[str] = set()
    with tqdm(total=len(students), desc="grading", unit="student", file=out, mininterval=1.0) as bar:
        for line in proc.stdout:
            log.append(line)
            if re.search(r"Creating/updating student with ID '([^']+)'", line):
                bar.update(1)
            m = re.search(r"error processing assignment '[^']+' for student '([^']+)'", line)
            if m:
                failed.add(m.group(1))
        proc.wait()
    (course / "autograde.log").write_text("".join(log))
    # every student with a notebook was graded in this batch, or reported failed, else nbgrader stopped midway
    batch_start = time.time() - (time.perf_counter() - t0)
    missed = [s for s in students if s not in failed and any(
        p.name in expected for p in (course / "submitted" / s / assignment).glob("*.ipynb"))
        and not any(p.stat().st_mtime >= batch_start
                    for p in (course / "autograded" / s / assignment).glob("*.ipynb"))]
    if proc.returncode < 0 or proc.returncode > 1 or missed:  # killed, or nbgrader itself stopped
        print(f"AUTOGRADE DID NOT COMPLETE: nbgrader exited with {proc.returncode} (see autograde.log); "
              f"{RERUN}.", file=out)
        raise GradingStopped(f"grading stopped: nbgrader exited with {proc.returncode} before grading "
                             f"{len(missed)} student(s); the gradebook may hold an earlier run's scores")
    if not fanned:
        rerun = _retry_serial(course, assignment, [s for s in students if s not in failed], limits, env, out)
    res = results(course, assignment, set(students))
    for student in students:
        if student not in res:
            res[student] = StudentResult(student, scores={n: (0.0, m) for n, m in _maxima(course, assignment).items()})
        r = res[student]
        r.problems = list(pre.get(student, []))
        folder = course / "submitted" / student / assignment
        nothing = not any(p.name in expected for p in folder.glob("*.ipynb"))
        r.failed = student in failed and not nothing
        r.rerun = [f"{name}: {note}" for (s, name), note in sorted(rerun.items()) if s == student]
        if nothing:
            r.problems.append("no notebook to grade: every notebook scores zero")
        elif r.failed:
            r.problems.append("nbgrader could not grade this submission (see autograde.log)")
        if r.seconds_late > 0:
            r.problems.append(f"late by {r.seconds_late / 3600:.1f} h (penalty {r.late_penalty:g} points)")
        r.problems += r.findings
    write_state(course, state="completed", started=started, finished=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                assignment=assignment, students=students, jobs=jobs, scheduler=scheduler, unsafe=unsafe,
                failed=sorted(s for s, r in res.items() if r.failed),
                rerun=sorted(f"{s}/{n}" for s, n in rerun))
    print(summary(res, assignment), file=out)
    if unsafe:
        print("UNSAFE: these submissions were graded WITHOUT a sandbox (--unsafe).", file=out)
    print(f"done in {time.perf_counter() - t0:.0f} s; full log: autograde.log", file=out)
    return res


def _cell_seconds(course: Path) -> int:
    """The per-cell timeout nbgrader will use (nbgrader_config.py, c.SandboxedExecute.timeout)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return int(config.SandboxedExecute.get("timeout", 60))


def summary(res: dict[str, StudentResult], assignment: str = ASSIGNMENT) -> str:
    """This batch's students: scores, problems, grading errors to rerun, review flags."""
    lines = [f"\nSummary for {assignment}:"]
    errors = [r for r in res.values() if r.rerun]
    graded = [r for r in res.values() if not r.failed and not r.rerun]
    lines.append(f"  graded: {len(graded)}   failed to grade: {sum(r.failed for r in res.values())}   "
                 f"grading errors to rerun: {len(errors)}   (this batch: {len(res)} students)")
    for r in sorted(res.values(), key=lambda r: r.student):
        total = sum(s for s, _ in r.scores.values())
        most = sum(m for _, m in r.scores.values())
        status = "FAILED" if r.failed else "GRADING ERROR: rerun" if r.rerun else f"{total:g}/{most:g}"
        lines.append(f"  {r.student:40s} {status}")
        lines += [f"      !! GRADING ERROR {p}" for p in r.rerun]
        lines += [f"      ! {p}" for p in r.problems]
        lines += [f"      ? flagged for review: {p}" for p in r.review]
    flagged = sorted(r.student for r in res.values() if r.review)
    lines.append(f"  flagged for review: {len(flagged)}" + (f" ({', '.join(flagged)})" if flagged else ""))
    if errors:
        lines.append(f"  GRADING ERRORS: {len(errors)} student(s) ran out of time on an overloaded machine; their "
                     f"scores are not grades, and export, feedback and report refuse until you {RERUN}.")
    return "\n".join(lines)
