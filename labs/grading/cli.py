"""The instructor's grading workflow, one step per command (and per Make target).

    python -m labs.grading collect   # LMS download: downloaded/<a>/archive/*.zip -> submitted/, by uploader
    python -m labs.grading autograde # check submissions, execute, nbgrader autograde, summary
    python -m labs.grading export    # grades.csv, one row per student and notebook
    python -m labs.grading feedback  # feedback/<student>/<a>/*.html (no hidden tests)
    python -m labs.grading report    # report/<a>.md + report/<a>.png

All run in a course directory (default: the repository root) with its nbgrader_config.py.
`export`, `feedback` and `report` refuse (exit 3, in capitals) while the last autograde did not
complete or left grading errors (labs/grading/autograde.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import ASSIGNMENT, ROOT
from ..course import build
from . import report
from .autograde import GradingStopped, _refuse, autograde
from .collect import collect


def export(course: Path = ROOT) -> int:
    if _refuse(course, "export"):
        return 3
    proc = build.nbgrader("export", "--to", str(course / "grades.csv"), cwd=course, check=False)
    print(proc.stdout[-2000:] if proc.returncode else f"wrote {course / 'grades.csv'}")
    return proc.returncode


def feedback(course: Path = ROOT, assignment: str = ASSIGNMENT) -> int:
    if _refuse(course, "feedback"):
        return 3
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
        return 1 if any(r.failed or r.rerun for r in res.values()) else 0
    if args.step == "collect":
        return collect(args.course, args.assignment)
    if args.step == "export":
        return export(args.course)
    if args.step == "feedback":
        return feedback(args.course, args.assignment)
    if _refuse(args.course, "report"):
        return 3
    path = report.write(args.course, args.assignment)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
