"""Autograding that holds against what students hand in (used by nbgrader_config.py).

- `LimitedKernelManager`: the grading kernel runs under `prlimit --as=...`, so a memory
  bomb fails inside the student's notebook (MemoryError / allocation error) instead of
  taking the grading machine down. `LAB_GRADE_MEMORY_MB` sets the bound (default 4096).
- `GuardedExecute`: nbgrader's Execute, but a kernel that dies (`os._exit`, a segfault,
  the OOM killer) no longer aborts the student's whole submission: the cell that killed
  it and every later cell get an error output (so every graded test from there scores
  zero, per `nbgrader.utils.determine_grade`) and the rest of the batch goes on.
- `RestoreCellOrder` (sanitize step, after OverwriteCells): grade and locked cells known
  to the gradebook go back to their source order, and the setup cell runs first, so
  moving a test above the answer, or a cell of student code above the setup cell (where
  it could patch the tools before the grader captures them), changes nothing.
- `RedactErrors` (feedback): a graded test cell's error output keeps only
  `ErrorName: message`: whatever traceback mode the student's code left behind, the
  feedback never shows the code of a hidden test. Hidden test regions themselves are
  removed by nbgrader's ClearHiddenTests, configured before it (nbgrader issue #1363).
"""

from __future__ import annotations

import os
import secrets

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader import utils
from nbgrader.api import Gradebook
from nbgrader.preprocessors import DeduplicateIds as _DeduplicateIds
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer, Unicode

DEFAULT_MEMORY_MB = 4096
KERNEL_DIED = "KernelDied"


def memory_limit_bytes() -> int:
    return int(os.environ.get("LAB_GRADE_MEMORY_MB", DEFAULT_MEMORY_MB)) * 1024 * 1024


class LimitedKernelManager(AsyncKernelManager):
    """A kernel whose address space is bounded (RLIMIT_AS, set by util-linux `prlimit`,
    which then execs the kernel: same pid, so interrupts still reach it)."""

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        return ["prlimit", f"--as={memory_limit_bytes()}", "--", *cmd]


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"{ename}: {evalue}"])


# Run (under a random name) right after the setup cell: a snapshot of the setup cell's
# globals and of the library tools and IPython machinery a test relies on; `_check()`
# then opens every graded test cell. A submission that rebinds a setup name (hidden
# helpers included), patches torch/builtins/sys hooks or IPython's traceback display or
# input transformers scores zero on every graded test after that point.
_SNAPSHOT = r"""
def _lab_N_make():
    import builtins, re, sys, torch
    ip, g = get_ipython(), globals()
    skip = {"In", "Out", "exit", "quit", "get_ipython", "_oh", "_dh", "_sh"}
    names = {k: v for k, v in g.items() if k not in skip and not k.startswith(("__", "_i", "_lab_"))
             and not re.fullmatch(r"_+\d*", k)}
    owners = ((torch, ("allclose", "equal", "isclose", "all", "any")), (torch.testing, ("assert_close",)),
              (torch.autograd, ("grad", "gradcheck", "gradgradcheck", "backward", "Function")),
              (torch.Tensor, ("backward", "__eq__", "__bool__", "allclose", "equal", "all", "any", "item")),
              (builtins, tuple(n for n in dir(builtins) if not n.startswith("_") and n != "input")
               + ("__import__",)), (sys, ("displayhook",)), (type(ip), ("showtraceback", "run_cell", "run_ast_nodes",
              "run_code")), (type(ip.InteractiveTB), ("structured_traceback",)))
    tools = [(o, n, getattr(o, n)) for o, ns in owners for n in ns if hasattr(o, n)]
    hooks = [(n, list(getattr(ip, n))) for n in ("input_transformers_cleanup", "input_transformers_post",
                                                   "ast_transformers")]
    tb = ip.InteractiveTB
    plain = (int, float, str, bool, type(None), torch.device, torch.dtype)

    def check():
        bad = [k for k, v in names.items()
               if g.get(k) is not v and not (isinstance(v, plain) and type(g.get(k)) is type(v) and g.get(k) == v)]
        bad += [f"{getattr(o, '__name__', type(o).__name__)}.{n}" for o, n, v in tools if getattr(o, n, None) is not v]
        bad += [f"IPython {n}" for n, v in hooks if list(getattr(ip, n)) != v]
        bad += [f"IPython {n}" for o in (ip, tb) for n in ("showtraceback", "run_cell", "run_ast_nodes",
                "run_code", "structured_traceback") if n in vars(o)]
        bad += ["IPython InteractiveTB"] if ip.InteractiveTB is not tb else []
        if bad:
            raise AssertionError("the submission replaced tools the grader relies on: " + ", ".join(bad)
                                 + ". Graded tests cannot trust them, so they score zero.")
    return check


_lab_N_check = _lab_N_make()
del _lab_N_make
"""


class GuardedExecute(Execute):
    """nbgrader's Execute in a memory-bounded kernel, surviving a kernel death."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)

    setup_id = Unicode("setup", help="grade_id of the cell after which the tools are snapshot").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._dead_at = None
        self._guard = f"_lab_{secrets.token_hex(6)}"  # a name no submission can know in advance
        self._guard_ready = False
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead_at is not None:
            cell.outputs = [_error_output(
                KERNEL_DIED, f"not run: the kernel died in cell {self._dead_at} (an earlier cell)")]
            return cell, resources
        meta = cell.metadata.get("nbgrader", {})
        graded_test = utils.is_grade(cell) and not utils.is_solution(cell)
        original = cell.source
        nonce = f"lab-ran-{secrets.token_hex(8)}"
        if graded_test:  # proof, out of the kernel's reach, that the test ran to its end
            cell.source = f"{original}\n__import__('builtins').print({nonce!r})"
            if meta.get("grade_id") == self.setup_id:
                cell.source += "\n" + _SNAPSHOT.replace("_lab_N", self._guard)
            elif meta.get("points") and self._guard_ready:
                cell.source = f"{self._guard}_check()\n{cell.source}"
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if graded_test:
                cell.source = original
                ran = self._check_ran(cell, nonce)
                if meta.get("grade_id") == self.setup_id and ran:
                    self._guard_ready = True
            return cell, resources
        except (DeadKernelError, CellTimeoutError) as err:  # dead, or alive but beyond reach
            cell.source = original
            self._dead_at = index
            self.log.error("The kernel died in cell %d: %s", index, err)
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(
                KERNEL_DIED, "the kernel died or stopped responding while running this cell "
                             "(os._exit, a crash, memory exhausted); later cells were not run")]
            return cell, resources


    @staticmethod
    def _check_ran(cell, nonce: str) -> bool:
        seen = False
        for out in cell.outputs:
            if out.output_type == "stream" and nonce in out.text:
                seen = True
                out.text = out.text.replace(nonce + "\n", "").replace(nonce, "")
        cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and not o.text)]
        if not seen and not any(o.output_type == "error" for o in cell.outputs):
            cell.outputs.append(_error_output(
                "TestDidNotRun", "this graded test did not run to its end (the submission changes "
                                 "how cells execute), so it scores zero"))
        return seen


class DeduplicateIds(_DeduplicateIds):
    """nbgrader's DeduplicateIds (the last copy of a grade id keeps it), but the other
    copies lose their nbgrader metadata entirely instead of keeping an empty dict, which
    `OverwriteCells.add_missing_cells` trips over (KeyError: 'grade_id')."""

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = super().preprocess_cell(cell, resources, cell_index)
        if cell.get("metadata", {}).get("nbgrader", None) == {}:
            del cell["metadata"]["nbgrader"]
        return cell, resources


class RestoreCellOrder(NbGraderPreprocessor):
    """Grade/locked cells back in source order; the setup cell first."""

    setup_id = Unicode("setup", help="grade_id of the cell that must run first").tag(config=True)

    def preprocess(self, nb, resources):
        with Gradebook(resources["nbgrader"]["db_url"]) as gb:
            source = gb.find_notebook(resources["nbgrader"]["notebook"],
                                      resources["nbgrader"]["assignment"])
            order = {c.name: i for i, c in enumerate(source.source_cells)}

        def known(cell):
            gid = cell["metadata"].get("nbgrader", {}).get("grade_id")
            return gid in order and (utils.is_grade(cell) or utils.is_locked(cell) or utils.is_solution(cell))

        slots = [i for i, c in enumerate(nb.cells) if known(c)]
        fixed = sorted((nb.cells[i] for i in slots),  # re-added cells hold plain dicts
                       key=lambda c: order[c["metadata"]["nbgrader"]["grade_id"]])
        if [id(c) for c in fixed] != [id(nb.cells[i]) for i in slots]:
            self.log.warning("Graded cells were out of order; restored the source order")
        for i, cell in zip(slots, fixed, strict=True):
            nb.cells[i] = cell
        setup = [i for i, c in enumerate(nb.cells)
                 if c["metadata"].get("nbgrader", {}).get("grade_id") == self.setup_id]
        first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), None)
        if setup and first_code is not None and setup[0] > first_code:
            self.log.warning("Code ran before the setup cell; the setup cell now runs first")
            nb.cells.insert(first_code, nb.cells.pop(setup[0]))
        return nb, resources


class RedactErrors(NbGraderPreprocessor):
    """Error outputs of graded test cells reduced to `ErrorName: message` (feedback)."""

    max_chars = Integer(2000, help="longest error message kept").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for out in cell.get("outputs", []):
                if out.output_type == "error":
                    out.traceback = [f"{out.ename}: {str(out.evalue)[:self.max_chars]}"]
        return cell, resources
