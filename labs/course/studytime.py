"""How long a lesson takes a student, estimated from the lesson itself.

    python -m labs.course.studytime          # the table, and whether each lesson states its estimate

No class has been timed on these lessons yet, so each lesson states an estimate computed
from what a student must do in it, with rates that are stated here and can be replaced
by measured ones after a pilot:

  reading    the markdown a student reads, at 120 words per minute (technical prose
             with formulas, read to be understood, not skimmed);
  code       the lines of the code cells a student reads and runs (not the answers),
             at 15 lines per minute;
  exercise   4 minutes per line of the model answer (non-blank, non-comment lines of
             the solution regions): writing it, running the self-check, fixing it;
  running    the notebook's own run time is under a minute for every lesson.

Each lesson's title cell says "about N minutes" (reading + code + exercise, rounded to
5 minutes); tests/test_gates.py checks that the statement matches this estimate, so it
stays true when a lesson grows.
"""

from __future__ import annotations

import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from .. import ROOT
from . import notebooks

WORDS_PER_MINUTE = 120
CODE_LINES_PER_MINUTE = 15
MINUTES_PER_ANSWER_LINE = 4
STATED = re.compile(r"about (\d+) minutes", re.IGNORECASE)


@dataclass(frozen=True)
class Estimate:
    lesson: str
    words: int
    code_lines: int
    answer_lines: int

    @property
    def reading(self) -> float:
        return self.words / WORDS_PER_MINUTE

    @property
    def code(self) -> float:
        return self.code_lines / CODE_LINES_PER_MINUTE

    @property
    def exercise(self) -> float:
        return self.answer_lines * MINUTES_PER_ANSWER_LINE

    @property
    def minutes(self) -> int:
        return 5 * math.ceil((self.reading + self.code + self.exercise) / 5)


def _meaningful(lines) -> list[str]:
    return [ln for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def estimate(source: Path) -> Estimate:
    nb = notebooks.read(source)
    student = [c for c in nb.cells if "solution-only" not in c.metadata.get("tags", [])]
    words = sum(len(re.findall(r"[A-Za-z0-9_']+", c.source)) for c in student if c.cell_type == "markdown")
    regions = ((notebooks.SOLUTION_BEGIN, notebooks.SOLUTION_END), (notebooks.HIDDEN_BEGIN, notebooks.HIDDEN_END))
    code = sum(len(_meaningful(notebooks.outside_lines(c.source, regions)))
               for c in student if c.cell_type == "code" and not notebooks.is_answer(c))
    answer = sum(len(_meaningful(notebooks.region_lines(c.source, notebooks.SOLUTION_BEGIN, notebooks.SOLUTION_END)))
                 for c in student if c.cell_type == "code" and notebooks.is_answer(c))
    return Estimate(source.stem, words, code, answer)


def stated_minutes(source: Path) -> int | None:
    """The "about N minutes" of the lesson's title cell, if it states one."""
    first = notebooks.read(source).cells[0].source
    m = STATED.search(first)
    return int(m.group(1)) if m else None


def main() -> int:
    ok = True
    print(f"{'lesson':20s} {'words':>6s} {'code':>5s} {'answer':>6s}  {'read':>5s} {'code':>5s} {'exer':>5s}  "
          f"{'total':>5s}  stated")
    for src in notebooks.lesson_paths(ROOT / "source"):
        e = estimate(src)
        stated = stated_minutes(src)
        ok &= stated == e.minutes
        print(f"{e.lesson:20s} {e.words:6d} {e.code_lines:5d} {e.answer_lines:6d}  {e.reading:5.0f} {e.code:5.0f} "
              f"{e.exercise:5.0f}  {e.minutes:5d}  {stated}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
