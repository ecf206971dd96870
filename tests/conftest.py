"""Shared fixtures. Notebooks under tests/ are test data, never nbval targets."""

import os
import shutil
from pathlib import Path

import pytest

from labs import ROOT, corpus, grading, notebooks

collect_ignore_glob = ["corpus/*", "data/*", "**/*.ipynb"]

# Kernels started by nbval and nbgrader inherit this: stored outputs are the CPU ones.
os.environ.setdefault("LAB_DEVICE", "cpu")

LESSONS = [p.stem for p in notebooks.lesson_paths(ROOT / "source")]


@pytest.fixture(scope="session")
def graded(tmp_path_factory) -> dict:
    """One batch through the real `nbgrader autograde`: the solution (source notebooks)
    and the untouched release as two students, and every corpus entry as a student
    who submitted that one notebook. Returns the gradebook's scores and the course."""
    course = grading.Course.create(tmp_path_factory.mktemp("course"))
    names = course.notebook_names()
    course.submit("solution", {n: course.source(n) for n in names})
    course.submit("untouched", {n: course.release(n) for n in names})
    for entry in corpus.entries():
        course.submit(entry.student, {entry.notebook: entry.apply(course.release(entry.notebook))})
    proc = course.autograde()
    assert proc.returncode == 0, proc.stdout[-5000:]
    yield {"scores": course.scores(), "course": course}
    if os.environ.get("LAB_KEEP_COURSE"):
        shutil.copytree(course.root, Path(os.environ["LAB_KEEP_COURSE"]), dirs_exist_ok=True)
