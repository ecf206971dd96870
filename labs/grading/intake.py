"""Submissions checked before grading: bounded, readable, repaired, or quarantined.

Every submitted notebook is checked (`check_submissions`) before anything parses it fully: over the reader's
bounds (`NotebookBounds`: file size, JSON nesting depth, cell count, characters of one cell's
text, measured before any parser builds it) or not a readable notebook, it moves to
quarantine/<student>/<a>/ (it then counts as missing: zero for that notebook, the student's
other notebooks are graded; the message never quotes the notebook); an old nbformat or
duplicate cell ids are repaired, the original kept in quarantine/. Nothing is deleted.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .. import ASSIGNMENT


@dataclass(frozen=True)
class NotebookBounds:
    """What the grading process reads of a submitted notebook, at most (the course's own notebooks
    have about 50 cells, 5,000 characters in the longest cell, 330 KB with outputs, depth 8)."""

    file_bytes: int = 32 << 20
    depth: int = 64                 # JSON nesting: objects and arrays inside each other
    cells: int = 1000
    cell_chars: int = 256 << 10     # the text of one cell


# Possessive quantifiers: a string that never ends (a truncated notebook) must not backtrack. With
# `"(?:[^"\\]+|\\.)*"` an unterminated string of n escapes took time exponential in n (36 s at 26).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes, limit: int) -> int:
    """How deeply `raw`'s arrays and objects nest (strings skipped), without building it: linear
    in its size; stops counting past `limit` (returns limit + 1)."""
    depth = most = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > most:
            most = depth
            if most > limit:
                return most
    return most


def over_bounds(path: Path, bounds: NotebookBounds = NotebookBounds()) -> str | None:
    """Why a submitted file is over the grader's bounds (in the grader's words only), or None."""
    size = path.stat().st_size
    if size > bounds.file_bytes:
        return f"{size >> 20} MiB, over the bound of {bounds.file_bytes >> 20} MiB"
    raw = path.read_bytes()
    if json_depth(raw, bounds.depth) > bounds.depth:
        return f"its JSON nests deeper than {bounds.depth} levels"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # not JSON: the reader says so
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return None
    if len(cells) > bounds.cells:
        return f"{len(cells)} cells, over the bound of {bounds.cells}"
    for i, cell in enumerate(cells):
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        chars = len(src) if isinstance(src, str) else sum(len(x) for x in src if isinstance(x, str)) \
            if isinstance(src, list) else 0
        if chars > bounds.cell_chars:
            return f"cell {i} holds {chars:,} characters, over the bound of {bounds.cell_chars:,}"
    return None


def check_submissions(course: Path, assignment: str = ASSIGNMENT,
                      bounds: NotebookBounds = NotebookBounds()) -> dict[str, list[str]]:
    """Quarantine notebooks over the bounds or unreadable, repair old/duplicate-id ones; problems
    per student. Only the grader's words: nothing of a notebook's text reaches a message."""
    problems: dict[str, list[str]] = {}
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student = folder.parent.name
        found = problems.setdefault(student, [])
        quarantine = course / "quarantine" / student / assignment

        def move(path: Path, why: str, quarantine: Path = quarantine, found: list = found) -> None:
            quarantine.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), quarantine / path.name)
            found.append(f"{path.name}: {why}; moved to {quarantine.relative_to(course)}/, scores zero")

        for name in sorted(expected - {p.name for p in folder.glob("*.ipynb")}):
            found.append(f"{name}: missing (scores zero)")
        for path in sorted(folder.iterdir()):
            if path.name == "timestamp.txt" or path.name.startswith("."):
                continue
            if path.name not in expected:
                found.append(f"{path.name}: extra file, ignored")
                continue
            if path.is_symlink() or not path.is_file():
                move(path, "not a plain file")
                continue
            why = over_bounds(path, bounds)
            if why:
                move(path, f"over the grader's bounds ({why})")
                continue
            try:
                raw_ids = [c.get("id") for c in json.loads(path.read_bytes()).get("cells", [])
                           if isinstance(c, dict)]
                raw = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
                nb = nbformat.read(str(path), as_version=4)
            except Exception as err:  # malformed JSON, not a notebook at all
                move(path, f"not a readable notebook ({type(err).__name__})")
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

