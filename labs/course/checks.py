"""Gates on the generated trees: freshness, leaks, cleanliness.

    python -m labs.course.checks            # all gates, exit 1 on the first failing one

Each function returns a list of human-readable problems (empty: the gate passes), so
tests assert on them and the command line prints them.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

import nbformat

from .. import ROOT
from . import build, notebooks

MIN_SECRET_CHARS = 6  # shorter lines (`else:`, `)`) say nothing about an answer


def course_copy(dest: Path, root: Path = ROOT) -> Path:
    """A throwaway course: the source tree and nbgrader_config.py, nothing else."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(root / "source", dest / "source")
    shutil.copy(root / "nbgrader_config.py", dest / "nbgrader_config.py")
    return dest


def _projection(nb) -> list[tuple]:
    """What must not drift between a committed and a regenerated notebook: cell types,
    sources, nbgrader metadata and tags. Outputs and volatile metadata are left out
    (nbval checks the outputs of solutions/)."""
    return [
        (c.cell_type, c.source, c.metadata.get("nbgrader"), c.metadata.get("tags"))
        for c in nb.cells
    ]


def _first_difference(a, b) -> str:
    pa, pb = _projection(a), _projection(b)
    for i, (x, y) in enumerate(zip(pa, pb, strict=False)):
        if x != y:
            what = "source" if x[1] != y[1] else "metadata or type"
            return f"cell {i} differs ({what})"
    return f"cell count differs ({len(pa)} committed, {len(pb)} regenerated)"


def freshness_problems(root: Path = ROOT) -> list[str]:
    """release/ and solutions/ as committed equal a regeneration from source/."""
    problems = []
    with tempfile.TemporaryDirectory(prefix="lab-fresh-") as tmp:
        course = course_copy(Path(tmp) / "course", root)
        build.build_release(course)
        build.build_solutions(course, execute=False)
        for tree in ("release", "solutions"):
            fresh = {p.relative_to(course / tree) for p in notebooks.lesson_paths(course / tree)}
            committed = {p.relative_to(root / tree) for p in notebooks.lesson_paths(root / tree)}
            for rel in sorted(fresh - committed):
                problems.append(f"{tree}/{rel} is missing: run `make`")
            for rel in sorted(committed - fresh):
                problems.append(f"{tree}/{rel} has no source notebook: delete it or run `make`")
            for rel in sorted(fresh & committed):
                a, b = notebooks.read(root / tree / rel), notebooks.read(course / tree / rel)
                if _projection(a) != _projection(b):
                    problems.append(f"{tree}/{rel} is stale ({_first_difference(a, b)}): run `make`")
        for src in notebooks.lesson_paths(root / "source"):
            sol = root / "solutions" / src.parent.name / src.name
            if sol.exists():
                stamp = notebooks.read(sol).metadata.get("lab", {}).get("source_sha256")
                if stamp != notebooks.content_hash(src):
                    problems.append(f"solutions/{src.parent.name}/{src.name} was executed from another "
                                    "version of its source: run `make`")
    return problems


def _secret_lines(lines, public: set[str]) -> set[str]:
    return {ln.strip() for ln in lines
            if len(ln.strip()) >= MIN_SECRET_CHARS and ln.strip() not in public}


def _all_text(nb) -> list[str]:
    lines = []
    for c in nb.cells:
        lines += c.source.splitlines()
        for out in c.get("outputs", []):
            text = out.get("text", "") or "".join(
                v if isinstance(v, str) else "".join(v)
                for k, v in out.get("data", {}).items() if k.startswith("text/"))
            lines += text.splitlines()
            lines += out.get("traceback", [])
    return [ln.strip() for ln in lines]


def leak_problems(root: Path = ROOT) -> list[str]:
    """No solution or hidden-test line of source/ in release/; no hidden-test line in solutions/."""
    problems = []
    for src in notebooks.lesson_paths(root / "source"):
        nb = notebooks.read(src)
        public = {ln.strip() for ln in notebooks.public_lines(nb)}
        solution = _secret_lines(notebooks.solution_lines(nb), public)
        hidden = _secret_lines(notebooks.hidden_lines(nb), public)
        for tree, secrets in (("release", solution | hidden), ("solutions", hidden)):
            target = root / tree / src.parent.name / src.name
            if not target.exists():
                continue
            leaked = sorted(secrets & set(_all_text(notebooks.read(target))))
            for line in leaked[:5]:
                problems.append(f"{tree}/{src.parent.name}/{src.name} leaks a line of "
                                f"{'a solution or hidden test' if tree == 'release' else 'a hidden test'}: {line!r}")
    return problems


def cleanliness_problems(root: Path = ROOT) -> list[str]:
    problems = []
    for src in notebooks.lesson_paths(root / "source"):
        if not notebooks.is_normalized(src):
            problems.append(f"{src.relative_to(root)} holds outputs, execution counts or stray "
                            "metadata: run `make normalize`")
        try:
            nbformat.validate(notebooks.read(src))
        except nbformat.ValidationError as err:
            problems.append(f"{src.relative_to(root)} is not a valid notebook: {err.message}")
    return problems


# The lab grew out of a seed notebook; students meet its buggy versions named for their bug
# ("a closed-interval HardSwish"), never as "the seed". The random-number sense stays:
# `manual_seed`, `seeded_randn`, "seeded" inputs and a `seed=` argument are other words.
_SEED_WORD = re.compile(r"\b(?:[Ss]eeds?|SEEDS?)\b(?!\s*=)|\bSeed(?=[A-Z])|(?<=[a-z])Seeds?\b|\bseed_")


def student_text_problems(root: Path = ROOT) -> list[str]:
    """Text a student reads (the release notebooks, the README's student section) never names the seed."""
    problems = []
    for rel in notebooks.lesson_paths(root / "release"):
        for i, cell in enumerate(notebooks.read(rel).cells):
            for m in _SEED_WORD.finditer(cell.source):
                line = cell.source[: m.start()].count("\n") + 1
                problems.append(f"{rel.relative_to(root)} cell {i} line {line}: {m.group(0)!r} "
                                "(name the buggy version for its bug)")
    readme = root / "README.md"
    if readme.exists():
        text = readme.read_text(encoding="utf-8")
        students = text.partition("## For students")[2].partition("\n## ")[0]
        problems += [f"README.md, For students: {m.group(0)!r}" for m in _SEED_WORD.finditer(students)]
    return problems


def main() -> int:
    failed = False
    for name, gate in (("clean", cleanliness_problems), ("no leak", leak_problems),
                       ("fresh", freshness_problems), ("no seed", student_text_problems)):
        problems = gate()
        print(f"{name:8s} {'ok' if not problems else 'FAILED'}")
        for p in problems:
            print(f"    {p}")
        failed |= bool(problems)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
