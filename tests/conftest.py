"""Shared fixtures. Notebooks under tests/ are test data, never nbval targets."""

import io
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from labs import ROOT, corpus, grading, notebooks, workflow

collect_ignore_glob = ["corpus/*", "data/*", "**/*.ipynb"]

# Kernels started by nbval and nbgrader inherit this: stored outputs are the CPU ones.
os.environ.setdefault("LAB_DEVICE", "cpu")
# The solution's probe data (labs/grader.py: reference) depends only on the source, the kit and
# the runner: every throwaway course of this session shares one copy instead of recomputing it.
os.environ.setdefault("LAB_REFERENCE_CACHE", tempfile.mkdtemp(prefix="lab-reference-"))

LESSONS = [p.stem for p in notebooks.lesson_paths(ROOT / "source")]


def submit_corpora(course: grading.Course) -> None:
    """The solution (source notebooks) and the untouched release as two students, and every
    corpus entry as a student who submitted that one notebook."""
    names = course.notebook_names()
    course.submit("solution", {n: course.source(n) for n in names})
    course.submit("untouched", {n: course.release(n) for n in names})
    for entry in corpus.entries():
        nb = entry.apply(course.release(entry.notebook), course.source(entry.notebook))
        course.submit(entry.student, {entry.notebook: nb})


def grade_corpora(root: Path, **options) -> dict:
    """The corpora through the instructor's workflow (`labs.workflow.autograde`: fan-out to
    sandboxes, then the real `nbgrader autograde`); the gradebook's scores and the results."""
    course = grading.Course.create(root)
    submit_corpora(course)
    out = io.StringIO()
    res = workflow.autograde(course.root, out=out, **options)
    failed = [r.student for r in res.values() if r.failed]
    assert not failed, f"could not grade {failed}:\n{out.getvalue()[-3000:]}"
    return {"scores": course.scores(), "course": course, "results": res, "summary": out.getvalue()}


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict:
    """One batch through the instructor's workflow with two parallel sandboxes: the solution, the
    untouched release and every corpus entry. Returns the gradebook's scores and the course."""
    out = grade_corpora(tmp_path_factory.mktemp("course"), jobs=2)
    course = out["course"]
    yield out
    if os.environ.get("LAB_KEEP_COURSE"):
        shutil.copytree(course.root, Path(os.environ["LAB_KEEP_COURSE"]), dirs_exist_ok=True)
