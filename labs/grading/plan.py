"""The skip plan: what of a submitted notebook runs in the sandbox.

A lesson's show-only cells (tagged `grading-skip` in the source: timings, plots, demos,
self-checks) are emptied when a submitted cell's text is exactly one of them and nothing that runs
may read a name it binds (`skip_plan`, from Python's `symtable`). `runnable` is the notebook the
sandbox executes.
"""

from __future__ import annotations

import ast
import copy
import functools
import symtable

from nbformat.notebooknode import NotebookNode

from . import scan

STASH = "lab_submitted_outputs"  # where KeepSubmittedOutputs parks a cell's submitted outputs

SKIP_TAG = "grading-skip"  # a source cell that only shows (timings, plots, demos, self-checks)
SKIPPED = "# (only shows: not run while grading)"
# Reading any of these, a cell may read any name of the notebook: then no cell is skipped.
_DYNAMIC = {"globals", "locals", "vars", "eval", "exec", "get_ipython", "__import__", "__builtins__", "In", "Out",
            "_ih", "_oh", "__main__", "__dict__"}


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
