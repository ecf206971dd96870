"""Tests of the tests: realistic student submissions and the verdict each deserves.

A corpus entry is a Python file in `tests/corpus/<notebook>/`:

    # expect: full                        (or: # expect: fails test_backward test_kinks)
    # why: a second correct implementation, with boolean masks
    # %% cell: hardswish_answer
    class HardSwishFunction(Function):
        ...

Each `# %% cell: <grade_id>` section replaces the source of that answer cell in the
student release; an answer cell the entry does not name gets the model answer (the
source's, markers dropped), so an entry about one exercise of a lesson is graded with
the other exercises answered right. The result is submitted and graded like any
student's work.
`expect: fails ...` lists exactly the graded tests that must lose their points. An entry
whose trick the grader must flag for an instructor's review says `# review: flagged`; every
other entry that expects full marks is an honest answer, and must raise no flag at all.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .. import ROOT
from . import notebooks

CORPUS = ROOT / "tests" / "corpus"
_CELL = re.compile(r"^# %% cell: (\S+)\s*$", re.M)


@dataclass(frozen=True)
class Entry:
    notebook: str           # e.g. "01_hardswish"
    name: str               # file stem
    why: str
    expect_full: bool
    expect_fails: frozenset[str]
    cells: dict[str, str]   # answer grade_id -> replacement source
    expect_review: bool = False   # `# review: flagged`: the grader must flag it for review

    @property
    def student(self) -> str:
        return f"{self.notebook}--{self.name}"

    def apply(self, release: nbformat.NotebookNode, source: nbformat.NotebookNode) -> nbformat.NotebookNode:
        nb = copy.deepcopy(release)
        answers = {notebooks.grade_id(c): c for c in nb.cells if notebooks.is_answer(c)}
        for gid in self.cells.keys() - answers.keys():
            raise KeyError(f"{self.notebook}/{self.name}: no answer cell {gid!r} in the release")
        model = {gid: model_answer(source, gid) for gid in answers.keys() - self.cells.keys()}
        for gid, src in {**model, **self.cells}.items():
            answers[gid].source = src
        return nb


def model_answer(source: nbformat.NotebookNode, grade_id: str) -> str:
    """An answer cell of the source as a student who solved it writes it: region markers dropped."""
    (cell,) = [c for c in source.cells if notebooks.grade_id(c) == grade_id]
    return "\n".join(ln for ln in cell.source.splitlines()
                     if notebooks.SOLUTION_BEGIN not in ln and notebooks.SOLUTION_END not in ln) + "\n"


def parse(path: Path) -> Entry:
    text = path.read_text(encoding="utf-8")
    header = {}
    for line in text.splitlines():
        m = re.match(r"^# (expect|why|review): (.*)$", line)
        if m:
            header[m.group(1)] = m.group(2).strip()
    expect = header.get("expect", "")
    if expect != "full" and not expect.startswith("fails "):
        raise ValueError(f"{path}: needs '# expect: full' or '# expect: fails <test ids>'")
    parts = _CELL.split(text)
    cells = {parts[i]: parts[i + 1].strip("\n") + "\n" for i in range(1, len(parts), 2)}
    if not cells:
        raise ValueError(f"{path}: no '# %% cell: <grade_id>' section")
    return Entry(
        notebook=path.parent.name, name=path.stem, why=header.get("why", ""),
        expect_full=expect == "full",
        expect_fails=frozenset(expect.split()[1:]) if expect != "full" else frozenset(),
        cells=cells, expect_review=header.get("review") == "flagged",
    )


def entries(notebook: str | None = None) -> list[Entry]:
    pattern = f"{notebook}/*.py" if notebook else "*/*.py"
    return [parse(p) for p in sorted(CORPUS.glob(pattern))]
