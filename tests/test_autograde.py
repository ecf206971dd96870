"""Gates 1, 2, 7 and 8: the real `nbgrader autograde` on a throwaway course.

1. every graded test cell passes on the source notebook (the solution);
2. every graded test cell fails on the untouched release;
7. the solution gets full marks, the untouched release zero;
8. every wrong corpus submission loses exactly the tests it should, every correct one
   gets full marks, and each lesson has enough of both.
"""

import pytest

from labs.course import corpus, notebooks

from .conftest import LESSONS, ROOT

# (wrong submissions, correct submissions) each lesson's corpus must hold at least: six right answers per exercise
# in different styles (HardSwish; CheckpointFunction; hooks_checkpoint; ModernSwish and the vmap rule), counting
# one per exercise that compares with the built-in in a scratch line
CORPUS_MINIMUM = {"01_hardswish": (11, 8), "02_checkpointing": (8, 6), "03_saved_tensor_hooks": (9, 6),
                  "04_modern_swish": (14, 14)}


def graded_tests(lesson: str) -> dict[str, float]:
    return notebooks.graded_points(notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{lesson}.ipynb"))


@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_has_graded_tests(lesson):
    tests = graded_tests(lesson)
    assert len(tests) >= 3, f"{lesson}: only {len(tests)} graded test cells"
    assert all(p > 0 for p in tests.values())


@pytest.mark.parametrize("lesson", LESSONS)
def test_source_passes_every_graded_test(graded, lesson):
    got = graded["scores"]["solution"][lesson]
    failing = {gid: got.get(gid) for gid, pts in graded_tests(lesson).items()
               if got.get(gid) != (pts, pts)}
    assert not failing, f"{lesson}: the solution loses points in {failing}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_untouched_release_fails_every_graded_test(graded, lesson):
    got = graded["scores"]["untouched"][lesson]
    passing = {gid: got.get(gid) for gid in graded_tests(lesson) if got.get(gid, (None,))[0] != 0}
    assert not passing, f"{lesson}: the untouched release scores in {passing}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_autograde_totals(graded, lesson):
    total = sum(graded_tests(lesson).values())
    sol = graded["scores"]["solution"][lesson]
    untouched = graded["scores"]["untouched"][lesson]
    assert sum(s for s, _ in sol.values()) == total
    assert sum(m for _, m in sol.values()) == total
    assert sum(s for s, _ in untouched.values()) == 0


@pytest.mark.parametrize("lesson", LESSONS)
def test_corpus_is_big_enough(lesson):
    entries = corpus.entries(lesson)
    wrong = sum(not e.expect_full for e in entries)
    right = sum(e.expect_full for e in entries)
    need_wrong, need_right = CORPUS_MINIMUM[lesson]
    assert wrong >= need_wrong and right >= need_right, (
        f"{lesson}: corpus has {wrong} wrong and {right} correct submissions, "
        f"needs at least {need_wrong} and {need_right}")


@pytest.mark.parametrize("entry", corpus.entries(), ids=lambda e: e.student)
def test_corpus_verdict(graded, entry):
    tests = graded_tests(entry.notebook)
    got = graded["scores"][entry.student][entry.notebook]
    lost = {gid for gid, pts in tests.items() if got.get(gid, (0,))[0] != pts}
    assert set(entry.expect_fails) <= set(tests), f"unknown test ids in {entry.name}"
    if entry.expect_full:
        assert not lost, f"correct submission ({entry.why}) lost points in {sorted(lost)}"
    else:
        assert lost == set(entry.expect_fails), (
            f"{entry.why}: expected to lose {sorted(entry.expect_fails)}, lost {sorted(lost)}")
        assert all(got[gid][0] == 0 for gid in lost)


@pytest.mark.parametrize("entry", [e for e in corpus.entries() if e.expect_full], ids=lambda e: e.student)
def test_honest_answers_raise_no_flag(graded, entry):
    """Review flags are for tricks, not for honest work: every answer that expects full marks gets no flag from
    the scan or the probe kit and no finding (an entry marked `# review: flagged` is a trick the grader must
    flag), and the solution gets none either."""
    result = graded["results"][entry.student]
    if entry.expect_review:
        assert result.review, f"{entry.name}: a trick the grader should flag for review was not flagged"
    else:
        assert result.review == [] and result.findings == [], (
            f"{entry.name}: an honest answer was flagged: {result.review + result.findings}")


def test_the_solution_raises_no_flag(graded):
    result = graded["results"]["solution"]
    assert result.review == [] and result.findings == [], result.review + result.findings
