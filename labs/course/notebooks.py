"""Reading, normalizing and taking apart nbgrader notebooks.

A source notebook is normalized when it holds no outputs, no execution counts,
and only the metadata a lesson needs (`NOTEBOOK_METADATA`, `CELL_METADATA`).
`python -m labs.course.notebooks [--check] PATH...` normalizes in place (or only checks).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import nbformat

NOTEBOOK_METADATA = ("kernelspec", "language_info", "lab")  # lab.exercise: what the scan forbids
LANGUAGE_INFO_KEYS = ("name",)
CELL_METADATA = ("nbgrader", "tags")
NBGRADER_KEYS = ("grade", "solution", "locked", "task", "grade_id", "points", "schema_version")

SOLUTION_BEGIN, SOLUTION_END = "### BEGIN SOLUTION", "### END SOLUTION"
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def read(path: str | Path) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def write(nb: nbformat.NotebookNode, path: str | Path) -> None:
    text = nbformat.writes(nb) + "\n"
    Path(path).write_text(text, encoding="utf-8")


def normalize(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Return a copy with outputs, execution counts and stray metadata removed."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    meta = {k: nb.metadata[k] for k in NOTEBOOK_METADATA if k in nb.metadata}
    if "language_info" in meta:
        meta["language_info"] = {
            k: v for k, v in meta["language_info"].items() if k in LANGUAGE_INFO_KEYS
        }
    nb.metadata = nbformat.from_dict(meta)
    for cell in nb.cells:
        kept = {k: cell.metadata[k] for k in CELL_METADATA if k in cell.metadata}
        if "nbgrader" in kept:
            kept["nbgrader"] = {k: v for k, v in kept["nbgrader"].items() if k in NBGRADER_KEYS}
        if not kept.get("tags"):
            kept.pop("tags", None)
        cell.metadata = nbformat.from_dict(kept)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        if "attachments" in cell and not cell.attachments:
            del cell["attachments"]
    return nb


def is_normalized(path: str | Path) -> bool:
    nb = read(path)
    return nbformat.writes(normalize(nb)) == nbformat.writes(nb)


def content_hash(path: str | Path) -> str:
    """Hash of a notebook's normalized content (what a build depends on)."""
    text = nbformat.writes(normalize(read(path)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def nbgrader_meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_graded_test(cell) -> bool:
    """A graded test cell: a code grade cell that is not a solution and is worth points."""
    meta = nbgrader_meta(cell)
    return (
        cell.cell_type == "code"
        and meta.get("grade", False)
        and not meta.get("solution", False)
        and float(meta.get("points", 0) or 0) > 0
    )


def graded_points(nb) -> dict[str, float]:
    """{grade_id: points} of a notebook's graded test cells, in order."""
    return {grade_id(c): float(nbgrader_meta(c)["points"]) for c in nb.cells if is_graded_test(c)}


def is_answer(cell) -> bool:
    return bool(nbgrader_meta(cell).get("solution", False))


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def region_lines(source: str, begin: str, end: str) -> Iterator[str]:
    """Lines strictly between `begin` and `end` delimiters (any number of regions)."""
    inside = False
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            yield line


def outside_lines(source: str, regions: tuple[tuple[str, str], ...]) -> Iterator[str]:
    """Lines outside every `(begin, end)` region, delimiters excluded."""
    inside = None
    for line in source.splitlines():
        if inside is None:
            opened = next((end for begin, end in regions if begin in line), None)
            if opened is not None:
                inside = opened
            else:
                yield line
        elif inside in line:
            inside = None


def solution_lines(nb) -> list[str]:
    return [ln for c in nb.cells for ln in region_lines(c.source, SOLUTION_BEGIN, SOLUTION_END)]


def hidden_lines(nb) -> list[str]:
    return [ln for c in nb.cells for ln in region_lines(c.source, HIDDEN_BEGIN, HIDDEN_END)]


def public_lines(nb) -> list[str]:
    """Lines outside solution and hidden-test regions: what students see anyway."""
    regions = ((SOLUTION_BEGIN, SOLUTION_END), (HIDDEN_BEGIN, HIDDEN_END))
    return [ln for c in nb.cells for ln in outside_lines(c.source, regions)]


def lesson_paths(root: Path) -> list[Path]:
    return sorted(p for p in root.glob("*/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report, do not rewrite")
    parser.add_argument("paths", nargs="+", type=Path)
    args = parser.parse_args(argv)
    dirty = []
    for path in args.paths:
        if is_normalized(path):
            continue
        dirty.append(path)
        if not args.check:
            write(normalize(read(path)), path)
            print(f"normalized {path}")
    if args.check and dirty:
        for path in dirty:
            print(f"{path}: not normalized (outputs, execution counts or stray metadata); "
                  "run `make normalize`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
