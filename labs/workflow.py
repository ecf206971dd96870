"""The instructor's grading workflow, one step per command (and per Make target).

    python -m labs.workflow collect   # nbgrader zip_collect: downloaded/<a>/archive/*.zip -> submitted/
    python -m labs.workflow autograde # check submissions, nbgrader autograde, summary
    python -m labs.workflow export    # grades.csv, one row per student and notebook
    python -m labs.workflow feedback  # feedback/<student>/<a>/*.html (no hidden tests)
    python -m labs.workflow report    # report/<a>.md + report/<a>.png

All run in a course directory (default: the repository root) with its nbgrader_config.py.
Before grading, every submitted notebook is checked: one that is not a readable notebook
moves to quarantine/<student>/<a>/ (it then counts as missing: zero for that notebook,
the student's other notebooks are graded); an old nbformat or duplicate cell ids are
repaired, the original kept in quarantine/. Nothing is deleted.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import ASSIGNMENT, ROOT, build, db_url

# What a non-ok cell status means, in the summary (labs/sandbox.py's runner statuses).
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


def check_submissions(course: Path, assignment: str = ASSIGNMENT) -> dict[str, list[str]]:
    """Quarantine unreadable notebooks, repair old/duplicate-id ones; problems per student."""
    problems: dict[str, list[str]] = {}
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student = folder.parent.name
        found = problems.setdefault(student, [])
        quarantine = course / "quarantine" / student / assignment
        for name in sorted(expected - {p.name for p in folder.glob("*.ipynb")}):
            found.append(f"{name}: missing (scores zero)")
        for path in sorted(folder.iterdir()):
            if path.name == "timestamp.txt" or path.name.startswith("."):
                continue
            if path.name not in expected:
                found.append(f"{path.name}: extra file, ignored")
                continue
            try:
                raw_ids = [c.get("id") for c in json.loads(path.read_text()).get("cells", [])
                           if isinstance(c, dict)]
                raw = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
                nb = nbformat.read(str(path), as_version=4)
            except Exception as err:  # malformed JSON, not a notebook at all
                quarantine.mkdir(parents=True, exist_ok=True)
                shutil.move(str(path), quarantine / path.name)
                found.append(f"{path.name}: not a readable notebook ({type(err).__name__}); "
                             f"moved to {quarantine.relative_to(course)}/, scores zero")
                continue
            ids = [i for i in raw_ids if i is not None]
            repaired = []
            if raw.nbformat < 4:
                repaired.append(f"nbformat {raw.nbformat} upgraded to 4")
            if len(set(ids)) != len(ids):  # nbformat.read already gave the copies new ids
                repaired.append("duplicate cell ids renamed")
            if repaired:
                quarantine.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, quarantine / f"{path.name}.original")
                nbformat.write(nb, str(path))
                found.append(f"{path.name}: {', '.join(repaired)} (original kept in quarantine/)")
    return problems


def _grading_report(nb) -> dict:
    """The judge's record of one autograded notebook (labs/grader.py, metadata `lab_grading`)."""
    return nb.metadata.get("lab_grading", {})


def _findings(name: str, report: dict) -> list[str]:
    out = [f"{name}: {event}" for event in report.get("events", [])]
    for index, status in sorted(report.get("statuses", {}).items(), key=lambda kv: int(kv[0])):
        if status in STATUS_TEXT:  # an exception in a student's cell is theirs: the verdicts say what it cost
            out.append(f"{name}: {STATUS_TEXT[status]} (cell {index})")
    out += [f"{name}: uses what the exercise re-implements: {f} (its graded tests score zero)"
            for f in report.get("forbidden", [])]
    return out


def _maxima(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        return {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}


def results(course: Path, assignment: str = ASSIGNMENT) -> dict[str, StudentResult]:
    from nbgrader.api import Gradebook

    res: dict[str, StudentResult] = {}
    with Gradebook(db_url(course)) as gb:
        for sub in gb.assignment_submissions(assignment):
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
    from . import grader, sandbox

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
                grader.reference(course, assignment, src.stem)
            except grader.ReferenceFailed as err:
                raise GradingStopped(f"grading stopped: {err}") from None
            print(f"  reference {src.stem}: ready ({time.perf_counter() - t0:.0f} s)", file=out, flush=True)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def default_jobs() -> int:
    return int(os.environ.get("JOBS") or os.cpu_count() or 1)


def autograde(course: Path = ROOT, assignment: str = ASSIGNMENT, out=sys.stdout, unsafe: bool = False,
              jobs: int | None = None, scheduler: str | None = None) -> dict[str, StudentResult]:
    """Check, execute every notebook in parallel sandboxes (labs/fanout.py: `jobs` local workers, or
    the Dask cluster at `scheduler`), grade in one nbgrader batch, print progress and a summary.
    jobs=1 without a scheduler: no fan-out, nbgrader executes each notebook itself, in order."""
    from tqdm import tqdm

    t0 = time.perf_counter()
    jobs = jobs or default_jobs()
    scheduler = scheduler or os.environ.get("SCHEDULER") or None
    prepare(course, assignment, unsafe, out)
    pre = check_submissions(course, assignment)
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    students = sorted(pre)
    print(f"autograde {assignment}: {len(students)} submissions", file=out, flush=True)
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        for student in students:  # nbgrader skips a folder without notebooks: still a zero
            gb.update_or_create_student(student)
    env = build.tool_env(**({"LAB_GRADE_UNSAFE": "1"} if unsafe else {}))
    if jobs > 1 or scheduler:
        from . import fanout, grader

        limits = dataclasses.replace(grader.limits(_cell_seconds(course)), unsafe=unsafe)
        stats = fanout.fan_out(course, assignment, students, db_url(course), limits, jobs, scheduler, out)
        where = scheduler or f"{jobs} local workers"
        print(f"  executed {stats['executed']} notebooks on {where} in {stats['seconds']:.0f} s "
              f"({stats['cached']} already done)", file=out, flush=True)
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
    res = results(course, assignment)
    for student in students:
        if student not in res:
            res[student] = StudentResult(student, scores={n: (0.0, m) for n, m in _maxima(course, assignment).items()})
        r = res[student]
        r.problems = list(pre.get(student, []))
        folder = course / "submitted" / student / assignment
        nothing = not any(p.name in expected for p in folder.glob("*.ipynb"))
        r.failed = student in failed and not nothing
        if nothing:
            r.problems.append("no notebook to grade: every notebook scores zero")
        elif r.failed:
            r.problems.append("nbgrader could not grade this submission (see autograde.log)")
        if r.seconds_late > 0:
            r.problems.append(f"late by {r.seconds_late / 3600:.1f} h (penalty {r.late_penalty:g} points)")
        r.problems += r.findings
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
    lines = [f"\nSummary for {assignment}:"]
    graded = [r for r in res.values() if not r.failed]
    lines.append(f"  graded: {len(graded)}   failed to grade: {len(res) - len(graded)}")
    for r in sorted(res.values(), key=lambda r: r.student):
        total = sum(s for s, _ in r.scores.values())
        most = sum(m for _, m in r.scores.values())
        status = "FAILED" if r.failed else f"{total:g}/{most:g}"
        lines.append(f"  {r.student:40s} {status}")
        lines += [f"      ! {p}" for p in r.problems]
        lines += [f"      ? flagged for review: {p}" for p in r.review]
    flagged = sorted(r.student for r in res.values() if r.review)
    lines.append(f"  flagged for review: {len(flagged)}" + (f" ({', '.join(flagged)})" if flagged else ""))
    return "\n".join(lines)


def collect(course: Path = ROOT, assignment: str = ASSIGNMENT) -> int:
    proc = build.nbgrader("zip_collect", assignment, "--force", cwd=course, check=False)
    print(proc.stdout[-4000:])
    return proc.returncode


def export(course: Path = ROOT) -> int:
    proc = build.nbgrader("export", "--to", str(course / "grades.csv"), cwd=course, check=False)
    print(proc.stdout[-2000:] if proc.returncode else f"wrote {course / 'grades.csv'}")
    return proc.returncode


def feedback(course: Path = ROOT, assignment: str = ASSIGNMENT) -> int:
    proc = build.nbgrader("generate_feedback", assignment, "--force", cwd=course, check=False)
    if proc.returncode:
        print(proc.stdout[-3000:])
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["collect", "autograde", "export", "feedback", "report"])
    parser.add_argument("--course", type=Path, default=ROOT)
    parser.add_argument("--assignment", default=ASSIGNMENT)
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks executed at once on this machine (default: JOBS, else the core count)")
    parser.add_argument("--scheduler", default=None,
                        help="a Dask scheduler (tcp://host:8786) to execute on instead (default: SCHEDULER, "
                             "DASK_SCHEDULER_ADDRESS)")
    parser.add_argument("--unsafe", action="store_true",
                        help="autograde without the sandbox (only where it cannot be created; the summary says so)")
    args = parser.parse_args(argv)
    if args.step == "autograde":
        try:
            res = autograde(args.course, args.assignment, unsafe=args.unsafe, jobs=args.jobs,
                            scheduler=args.scheduler)
        except GradingStopped as err:
            print(err, file=sys.stderr)
            return 2
        return 1 if any(r.failed for r in res.values()) else 0
    if args.step == "collect":
        return collect(args.course, args.assignment)
    if args.step == "export":
        return export(args.course)
    if args.step == "feedback":
        return feedback(args.course, args.assignment)
    from . import report
    path = report.write(args.course, args.assignment)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
