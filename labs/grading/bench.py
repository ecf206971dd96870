"""make bench-grading: stock nbgrader against this project's grading, side by side, one class.

    python -m labs.grading.bench [--students 60] [--keep DIR]

The class: `--students` synthetic submissions of one notebook each, cycling through every
lesson's corpus (right and wrong answers), the solution, the untouched release, a crashing
answer (os._exit) and one that never finishes (an endless loop: it costs the per-cell timeout).
Both graders see the same files, with the same per-cell timeout:

- stock: `nbgrader autograde` with a stock nbgrader_config.py (serial, no sandbox, no judge);
  its source notebooks carry the probe kit in their setup cell, so the same code runs;
- ours: `labs.grading.autograde.autograde` with every default (sandboxes, judge, one worker per core).

Printed: notebooks per minute for both, the speedup, and the cost of one notebook broken down
(sandbox start, kernel start, imports, lesson cells, probes, judge), from the grading reports.
"""

from __future__ import annotations

import argparse
import io
import itertools
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .. import ROOT
from ..course import build, corpus, notebooks
from . import autograde
from .throwaway_course import Course

CELL_TIMEOUT = 20
TARGET = 3.0  # our throughput at least 3x stock's on the same machine


def _class(course: Course, students: int) -> None:
    names = course.notebook_names()
    # the crashing and the endless one first: every class has them, whatever the corpora's size
    kinds = [("crash", names[0]), ("endless", names[-1])] + [("solution", n) for n in names] + \
            [("untouched", n) for n in names] + [(e, e.notebook) for e in corpus.entries()]
    answer = {n: next(c for c in course.release(n).cells if notebooks.is_answer(c)) for n in names}
    for i, (kind, name) in zip(range(students), itertools.cycle(kinds), strict=False):
        if kind == "solution":
            nb = course.source(name)
        elif kind == "untouched":
            nb = course.release(name)
        elif kind in ("crash", "endless"):
            nb = course.release(name)
            tail = "import os\nos._exit(1)" if kind == "crash" else "while True:\n    pass"
            for cell in nb.cells:
                if notebooks.grade_id(cell) == notebooks.grade_id(answer[name]):
                    cell.source += "\n" + tail + "\n"
        else:
            nb = kind.apply(course.release(name), course.source(name))
        for cell in nb.cells:  # every submission distinct, as in a real class (no two share a run)
            if notebooks.is_answer(cell):
                cell.source += f"\n# s{i:03d}\n"
                break
        course.submit(f"s{i:03d}", {name: nb})


def _stock_course(ours: Path, dest: Path) -> Path:
    """The same course for stock nbgrader: stock config, the probe kit inside each setup cell."""
    shutil.copytree(ours / "source", dest / "source")
    shutil.copytree(ours / "submitted", dest / "submitted")
    kit = (ROOT / "labs" / "probekit.py").read_text()
    for path in (dest / "source").glob("*/*.ipynb"):
        nb = notebooks.read(path)
        setup = next(c for c in nb.cells if notebooks.grade_id(c) == "setup")
        setup.source = setup.source.replace("### BEGIN HIDDEN TESTS", "### BEGIN HIDDEN TESTS\n" + kit, 1)
        notebooks.write(nb, path)
    (dest / "nbgrader_config.py").write_text(
        f"c = get_config()\nc.CourseDirectory.course_id = 'bench'\nc.Execute.timeout = {CELL_TIMEOUT}\n")
    build.nbgrader("generate_assignment", "lab_2_1_3", "--force", cwd=dest)
    return dest


def _breakdown(course: Path) -> dict[str, float]:
    parts: dict[str, list[float]] = {}
    for path in course.glob("autograded/*/lab_2_1_3/*.ipynb"):
        timing = notebooks.read(path).metadata.get("lab_grading", {}).get("timing", {})
        for key, value in timing.items():
            parts.setdefault(key, []).append(float(value))
    return {k: statistics.mean(v) for k, v in parts.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--keep", type=Path, default=None, help="copy both courses here afterwards")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lab-bench-grading-") as tmp:
        ours = Course.create(Path(tmp) / "ours")
        with open(ours.root / "nbgrader_config.py", "a") as fh:
            fh.write(f"\nc.Execute.timeout = {CELL_TIMEOUT}\nc.SandboxedExecute.timeout = {CELL_TIMEOUT}\n")
        _class(ours, args.students)
        stock = _stock_course(ours.root, Path(tmp) / "stock")
        n = len(list((ours.root / "submitted").glob("*/lab_2_1_3/*.ipynb")))

        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", "lab_2_1_3", "--force"],  # stock CLI
                              cwd=stock, env=build.tool_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stock_s = time.perf_counter() - t0
        graded_stock = len(list(stock.glob("autograded/*/lab_2_1_3/*.ipynb")))

        autograde.prepare(ours.root, "lab_2_1_3", out=io.StringIO())  # the solution's reference: once per source
        t0 = time.perf_counter()
        res = autograde.autograde(ours.root, out=io.StringIO())
        ours_s = time.perf_counter() - t0
        parts = _breakdown(ours.root)
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)

    stock_rate, ours_rate = 60 * n / stock_s, 60 * n / ours_s
    speedup = ours_rate / stock_rate
    print(f"class: {n} notebooks (right, wrong, crashing, endless), per-cell timeout {CELL_TIMEOUT} s, "
          f"{autograde.default_jobs()} cores")
    print(f"{'grader':48s} {'seconds':>8s} {'notebooks/min':>14s}")
    print(f"{'stock nbgrader autograde (serial, no sandbox)':48s} {stock_s:8.0f} {stock_rate:14.1f}"
          f"   ({graded_stock} graded, exit {proc.returncode})")
    print(f"{'python -m labs.grading autograde (sandbox + judge)':48s} {ours_s:8.0f} {ours_rate:14.1f}"
          f"   ({sum(not r.failed for r in res.values())} students graded)")
    status = "met" if speedup >= TARGET else "MISSED"
    print(f"speedup: {speedup:.2f}x (target >= {TARGET:g}x: {status})")
    if parts:
        print("\none notebook, mean seconds per part (inside one worker):")
        for key in ("sandbox start", "kernel start", "imports", "lesson cells", "probes", "teardown", "judge"):
            print(f"  {key:14s} {parts.get(key, 0.0):6.2f}")
    return 0 if speedup >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
