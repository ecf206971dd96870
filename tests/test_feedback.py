"""Feedback pages open offline and call no third party (issue 18): nbgrader's feedback template loads MathJax
from a public CDN; ours loads no script (labs/grading/templates/feedback/mathjax.html.j2 is found first) and
the math is MathML written into the page by OfflineMath (labs/grading/nbgrader_steps.py), rebuilt from an
allowlist, because the converter's own output is not safe to put in a page. The whole page, rendered by a
real `nbgrader generate_feedback`, is checked in tests/test_bad_submissions.py."""

from __future__ import annotations

import re
import subprocess
import time

import nbformat
import pytest
from latex2mathml.converter import convert

from labs import ROOT
from labs.course import notebooks
from labs.grading.nbgrader_steps import _MATH, OfflineMath, SanitizeStudentHTML

ATTACKS = {
    "an <img> through \\text": r"$\text{<img src=x onerror=alert(1)>}$",
    "a javascript: link through \\href": r"$\href{javascript:alert(1)}{x}$",
    "a third-party call through \\style": r"$\style{background:url(http://evil.example/x)}{x}$",
    "a class through \\class": r"$\class{a b}{x}$",
}


@pytest.mark.parametrize("tex", list(ATTACKS.values()), ids=list(ATTACKS))
def test_the_converters_own_output_is_unsafe_and_ours_is_inert(tex):
    raw = convert(tex[1:-1])
    assert re.search(r"<img|href=|style=|class=", raw), "the control: latex2mathml passes it through"
    page = OfflineMath().convert(tex)
    assert page == tex, page   # not converted: never more markup than the (already sanitized) text held


@pytest.mark.parametrize("tex", list(ATTACKS.values()), ids=list(ATTACKS))
def test_a_students_markdown_math_is_inert_after_both_steps(tex):
    """In nbgrader_config.py's order: SanitizeStudentHTML, then OfflineMath, on a cell the student wrote."""
    cell = nbformat.v4.new_markdown_cell(f"My answer: {tex} and $x^2$")
    cell, _ = SanitizeStudentHTML().preprocess_cell(cell, {}, 0)
    cell, _ = OfflineMath().preprocess_cell(cell, {}, 0)
    assert not re.search(r"<(?!/?m[a-z]*[ >])[a-z]+[^>]*>", cell.source), cell.source   # no tag but MathML's
    assert not re.search(r"<m[a-z]*[^>]*\b(?:href|style|class|src|on\w+)=", cell.source), cell.source
    assert cell.source.count("<math ") == 1, cell.source


def test_every_lessons_math_becomes_mathml():
    converter, converted = OfflineMath(), 0
    for path in sorted((ROOT / "source").glob("*/*.ipynb")):
        for cell in notebooks.read(path).cells:
            if cell.cell_type == "markdown":
                out = converter.convert(cell.source)
                assert not _MATH.search(out), f"{path.name}: TeX left as text: {_MATH.search(out).group(0)[:80]}"
                converted += out.count("<math ")
    assert converted >= 100, converted


@pytest.mark.parametrize("text", [
    "`$x$` in code", "```\n$a = 1$\n```", r"it costs \$5 and \$6", "a $5 bill and $6", "$$", "x $ y"])
def test_dollars_that_are_not_math_are_left_alone(text):
    assert OfflineMath().convert(text) == text


def test_entities_in_tex_are_the_characters_the_reader_sees():
    out = OfflineMath().convert("| $x &lt; -3$ | $x \\ge 3$ |")
    assert out.count("<math ") == 2 and "<mo>&lt;</mo>" in out and "&amp;" not in out, out


def test_math_becomes_mathml_inline_and_displayed():
    out = OfflineMath().convert(r"slope $\tfrac{1}{6}$ and $$x^2$$")
    assert out.count("<math ") == 2 and 'display="inline"' in out and 'display="block"' in out
    assert "<mfrac>" in out and "<msup>" in out


def test_long_student_tex_is_left_as_text_in_bounded_time():
    text = "$" + "x^{" * 3000 + "}" * 3000 + "$"
    started = time.perf_counter()
    out = OfflineMath().convert(text)
    assert time.perf_counter() - started < 5
    assert "<math" not in out


def test_the_feedback_template_is_not_ignored_by_git():
    """It was once: .gitignore's `feedback/` (nbgrader's output folder) also matched this template's folder, so a
    fresh clone had no template and its feedback pages loaded MathJax from a CDN."""
    folder = ROOT / "labs" / "grading" / "templates" / "feedback"
    files = [str(p.relative_to(ROOT)) for p in folder.iterdir()]
    proc = subprocess.run(["git", "check-ignore", *files], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 1 and proc.stdout == "", f"ignored by git: {proc.stdout}"


def test_the_feedback_template_is_ours_first():
    config = (ROOT / "nbgrader_config.py").read_text()
    assert '"labs.grading.nbgrader_steps.OfflineMath"' in config
    macro = (ROOT / "labs" / "grading" / "templates" / "feedback" / "mathjax.html.j2").read_text()
    assert "macro mathjax" in macro and "<script" not in macro and "http" not in macro
