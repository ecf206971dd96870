"""The bad-submission corpus: what students hand in, and the verdict each deserves.

Every case builds one student's submission folder from the student release of
`01_hardswish` (the cases are about the grading workflow, not about a lesson: one
notebook keeps the batch lean). `lost` is the set of graded tests that must score
zero ("all": every graded test of the notebook), `problem` a phrase the instructor's
summary must show for that student. Good submissions in the same batch must keep
full marks.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import dataclass

import nbformat

NOTEBOOK = "01_hardswish"
ANSWER = "hardswish_answer"
ALL = "all"
WRONG_LOST = frozenset({"test_backward", "test_kinks"})  # what the closed-interval answer loses


@dataclass(frozen=True)
class Case:
    name: str
    why: str
    make: Callable  # (release nb, good answer source, wrong answer source) -> {filename: nb | bytes}
    lost: frozenset[str] | str = frozenset()
    problem: str | None = None


def _with_answer(release, source: str):
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == ANSWER:
            cell.source = source
    return nb


def _index(nb, gid: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _file(nb) -> dict:
    return {f"{NOTEBOOK}.ipynb": nb}


def _good(release, good, wrong):
    return _file(_with_answer(release, good))


def _appended(code: str, base: str = "good"):
    def make(release, good, wrong):
        return _file(_with_answer(release, (good if base == "good" else wrong) + "\n\n" + code + "\n"))
    return make


def _prepended(code: str, base: str = "good"):
    def make(release, good, wrong):
        return _file(_with_answer(release, code + "\n\n" + (good if base == "good" else wrong)))
    return make


def _extra_file(release, good, wrong):
    files = _good(release, good, wrong)
    files["notes.txt"] = b"my notes\n"
    files["helper.py"] = b"print('a module next to the notebook')\n"
    return files


def _malformed(release, good, wrong):
    text = nbformat.writes(_with_answer(release, good))
    return {f"{NOTEBOOK}.ipynb": text[: len(text) // 2].encode()}


def _old_nbformat(release, good, wrong):
    nb = _with_answer(release, good)
    v3 = nbformat.convert(nb, 3)
    return {f"{NOTEBOOK}.ipynb": json.dumps(v3, indent=1).encode()}


def _missing(release, good, wrong):
    return {"my_answers.txt": b"I forgot to upload the notebook\n"}


def _test_deleted(release, good, wrong):
    nb = _with_answer(release, good)
    del nb.cells[_index(nb, "test_kinks")]
    return _file(nb)


def _test_edited(release, good, wrong):
    nb = _with_answer(release, wrong)
    nb.cells[_index(nb, "test_kinks")].source = "pass  # the test was in my way\n"
    return _file(nb)


def _test_moved(release, good, wrong):
    nb = _with_answer(release, good)
    cell = nb.cells.pop(_index(nb, "test_backward"))
    nb.cells.insert(_index(nb, ANSWER), cell)          # the test now runs before the answer
    setup = nb.cells.pop(_index(nb, "setup"))
    nb.cells.append(setup)                               # and the setup cell last
    return _file(nb)


def _test_duplicated(release, good, wrong):
    nb = _with_answer(release, good)
    dup = copy.deepcopy(nb.cells[_index(nb, "test_forward")])
    dup.id = "duplicated-test"
    nb.cells.insert(_index(nb, "test_gradcheck"), dup)
    return _file(nb)


def _duplicate_cell_ids(release, good, wrong):
    nb = _with_answer(release, good)
    text = json.loads(nbformat.writes(nb))
    text["cells"][3]["id"] = text["cells"][2]["id"]
    return {f"{NOTEBOOK}.ipynb": json.dumps(text, indent=1).encode()}


def _too_deep(release, good, wrong):
    nb = _with_answer(release, good)
    nb.cells.insert(_index(nb, ANSWER) + 1, nbformat.v4.new_code_cell("x = " + "-" * 200_000 + "1"))
    return _file(nb)


def _patch_above_setup(release, good, wrong):
    nb = _with_answer(release, wrong)
    nb.cells.insert(0, nbformat.v4.new_code_cell(
        "import torch\ntorch.allclose = lambda *a, **k: True\n"))
    return _file(nb)


_ENDLESS = "while True:\n    pass"
_PATCH_GRADCHECK = """import torch.autograd
torch.autograd.gradcheck = torch.autograd.gradgradcheck = lambda *a, **k: True
gradcheck = gradgradcheck = torch.autograd.gradcheck"""
_PATCH_TRACEBACK = """get_ipython().showtraceback = lambda *a, **k: None
get_ipython().InteractiveTB.structured_traceback = lambda *a, **k: []"""

CASES = [
    Case("good_solution", "the reference solution", _good),
    Case("infinite_loop", "an endless loop after a correct answer: the cell times out, the rest is graded",
         _appended(_ENDLESS), problem="timeout"),
    Case("kernel_exit", "os._exit(1) in the answer cell: the kernel dies", _appended("import os\nos._exit(1)"),
         lost=ALL, problem="kernel died"),
    Case("segfault", "a segfault (ctypes reads address 0)", _appended("import ctypes\nctypes.string_at(0)"),
         lost=ALL, problem="kernel died"),
    Case("memory_bomb", "allocates until memory runs out, before defining anything",
         _prepended("_hog = []\nwhile True:\n    _hog.append(bytearray(64 * 1024 * 1024))"),
         lost=ALL, problem="memory bound"),
    Case("malformed_json", "the notebook file is cut in half", _malformed, lost=ALL,
         problem="not a readable notebook"),
    Case("old_nbformat", "a correct notebook saved as nbformat 3", _old_nbformat, problem="upgraded to 4"),
    Case("missing_notebook", "no notebook, only a text file", _missing, lost=ALL, problem="missing"),
    Case("extra_file", "a correct notebook plus files the grader ignores", _extra_file,
         problem="extra file"),
    Case("test_deleted", "a correct answer with the test_kinks cell deleted (nbgrader #1682)", _test_deleted),
    Case("test_edited", "a wrong kink convention and test_kinks replaced by `pass`", _test_edited,
         lost=frozenset({"test_backward", "test_kinks"})),
    Case("test_moved", "test_backward moved above the answer, the setup cell moved last", _test_moved),
    Case("test_duplicated", "test_forward duplicated (same grade_id twice)", _test_duplicated),
    Case("duplicate_cell_ids", "two cells with the same nbformat cell id (nbgrader #1941)", _duplicate_cell_ids,
         problem="duplicate cell ids"),
    Case("too_deep_to_parse", "a correct answer and a cell nested too deeply for Python's parser (MemoryError "
         "where the grader parses it): that cell fails, nothing else", _too_deep, problem="does not parse"),
    # Tricks against the old in-kernel checks: now they change nothing (the judge sees only data), so each
    # scores exactly what the same wrong answer scores without the trick; the scan flags them for review.
    Case("patch_allclose", "a wrong answer and torch.allclose patched to always agree",
         _appended("torch.allclose = lambda *a, **k: True", "wrong"), lost=WRONG_LOST, problem="review"),
    Case("patch_above_setup", "a wrong answer and a cell above the setup cell patching torch.allclose",
         _patch_above_setup, lost=WRONG_LOST, problem="review"),
    Case("patch_assert_close", "a wrong answer and torch.testing.assert_close patched",
         _appended("torch.testing.assert_close = lambda *a, **k: None", "wrong"), lost=WRONG_LOST, problem="review"),
    Case("patch_gradcheck", "a wrong answer, gradcheck patched to pass",
         _appended(_PATCH_GRADCHECK, "wrong"), lost=WRONG_LOST, problem="review"),
    Case("patch_builtins", "builtins.abs and builtins.sorted patched",
         _appended("import builtins\nbuiltins.abs = lambda x: 0\nbuiltins.sorted = lambda *a, **k: []",
                   "wrong"), lost=WRONG_LOST, problem="review"),  # the probe kit imports what torch needs first
    Case("patch_traceback", "IPython's traceback display silenced so failures look like passes (nbgrader #1324)",
         _appended(_PATCH_TRACEBACK, "wrong"), lost=WRONG_LOST, problem="review"),
    Case("erase_cells", "an input transformer that empties every later cell: no probe data, nothing scores",
         _appended("get_ipython().input_transformers_cleanup.append(lambda lines: [])", "wrong"),
         lost=ALL, problem="review"),
    Case("hidden_names", "a wrong answer that redefines the grader's hidden helpers and the probe function",
         _appended("_compare = lambda *a, **k: None\n_REF_HARDSWISH = hard_swish_custom\n"
                   "_probe = lambda *a, **k: None", "wrong"), lost=ALL),
]  # and tests/bad_submissions/attacks.py: one attack per kind a determined student writes
