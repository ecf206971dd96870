"""nbgrader's autograde, fitted to trusted grading (the preprocessors nbgrader_config.py names).

    sanitize:  DeduplicateIds, KeepSubmittedOutputs, ClearOutput, OverwriteKernelspec,
               OverwriteCells, RestoreCellOrder, CheckCellMetadata
    autograde: SandboxedExecute -> Judge -> SanitizeHTML -> SaveAutoGrades -> ...
    feedback:  GetGrades, ClearHiddenTestCells, SanitizeHTML, CSSHTMLHeaderPreprocessor

- `SandboxedExecute` runs the sanitized notebook in a fresh sandbox (labs/sandbox.py) with
  the probe kit (labs/probekit.py) run first; what comes back is data in `resources`.
- `Judge` turns that data into verdicts (labs/judge.py) against the instructor's solution,
  run through the same sandbox and probes once per source version (`reference`, cached
  under `.lab-grader/` in the course, which no sandbox sees), and the static scan of the
  student's cells (labs/scan.py). Each graded test cell's outputs become its verdict; every
  other cell gets back the outputs the student submitted (never outputs made while grading).
  The notebook's metadata `lab_grading` records verdicts, review flags and sandbox events
  for the summary, grades.csv and the report.
"""

from __future__ import annotations

import ast
import copy
import dataclasses
import functools
import hashlib
import json
import os
import symtable
import time
from importlib.metadata import version
from pathlib import Path

import nbformat
from nbconvert.preprocessors.sanitize import SanitizeHTML
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.preprocessors import ClearHiddenTests, NbGraderPreprocessor
from nbgrader.preprocessors import DeduplicateIds as _DeduplicateIds
from traitlets import Bool, Integer, Unicode

from . import fanout, judge, notebooks, sandbox, scan

STASH = "lab_submitted_outputs"
REPORT = "lab_grading"
KIT = Path(__file__).with_name("probekit.py")
KIT_SECONDS = 180  # the kit's own cell timeout (it imports torch)


SKIP_TAG = "grading-skip"  # a source cell that only shows (timings, plots, demos, self-checks)
SKIPPED = "# (only shows: not run while grading)"
# Reading any of these, a cell may read any name of the notebook: then no cell is skipped.
_DYNAMIC = {"globals", "locals", "vars", "eval", "exec", "get_ipython", "__import__", "__builtins__", "In", "Out",
            "_ih", "_oh", "__main__", "__dict__"}


def limits(cell_seconds: int = 60) -> sandbox.Limits:
    return sandbox.Limits(cell_seconds=cell_seconds, unsafe=os.environ.get("LAB_GRADE_UNSAFE") == "1")


def skipped_sources(source_nb) -> set[str]:
    """Texts of the source's cells tagged `grading-skip`: a submitted cell is skipped only when
    its text is exactly one of them (the tag is read from the source, never from a submission)."""
    return {c.source.strip() for c in source_nb.cells if SKIP_TAG in c.metadata.get("tags", [])}


def _scopes(table):
    yield table
    for child in table.get_children():
        yield from _scopes(child)


@functools.lru_cache(maxsize=4096)  # a class shares most cells: each text is analysed once per process
def _names(source: str) -> tuple[frozenset[str], frozenset[str], frozenset[str], bool]:
    """What a cell does with the notebook's namespace: (the names it binds, at module level or
    `global` in a function; the names it reads at once, at its top level and not bound earlier in
    the cell; the names it may read later, inside a function, lambda, class or comprehension,
    which may run at any time; whether it star-imports). A cell that does not parse, or is nested
    too deeply to compile, binds and reads nothing (it raises when run, as here)."""
    bound: set[str] = set()
    now: set[str] = set()
    later: set[str] = set()
    tree = scan.parse(source)[0]  # IPython syntax transformed, as the kernel runs it
    if tree is None:
        return frozenset(), frozenset(), frozenset(), False
    try:
        for statement in tree.body:
            top = symtable.symtable(ast.unparse(statement), "<cell>", "exec")
            now |= {s.get_name() for s in top.get_symbols() if s.is_referenced()} - bound
            for scope in _scopes(top):
                if scope is not top:
                    later |= {s.get_name() for s in scope.get_symbols() if s.is_referenced() and s.is_global()}
                    bound |= {s.get_name() for s in scope.get_symbols()
                              if s.is_declared_global() and s.is_assigned()}
            bound |= {s.get_name() for s in top.get_symbols() if s.is_assigned() or s.is_imported()}
    except (SyntaxError, RecursionError):  # nor can Python compile it to run it
        return frozenset(), frozenset(), frozenset(), False
    star = any(isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names) for n in ast.walk(tree))
    return frozenset(bound), frozenset(now), frozenset(later), star


def skip_plan(sources: list[str], skip: set[str]) -> set[int]:
    """Which of these code cells grading skips: a cell whose text is one of the source's show-only
    cells, unless a cell that runs may read a name it binds (the student's answer may use a
    lesson's helper, or an import made in a plot cell): at once, after it, or at any time from
    inside a function. None at all when a cell that runs looks names up dynamically (globals(),
    eval, magics). What a skipped cell binds is then read by nothing that runs, so skipping it
    changes no value a graded test sees; its other effects are the gate's concern (the source
    passes every graded test without these cells)."""
    names = [_names(s) for s in sources]
    candidates = {i for i, s in enumerate(sources) if s.strip() in skip and not names[i][3]}
    running: set[int] = set()
    more = set(range(len(sources))) - candidates
    while more:
        if any((names[i][1] | names[i][2]) & _DYNAMIC for i in more):
            return set()
        running |= more
        more = {c for c in candidates - running
                if any(names[c][0] & (names[r][2] | (names[r][1] if c < r else frozenset())) for r in running)}
    return candidates - running


def runnable(nb, skip: set[str] = frozenset()) -> NotebookNode:
    """What runs in the sandbox: the cells without outputs, the lesson's show-only cells emptied
    (those `skip_plan` allows)."""
    run = copy.deepcopy(nb)
    code = [c for c in run.cells if c.cell_type == "code"]
    skipped = skip_plan([c.source for c in code], skip) if skip else set()
    for cell in run.cells:
        cell.metadata.pop(STASH, None)
    for i, cell in enumerate(code):
        cell.outputs = []
        if i in skipped:
            cell.source = SKIPPED
    return run


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

def execute(nb, cell_seconds: int = 60, lim: sandbox.Limits | None = None) -> sandbox.Run:
    """Run a (runnable) notebook with the probe kit first, in a sandbox; results indexed like `nb`."""
    with_kit = copy.deepcopy(nb)
    with_kit.cells.insert(0, nbformat.v4.new_code_cell(KIT.read_text()))
    lim = lim or limits(cell_seconds)
    # The kit imports torch before any student code: on a loaded machine that can take longer than a
    # student's cell may, and it is never the student's doing (labs/fanout.py retries a kit that failed).
    lim = dataclasses.replace(lim, first_cell_seconds=max(KIT_SECONDS, lim.cell_seconds))
    raw = sandbox.run_notebook(with_kit, lim)
    run = sandbox.Run(events=raw.events, seconds=raw.seconds, timing=dict(raw.timing))
    run.cell_seconds = {i - 1: t for i, t in raw.cell_seconds.items()}
    run.statuses = {i - 1: s for i, s in raw.statuses.items() if i > 0}
    run.outputs = {i - 1: o for i, o in raw.outputs.items() if i > 0}
    run.errors = {i - 1: e for i, e in raw.errors.items() if i > 0}
    if raw.statuses.get(0, "ok") != "ok" or (raw.statuses and 0 not in raw.statuses) or not raw.statuses:
        run.events.append(fanout.KIT_FAILED)
    return run


class SandboxedExecute(NbGraderPreprocessor):
    """Runs the notebook in a sandbox, or takes the run the fan-out already made of exactly it."""

    timeout = Integer(60, help="seconds per cell").tag(config=True)

    def preprocess(self, nb, resources):
        from . import fanout

        course = Path(os.getcwd())
        source = notebooks.read(course / "source" / resources["nbgrader"]["assignment"]
                                / f"{resources['nbgrader']['notebook']}.ipynb")
        todo, lim = runnable(nb, skipped_sources(source)), limits(self.timeout)
        run = fanout.load(course, fanout.run_key(todo, lim))
        resources["lab_run_cached"] = run is not None
        resources["lab_run"] = run if run is not None else execute(todo, lim=lim)
        return nb, resources


# --- reference: the instructor's solution through the same probes ------------------------

class ReferenceFailed(RuntimeError):
    pass


def declaration(source_nb) -> dict[str, list[str]]:
    """What the exercise re-implements and what its answers may use, from the source notebook's
    metadata `lab.exercise` (the instructor's; a submission's metadata is never read): `reimplements`
    (dotted patterns: a review flag in an answer cell), `ops` (aten names) and `calls` (qualified
    Python names): evidence in a probe's own log; `allow` (dotted patterns an answer cell may use).
    A missing key is an empty list."""
    raw = source_nb.metadata.get("lab", {}).get("exercise", {})
    raw = raw if isinstance(raw, dict) else {}
    return {k: [str(v) for v in raw.get(k) or () if isinstance(v, str)]
            for k in ("reimplements", "ops", "calls", "allow")}


def reference(course: Path, assignment: str, notebook: str, cell_seconds: int = 60) -> dict[str, dict]:
    """{grade_id: {key: record}} of the source notebook, cached by what it depends on, in the
    course's .lab-grader/reference/ or in LAB_REFERENCE_CACHE (a folder of the grader's, shared
    by courses made from the same source: the tests' throwaway courses)."""
    src = course / "source" / assignment / f"{notebook}.ipynb"
    parts = [notebooks.content_hash(src), KIT.read_text(), sandbox.RUNNER.read_text(),
             sandbox.device(), version("torch")]
    key = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:20]
    folder = Path(os.environ.get("LAB_REFERENCE_CACHE") or course / ".lab-grader" / "reference")
    cache = folder / f"{notebook}-{key}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    nb = notebooks.read(src)
    run = execute(runnable(nb, skipped_sources(nb)), cell_seconds)
    graded = [i for i, c in enumerate(nb.cells) if notebooks.is_graded_test(c)]
    out: dict[str, dict] = {}
    problems = list(run.events)
    for i in graded:
        gid = notebooks.grade_id(nb.cells[i])
        if run.statuses.get(i) != "ok":
            problems.append(f"{gid}: the solution's cell ended with status {run.statuses.get(i, 'not run')}")
        try:
            out[gid] = judge.records(run.outputs.get(i, []))
        except judge.Malformed as err:
            problems.append(f"{gid}: {err}")
    problems += judge.check_reference(out, [notebooks.grade_id(nb.cells[i]) for i in graded])
    if problems:
        raise ReferenceFailed(f"the solution of {notebook} does not pass its own probes: " + "; ".join(problems))
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(out))
    partial.replace(cache)  # atomic: a reader never sees half a reference
    return out


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
