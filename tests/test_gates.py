"""Gates 3, 4 and 5 on the committed trees, and tests that each gate can fail."""

import ast
import shutil
import subprocess

import nbformat
import pytest

from labs import ROOT
from labs.course import build, checks, notebooks, studytime
from labs.grading import scan


def test_source_notebooks_are_clean():
    assert checks.cleanliness_problems() == []


def test_no_solution_or_hidden_test_leaks():
    assert checks.leak_problems() == []


def test_release_and_solutions_are_fresh():
    problems = checks.freshness_problems()
    assert problems == [], "\n".join(problems)


def test_ruff_passes_on_code_and_notebooks():
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "ruff"), "check", "."], cwd=ROOT,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_nothing_a_student_reads_names_the_seed():
    """The buggy versions are named for their bug; "seed" only in its random-number sense."""
    problems = checks.student_text_problems()
    assert problems == [], "\n".join(problems[:20])


def test_solutions_are_executed_and_show_their_answers():
    for sol in notebooks.lesson_paths(ROOT / "solutions"):
        nb = notebooks.read(sol)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{sol.name}: a code cell was not executed"
        assert any("SOLUTION: the part you had to write" in c.source for c in code), sol.name
        assert not any(notebooks.HIDDEN_BEGIN in c.source for c in nb.cells), sol.name
        # The companion opens with its banner, right under the lesson's title.
        assert nb.cells[0].source.startswith("# Lab 2.1.3"), sol.name
        assert nb.cells[1].cell_type == "markdown" and "Solutions companion" in nb.cells[1].source, sol.name


def test_release_has_stubs_no_outputs_no_solution_only_cells():
    for rel in notebooks.lesson_paths(ROOT / "release"):
        nb = notebooks.read(rel)
        answers = [c for c in nb.cells if notebooks.is_answer(c)]
        assert answers and all("raise NotImplementedError()" in c.source for c in answers), rel.name
        assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), rel.name
        assert not any("solution-only" in c.metadata.get("tags", []) for c in nb.cells), rel.name


# ---- the gates themselves can fail -------------------------------------------------

@pytest.fixture
def repo_copy(tmp_path):
    """A copy of the course tree the gates can be pointed at and broken."""
    for name in ("source", "release", "solutions"):
        shutil.copytree(ROOT / name, tmp_path / name)
    shutil.copy(ROOT / "nbgrader_config.py", tmp_path)
    return tmp_path


def _first(root, tree):
    return notebooks.lesson_paths(root / tree)[0]


def test_leak_gate_catches_a_planted_solution_line(repo_copy):
    src = notebooks.read(_first(repo_copy, "source"))
    secret = next(ln for ln in notebooks.solution_lines(src) if "return" in ln)
    path = _first(repo_copy, "release")
    nb = notebooks.read(path)
    nb.cells[-1].source += "\n" + secret
    notebooks.write(nb, path)
    assert any("leaks" in p for p in checks.leak_problems(repo_copy))


def test_freshness_gate_catches_an_edited_release(repo_copy):
    path = _first(repo_copy, "release")
    nb = notebooks.read(path)
    nb.cells[0].source += "\nEdited by hand."
    notebooks.write(nb, path)
    problems = checks.freshness_problems(repo_copy)
    assert any("stale" in p and "make" in p for p in problems), problems


def test_freshness_gate_catches_a_source_edit_not_rebuilt(repo_copy):
    path = _first(repo_copy, "source")
    nb = notebooks.read(path)
    nb.cells[0].source += "\nA new sentence."
    notebooks.write(nb, path)
    problems = checks.freshness_problems(repo_copy)
    assert any("executed from another version" in p for p in problems), problems


def test_cleanliness_gate_catches_outputs_in_source(repo_copy):
    path = _first(repo_copy, "source")
    nb = notebooks.read(path)
    code = next(c for c in nb.cells if c.cell_type == "code")
    code.execution_count = 3
    notebooks.write(nb, path)
    assert checks.cleanliness_problems(repo_copy)


def test_a_solution_cell_that_raises_fails_the_build(tmp_path):
    """nbgrader's Execute ignores errors by default; the solutions build must not."""
    course = checks.course_copy(tmp_path / "course")
    path = _first(course, "source")
    nb = notebooks.read(path)
    answer = next(c for c in nb.cells if notebooks.is_answer(c))
    answer.source += "\nraise RuntimeError('a broken worked answer')"
    notebooks.write(nb, path)
    build.build_release(course)
    with pytest.raises(build.BuildError, match="a broken worked answer"):
        build.build_solutions(course, names=[path.stem])


def test_seed_gate_catches_a_planted_name(repo_copy):
    rel = _first(repo_copy, "release")
    before = checks.student_text_problems(repo_copy)
    nb = notebooks.read(rel)
    nb.cells[-1].source += "\n\nThe seed's version got this wrong (`SeedHardSwish`); seeded_randn(2, seed=3)."
    notebooks.write(nb, rel)
    planted = [p for p in checks.student_text_problems(repo_copy) if p not in before]
    assert len(planted) == 2 and "'seed'" in planted[0] and "'Seed'" in planted[1], planted


@pytest.mark.parametrize("source", notebooks.lesson_paths(ROOT / "source"), ids=lambda p: p.stem)
def test_each_lesson_states_the_time_a_student_needs(source):
    """The title cell's "about N minutes" is labs/course/studytime.py's estimate for the lesson as it is now."""
    estimate = studytime.estimate(source)
    assert studytime.stated_minutes(source) == estimate.minutes, (
        f"{source.name}: state 'about {estimate.minutes} minutes' in the title cell "
        f"(reading {estimate.reading:.0f}, code {estimate.code:.0f}, exercise {estimate.exercise:.0f} min)")


def test_study_time_grows_with_the_lesson(tmp_path):
    """The estimate is computed, not stated: more prose or a longer answer means more minutes."""
    src = notebooks.lesson_paths(ROOT / "source")[0]
    before = studytime.estimate(src)
    nb = notebooks.read(src)
    nb.cells.append(nbformat.v4.new_markdown_cell(" ".join(["word"] * 1200)))
    notebooks.write(nb, tmp_path / src.name)
    after = studytime.estimate(tmp_path / src.name)
    assert after.words == before.words + 1200 and after.minutes >= before.minutes + 10


def _string_messages(nb) -> list[str]:
    """assert_close calls whose msg= is a string: it replaces PyTorch's diff report (index, values)."""
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        tree = scan.parse(cell.source)[0]
        if tree is None:
            continue
        for node in ast.walk(tree):
            name = getattr(node, "func", None) and getattr(node.func, "attr", getattr(node.func, "id", ""))
            strings = [k for k in getattr(node, "keywords", [])
                       if k.arg == "msg" and isinstance(k.value, ast.Constant | ast.JoinedStr)]
            if isinstance(node, ast.Call) and name == "assert_close" and strings:
                found.append(f"cell {i} line {node.lineno}")
    return found


def test_self_checks_keep_pytorchs_diff_report():
    """Every assert_close a student runs passes a callable msg (keeps the index and the values)."""
    for path in [*notebooks.lesson_paths(ROOT / "release"), *notebooks.lesson_paths(ROOT / "solutions")]:
        assert _string_messages(notebooks.read(path)) == [], path.name


def test_diff_report_gate_catches_a_string_message():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        'torch.testing.assert_close(a, b, msg=lambda m: f"x\\n{m}")\ntorch.testing.assert_close(a, b, msg="wrong")')])
    assert _string_messages(nb) == ["cell 0 line 2"]


@pytest.mark.parametrize("lesson", [p.stem for p in notebooks.lesson_paths(ROOT / "source")])
def test_hidden_tests_record_raw_values(lesson):
    """Hidden regions only record what the student's code returned on the grader's inputs: no assert, no
    comparison or difference in what is recorded, no built-in computed in the kernel, no helper the student
    could rebind (labs.grading.scan.hidden_region_problems). The judge compares, outside the kernel."""
    assert scan.hidden_region_problems(notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{lesson}.ipynb")) == []


@pytest.mark.parametrize("planted, problem", [
    ("_probe('gap', lambda: _gap(vmap(f)(_x), vmap(_softmax_rows)(_x)))", "_gap, a helper the student can rebind"),
    ("_probe('diff', lambda: f(_x) - g(_x))", "subtracts two results"),
    ("_probe('same', lambda: f(_x) == g(_x))", "records a comparison"),
    ("_probe('ref', lambda: torch.nn.functional.softmax(_x, -1))", "the built-in the exercise re-implements"),
    ("assert f(_x).shape == _x.shape", "asserts in the kernel"),
    ("_probe('close', lambda: torch.allclose(f(_x), _x))", "compares in the kernel"),
])
def test_raw_values_gate_catches_a_planted_comparison(planted, problem):
    """The gate on lesson 4's real source (modern Swish) with one hidden line planted (the first is the probe this gate
    was written for: "yours minus softmax's" through a global helper)."""
    nb = notebooks.read(ROOT / "source" / "lab_2_1_3" / "04_modern_swish.ipynb")
    cell = next(c for c in nb.cells if c.cell_type == "code" and "### END HIDDEN TESTS" in c.source
                and notebooks.grade_id(c) != "setup")
    cell.source = cell.source.replace("### END HIDDEN TESTS", planted + "\n### END HIDDEN TESTS", 1)
    found = scan.hidden_region_problems(nb)
    assert len(found) == 1 and problem in found[0], found

