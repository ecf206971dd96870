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
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from . import ASSIGNMENT, ROOT, build

FLAGS = {
    "KernelDied": "the kernel died (os._exit, a crash, or memory exhausted)",
    "CellTimeoutError": "a cell ran past the per-cell timeout",
    "KeyboardInterrupt": "a cell ran past the per-cell timeout and was interrupted",
    "TestDidNotRun": "graded tests did not run to their end (cell execution tampered with)",
    "replaced tools the grader relies on": "tampered with the grader's tools",
    "MemoryError": "ran out of the kernel's memory bound",
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


def _graded_failures(nb) -> dict[str, str]:
    """{grade_id: message} for every graded test that lost its points, and for answer or
    student cells whose error says something about the submission (a crash, a timeout)."""
    out = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code":
            continue
        if not (meta.get("grade") and meta.get("points")) or meta.get("solution"):
            flagged = [o for o in cell.get("outputs", []) if o.output_type == "error"
                       and any(key in f"{o.ename}: {o.evalue}" for key in FLAGS)]
            if flagged and not (meta.get("grade") and not meta.get("solution")):
                out[meta.get("grade_id") or f"cell {i}"] = f"{flagged[-1].ename}: {str(flagged[-1].evalue)[:200]}"
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        stderr = [o for o in cell.get("outputs", []) if o.output_type == "stream" and o.name == "stderr"]
        if errors:
            out[meta["grade_id"]] = f"{errors[-1].ename}: {str(errors[-1].evalue)[:200]}"
        elif stderr:
            out[meta["grade_id"]] = "wrote to stderr: " + stderr[0].text.strip()[:200]
    return out


def _maxima(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        return {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}


def results(course: Path, assignment: str = ASSIGNMENT) -> dict[str, StudentResult]:
    from nbgrader.api import Gradebook

    res: dict[str, StudentResult] = {}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for sub in gb.assignment_submissions(assignment):
            r = res.setdefault(sub.student.id, StudentResult(sub.student.id))
            r.seconds_late = sub.total_seconds_late
            r.late_penalty = sum(nb.late_submission_penalty or 0.0 for nb in sub.notebooks)
            for nb in sub.notebooks:
                r.scores[nb.name] = (nb.score, nb.max_score)
    for student, r in res.items():
        for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
            r.failures[path.stem] = _graded_failures(nbformat.read(str(path), as_version=4))
    maxima = _maxima(course, assignment)
    for r in res.values():  # notebooks nbgrader did not grade score zero
        for name, most in maxima.items():
            r.scores.setdefault(name, (0.0, most))
    return res


def autograde(course: Path = ROOT, assignment: str = ASSIGNMENT, out=sys.stdout) -> dict[str, StudentResult]:
    """Check, grade every submission in one nbgrader batch, print progress and a summary."""
    t0 = time.perf_counter()
    pre = check_submissions(course, assignment)
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    students = sorted(pre)
    print(f"autograde {assignment}: {len(students)} submissions", file=out, flush=True)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        for student in students:  # nbgrader skips a folder without notebooks: still a zero
            gb.update_or_create_student(student)
    cmd = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--force"]
    proc = subprocess.Popen(cmd, cwd=course, env=build.tool_env(), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log, current, started = [], None, time.perf_counter()
    failed: set[str] = set()
    for line in proc.stdout:
        log.append(line)
        m = re.search(r"Creating/updating student with ID '([^']+)'", line)
        if m:
            if current:
                print(f"  graded {current} ({time.perf_counter() - started:.0f} s)", file=out, flush=True)
            current, started = m.group(1), time.perf_counter()
        m = re.search(r"error processing assignment '[^']+' for student '([^']+)'", line)
        if m:
            failed.add(m.group(1))
    proc.wait()
    if current:
        print(f"  graded {current} ({time.perf_counter() - started:.0f} s)", file=out, flush=True)
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
        for nb, fails in r.failures.items():
            for key, what in FLAGS.items():
                hit = sorted(g for g, msg in fails.items() if key in msg)
                if hit:
                    r.problems.append(f"{nb}: {what} [{key}] (in {', '.join(hit)})")
    print(summary(res, assignment), file=out)
    print(f"done in {time.perf_counter() - t0:.0f} s; full log: autograde.log", file=out)
    return res


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
    args = parser.parse_args(argv)
    if args.step == "autograde":
        res = autograde(args.course, args.assignment)
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
