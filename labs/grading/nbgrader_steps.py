"""nbgrader's autograde and feedback, fitted to trusted grading (the preprocessors nbgrader_config.py names).

    sanitize:  DeduplicateIds, KeepSubmittedOutputs, ClearOutput, OverwriteKernelspec,
               OverwriteCells, RestoreCellOrder, CheckCellMetadata
    autograde: SandboxedExecute -> Judge -> SanitizeStudentHTML -> SaveAutoGrades -> ...
    feedback:  GetGrades, ClearHiddenTestCells, SanitizeStudentHTML, OfflineMath, CSSHTMLHeaderPreprocessor
               with the template labs/grading/templates/lab_feedback (no script, no third party)

- `SandboxedExecute` takes the run the fan-out already stored for exactly this notebook
  (labs/grading/runs.py), or runs it now (labs/grading/execute.py); what comes back is data in
  `resources`.
- `Judge` turns that data into verdicts (labs/grading/judge.py) against the instructor's
  solution (labs/grading/reference.py), and the static scan of the student's cells
  (labs/grading/scan.py). Each graded test cell's outputs become its verdict; every other cell
  gets back the outputs the student submitted (never outputs made while grading). The notebook's
  metadata `lab_grading` records verdicts, review flags and sandbox events for the summary,
  grades.csv and the report.
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from pathlib import Path

import nbformat
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.preprocessors import DeduplicateIds as _DeduplicateIds
from traitlets import Bool, Integer, Unicode

from ..course import notebooks
from . import judge, runs, sandbox, scan
from .execute import execute, limits
from .plan import STASH, runnable, skipped_sources
from .reference import declaration, reference

REPORT = "lab_grading"


# --- sanitize ------------------------------------------------------------------------------

class DeduplicateIds(_DeduplicateIds):
    """nbgrader's DeduplicateIds, but the other copies lose their nbgrader metadata entirely
    (an empty dict trips `OverwriteCells.add_missing_cells`: KeyError 'grade_id')."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.get("metadata", {}).get("nbgrader", None) == {}:
            del cell["metadata"]["nbgrader"]
        return cell, resources


class KeepSubmittedOutputs(NbGraderPreprocessor):
    """Before ClearOutput: each cell's submitted outputs move to its metadata (capped), so
    feedback shows what the student submitted, never what grading produced."""

    max_bytes = Integer(256 * 1024, help="largest submitted output kept per cell").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code":
            kept, used = [], 0
            for out in cell.get("outputs", []):
                size = len(json.dumps(out))
                if used + size > self.max_bytes:
                    kept.append(nbformat.v4.new_output("stream", name="stdout", text="[long output cut]\n"))
                    break
                kept.append(out)
                used += size
            cell.metadata[STASH] = kept
        return cell, resources


class RestoreCellOrder(NbGraderPreprocessor):
    """Grade/locked cells back in source order, the setup cell first. The order is read from the
    source notebook itself: the gradebook does not keep one (PostgreSQL returns its source cells in
    any order; SQLite happens to return them as inserted)."""

    setup_id = Unicode("setup", help="grade_id of the cell that must run first").tag(config=True)

    def preprocess(self, nb, resources):
        course = Path(resources.get("lab_course_root") or os.getcwd())
        source = notebooks.read(course / "source" / resources["nbgrader"]["assignment"]
                                / f"{resources['nbgrader']['notebook']}.ipynb")
        order = {notebooks.grade_id(c): i for i, c in enumerate(source.cells) if notebooks.grade_id(c)}

        def known(cell):
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            return gid in order and (utils.is_grade(cell) or utils.is_locked(cell) or utils.is_solution(cell))

        slots = [i for i, c in enumerate(nb.cells) if known(c)]
        fixed = sorted((nb.cells[i] for i in slots), key=lambda c: order[c["metadata"]["nbgrader"]["grade_id"]])
        for i, cell in zip(slots, fixed, strict=True):
            nb.cells[i] = cell
        setup = [i for i, c in enumerate(nb.cells) if notebooks.grade_id(c) == self.setup_id]
        first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
        if setup and first_code is not None and setup[0] > first_code:
            nb.cells.insert(first_code, nb.cells.pop(setup[0]))
        return nb, resources


# --- execute -------------------------------------------------------------------------------

class SandboxedExecute(NbGraderPreprocessor):
    """Runs the notebook in a sandbox, or takes the run the fan-out already made of exactly it."""

    timeout = Integer(60, help="seconds per cell").tag(config=True)

    def preprocess(self, nb, resources):
        course = Path(os.getcwd())
        source = notebooks.read(course / "source" / resources["nbgrader"]["assignment"]
                                / f"{resources['nbgrader']['notebook']}.ipynb")
        todo, lim = runnable(nb, skipped_sources(source)), limits(self.timeout)
        run = runs.load(course, runs.run_key(todo, lim))
        resources["lab_run_cached"] = run is not None
        resources["lab_run"] = run if run is not None else execute(todo, lim=lim)
        return nb, resources


# --- judge ---------------------------------------------------------------------------------

def _failed(message: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename="Failed", evalue=message, traceback=[message])


class Judge(NbGraderPreprocessor):
    """Verdicts for graded test cells; submitted outputs back everywhere else."""

    course_root = Unicode("", help="course directory (default: the working directory)").tag(config=True)

    def preprocess(self, nb, resources):
        started = time.perf_counter()
        course = Path(self.course_root or os.getcwd())
        assignment, name = resources["nbgrader"]["assignment"], resources["nbgrader"]["notebook"]
        source = notebooks.read(course / "source" / assignment / f"{name}.ipynb")
        decl = declaration(source)
        ref = reference(course, assignment, name)
        run: sandbox.Run = resources.get("lab_run") or sandbox.Run(events=["the notebook was not executed"])
        # the cells whose text differs from the source's; a name in a cell is a review flag, never a score
        findings = scan.scan_notebook(nb, decl["reimplements"], source=source, allow=decl["allow"])
        ops, calls = frozenset(decl["ops"]), frozenset(decl["calls"])
        verdicts, dead, evidence, flags = {}, None, [], []
        for i, cell in enumerate(nb.cells):
            status = run.statuses.get(i)
            if cell.cell_type == "code" and dead is None and status in ("died", "timeout") \
                    and not notebooks.is_graded_test(cell):
                dead = (i, status)
            if notebooks.is_graded_test(cell):
                gid = notebooks.grade_id(cell)
                not_run = None
                if status is None:
                    not_run = "the notebook stopped before this cell (" + (
                        "; ".join(run.events) or (f"cell {dead[0]}: {dead[1]}" if dead else "no result")) + ")"
                elif status in ("died", "timeout"):
                    not_run = f"this cell {'timed out' if status == 'timeout' else 'ended with the kernel dead'}"
                # zero for delegation only on this test's own evidence: its probes' op and call logs
                result = judge.judge_cell(ref.get(gid, {}), run.outputs.get(i, []), ops, calls, not_run)
                message = result.message
                evidence += [f"{gid}: {e}" for e in result.evidence]
                flags += [f"runtime: {gid}: {f}" for f in dict.fromkeys(result.flags)]
                verdicts[gid] = message
                cell.outputs = [] if message is None else [_failed(message)]
            elif cell.cell_type == "code":
                cell.outputs = [nbformat.from_dict(o) for o in cell.metadata.get(STASH, [])]
                cell.execution_count = None
            cell.metadata.pop(STASH, None)
        nb.metadata[REPORT] = {
            "verdicts": verdicts,
            "events": run.events,
            "statuses": {str(i): s if s != "error" else f"error {run.errors.get(i, '')}".strip()
                         for i, s in run.statuses.items() if s != "ok" and not notebooks.is_graded_test(nb.cells[i])},
            "forbidden": evidence,
            "review": [f"{f.category}: {f.what} ({f.cell}, line {f.line})" for f in findings] + flags,
            "seconds": round(run.seconds, 1),
            "ran_in_fanout": bool(resources.get("lab_run_cached")),
            "unsafe": limits().unsafe,
        }
        nb.metadata[REPORT]["timing"] = _timing(nb, run, time.perf_counter() - started)
        return nb, resources


def _timing(nb, run: sandbox.Run, judge_seconds: float) -> dict[str, float]:
    """Where one notebook's grading time went (for `make bench-grading`; never for a score)."""
    parts = {"sandbox start": run.timing.get("sandbox start", 0.0), "kernel start": run.timing.get("kernel start", 0.0),
             "imports": run.cell_seconds.get(-1, 0.0), "lesson cells": 0.0, "probes": 0.0, "judge": judge_seconds}
    for i, seconds in run.cell_seconds.items():
        if 0 <= i < len(nb.cells):
            cell = nb.cells[i]
            key = "imports" if notebooks.grade_id(cell) == "setup" else \
                "probes" if notebooks.is_graded_test(cell) else "lesson cells"
            parts[key] += seconds
    return {k: round(v, 3) for k, v in parts.items()}


# --- feedback ------------------------------------------------------------------------------

class ClearHiddenTestCells(ClearHiddenTests):
    """nbgrader's ClearHiddenTests, applied only to the instructor's graded test cells: a
    student's own cell that happens to contain the marker text is theirs, left alone."""

    def preprocess_cell(self, cell, resources, cell_index):
        if notebooks.is_graded_test(cell) or (utils.is_grade(cell) and not utils.is_solution(cell)):
            return super().preprocess_cell(cell, resources, cell_index)
        return cell, resources


class SanitizeStudentHTML(SanitizeHTML):
    """nbconvert's SanitizeHTML on every code output, and on the markdown and raw cells the
    student wrote (answers, added cells); the instructor's locked cells are left as written."""

    enabled = Bool(True)  # nbconvert preprocessors are off unless enabled

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" and utils.is_locked(cell) and not utils.is_solution(cell):
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)


# Markdown that is code (fenced blocks, inline code spans) keeps its dollars; outside it, $$...$$ and $...$
# (not \$, not spanning a blank line) are TeX, as the notebook's own renderer reads them.
_CODE = re.compile(r"(?ms)^(```|~~~).*?^\1[^\n]*$|(`+)(?:(?!\2).)+?\2")
_MATH = re.compile(r"(?s)(?<!\\)\$\$(.+?)(?<!\\)\$\$|(?<![\\$])\$(?!\s)((?:[^$\n\\]|\\.)+?)(?<![\s\\])\$(?!\d)")


# What the page may hold of the converter's output: presentation MathML elements and layout attributes,
# values without parentheses, colons or quotes (no url(), no javascript:). Anything else: the TeX stays text.
_MATHML_TAGS = frozenset("""math mrow mi mn mo ms mtext mspace mfrac msqrt mroot msub msup msubsup munder mover
    munderover mtable mtr mtd mstyle mpadded mphantom menclose mfenced semantics annotation none mprescripts
    mmultiscripts merror""".split())
_MATHML_ATTRS = frozenset("""display mathvariant stretchy fence separator lspace rspace columnalign rowalign
    rowspacing columnspacing columnlines rowlines frame accent accentunder movablelimits minsize maxsize symmetric
    largeop displaystyle scriptlevel mathcolor mathbackground width height depth linethickness notation form
    align voffset encoding""".split())
_SAFE_VALUE = re.compile(r"[\w#.%+\- ]{0,64}")
_NS = "{http://www.w3.org/1998/Math/MathML}"


def _safe_mathml(text: str) -> str:
    """The converter's MathML rebuilt from an allowlist (elements, attributes, values), text escaped;
    ValueError when it holds anything else (an <img> from \\text{...}, an href, a style)."""
    import xml.etree.ElementTree as ET

    def build(node) -> str:
        tag = node.tag[len(_NS):] if node.tag.startswith(_NS) else node.tag
        if tag not in _MATHML_TAGS:
            raise ValueError(f"element {tag[:20]!r}")
        attrs = []
        for name, value in node.attrib.items():
            if name not in _MATHML_ATTRS or not _SAFE_VALUE.fullmatch(value):
                raise ValueError(f"attribute {name[:20]!r}")
            attrs.append(f' {name}="{html.escape(value)}"')
        if tag == "math":
            attrs.insert(0, ' xmlns="http://www.w3.org/1998/Math/MathML"')
        inner = html.escape(node.text or "", quote=False) + "".join(
            build(child) + html.escape(child.tail or "", quote=False) for child in node)
        return f"<{tag}{''.join(attrs)}>{inner}</{tag}>"

    return build(ET.fromstring(text))


class OfflineMath(NbGraderPreprocessor):
    """The feedback page's math as MathML, written into the page: it opens offline and calls no third
    party (nbgrader's feedback template loads MathJax from a public CDN; ours, lab_feedback, loads no
    script at all). Runs after SanitizeStudentHTML: the MathML is made here, by latex2mathml, from TeX
    text, and rebuilt from an allowlist; TeX it cannot read, or longer than `max_chars`, stays exactly
    as it was (already sanitized where a student wrote it)."""

    enabled = Bool(True)
    max_chars = Integer(4000, help="longest TeX expression converted (a student's text is bounded)").tag(config=True)

    def _math(self, match: re.Match) -> str:
        from latex2mathml.converter import convert

        display, tex = match.group(1) is not None, match.group(1) or match.group(2)
        if len(tex) > self.max_chars:
            return match.group(0)
        try:  # MathJax reads the page's text, where entities (&lt; in a table) are already characters
            return _safe_mathml(convert(html.unescape(tex).strip(), display="block" if display else "inline"))
        except Exception:  # noqa: BLE001 - TeX the converter cannot read, or unsafe output: the text as it was
            return match.group(0)

    def convert(self, text: str) -> str:
        out, at = [], 0
        for code in _CODE.finditer(text):
            out += [_MATH.sub(self._math, text[at:code.start()]), code.group(0)]
            at = code.end()
        return "".join(out + [_MATH.sub(self._math, text[at:])])

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type == "markdown":
            cell.source = self.convert(cell.source)
        return cell, resources
