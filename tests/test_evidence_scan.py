"""The review scan as an allowlist (labs/grading/scan.py): names outside a lesson's `allow`, rebinding what the
grader's code uses, and notebooks over the scan's bounds are flags; the scan is linear; the hidden-test
gate finds a comparison made in the kernel."""

from __future__ import annotations

import time

import nbformat
import pytest

from labs import ROOT
from labs.course import corpus, notebooks
from labs.grading import scan

SOURCE = ROOT / "source" / "lab_2_1_3"
ALLOW = ["torch.*", "F.*", "nn.*", "Function", "math.*", "numpy.*", "functools.*", "os.environ.get"]
ANSWER = {"grade_id": "answer", "solution": True, "locked": False}


def nb_of(*cells):
    nb = nbformat.v4.new_notebook()
    for source, meta in cells:
        cell = nbformat.v4.new_code_cell(source)
        if meta:
            cell.metadata["nbgrader"] = meta
        nb.cells.append(cell)
    return nb


def whats(found):
    return [(f.category, f.what) for f in found]


@pytest.mark.parametrize("code, what", [
    ("import operator\nf = operator.attrgetter('nn.functional.hardswish')(torch)", "operator.attrgetter"),
    ("import code\ncode.InteractiveInterpreter().runsource(s)", "code.InteractiveInterpreter"),
    ("import runpy\nrunpy.run_path(p)", "runpy.run_path"),
    ("import queue\nq = queue.Queue()", "queue.Queue"),
])
def test_a_name_outside_the_allowlist_is_a_flag(code, what):
    found = scan.scan_source(code, "answer", (), allow=ALLOW)
    assert any(f.kind == "review" and what in f.what for f in found), found


@pytest.mark.parametrize("code, what", [
    # Attack tried at the end of issue 16's pass: torch's interop thread pool runs the built-in where no
    # op log or profile hook follows (not a Python thread), so it is a flag, never silent.
    ("def hard_swish_custom(x):\n    return torch.jit.wait(torch.jit._fork(F.hardswish, x))", "torch.jit._fork"),
    ("def hard_swish_custom(x):\n    return torch.jit.wait(torch.jit.fork(getattr(F, 'hard' + 'swish'), x))",
     "getattr"),
])
def test_a_builtin_sent_to_torchs_interop_threads_is_flagged(code, what):
    found = scan.scan_source(code, "answer", ("hardswish*",), allow=ALLOW)
    assert any(f.kind == "review" and what in f.what for f in found), whats(found)


def test_allow_patterns_resolve_setup_names():
    assert scan.scan_source("y = F.relu6(x) + torch.sigmoid(x) * math.pi", "answer", (), allow=ALLOW) == []
    assert scan.allowed(["torch", "nn", "functional", "relu"], scan._allowed(["F.*"]))
    assert not scan.allowed(["torchvision", "ops"], scan._allowed(["torch.*"]))


@pytest.mark.parametrize("code", [
    "_probe = print",
    "def f():\n    global _probe\n    _probe = lambda *a, **k: None",
    "from math import sqrt as _probe",
    "_grid = lambda dtype: torch.zeros(3)",          # a name the source's hidden setup binds
])
def test_rebinding_what_the_graders_code_uses_is_a_flag(code):
    source = notebooks.read(SOURCE / "01_hardswish.ipynb")
    found = scan.scan_notebook(nb_of((code, None)), (), source=source)
    assert any(f.category in ("patching the grader", "patching modules") and "_probe" in f.what
               or f.category == "patching the grader" for f in found), found


def test_metadata_the_student_wrote_hides_nothing():
    source = notebooks.read(SOURCE / "01_hardswish.ipynb")
    sneaky = {"grade_id": "test_forward", "grade": True, "locked": True, "points": 2}
    found = scan.scan_notebook(nb_of(("import subprocess", sneaky)), (), source=source)
    assert whats(found) == [("processes", "imports subprocess")]


def test_the_lessons_own_cells_are_not_scanned():
    source = notebooks.read(SOURCE / "01_hardswish.ipynb")
    assert scan.scan_notebook(source, ["hardswish*"], source=source, allow=["torch.*"]) == []


def test_over_the_bounds_is_a_flag_in_bounded_time():
    big = nb_of(("y = 1\n" * 4_000_000, None))
    many = nb_of(*[(f"a{i} = torch.zeros({i})", None) for i in range(scan.MAX_CELLS + 10)])
    started = time.perf_counter()
    for nb in (big, many):
        found = scan.scan_notebook(nb, ["hardswish*"], source=nb_of())
        assert [f.category for f in found][:1] == ["over the scan's bounds"], found[:3]
    assert time.perf_counter() - started < 30


def test_the_scan_is_linear_in_the_number_of_cells():
    def seconds(n):
        nb = nb_of(*[(f"a{i} = torch.zeros({i})\nb{i} = a{i} + 1", None) for i in range(n)])
        started = time.perf_counter()
        scan.scan_notebook(nb, ["hardswish*"], source=nb_of(), allow=ALLOW)
        return time.perf_counter() - started
    small, large = seconds(250), seconds(1000)
    assert large < 4 * small * 2 + 0.5, (small, large)  # quadratic would be 16x


@pytest.mark.parametrize("entry", [e for e in corpus.entries() if e.expect_full and not e.expect_review],
                         ids=lambda e: e.student)
def test_honest_corpus_answers_raise_no_flag_in_their_notebook(entry):
    source = notebooks.read(SOURCE / f"{entry.notebook}.ipynb")
    release = notebooks.read(ROOT / "release" / "lab_2_1_3" / f"{entry.notebook}.ipynb")
    decl = source.metadata.get("lab", {}).get("exercise", {})
    found = scan.scan_notebook(entry.apply(release, source), decl.get("reimplements", ()), source=source,
                               allow=decl.get("allow", ()))
    assert found == []


def test_the_hidden_test_gate_finds_a_comparison_in_the_kernel():
    source = nb_of(("### BEGIN HIDDEN TESTS\ndef _builder(n):\n    return torch.zeros(n)\n### END HIDDEN TESTS",
                    {"grade_id": "setup"}),
                   ("### BEGIN HIDDEN TESTS\n_x = _builder(3)\n_probe('forward', lambda: mine(_x), atol=1e-6)\n"
                    "### END HIDDEN TESTS", {"grade_id": "test_ok", "grade": True}),
                   ("### BEGIN HIDDEN TESTS\n_probe('gap', lambda: mine(_x) - torch.sigmoid(_x))\n"
                    "_probe('same', lambda: torch.allclose(mine(_x), _x))\nassert mine(_x).shape == _x.shape\n"
                    "_probe('helper', lambda: _gap(mine(_x), _x))\n### END HIDDEN TESTS",
                    {"grade_id": "test_bad", "grade": True}))
    problems = scan.hidden_region_problems(source)
    assert all(p.startswith("test_bad") for p in problems), problems
    text = " ".join(problems)
    for what in ("subtracts two results", "torch.allclose", "asserts", "compares", "_gap, a helper"):
        assert what in text, problems
