"""Grading on a throwaway course: submit notebooks as students, run the real
`nbgrader autograde`, read the scores back from the gradebook."""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook

from .. import ASSIGNMENT, db_url
from ..course import build, checks, notebooks


@dataclass
class Course:
    """A course directory of its own (source, release, gradebook) for one grading run."""

    root: Path
    assignment: str = ASSIGNMENT
    log: str = field(default="", repr=False)

    @classmethod
    def create(cls, root: Path) -> Course:
        checks.course_copy(root)
        build.build_release(root)
        return cls(root)

    @property
    def db_url(self) -> str:
        return db_url(self.root)

    def release(self, name: str) -> nbformat.NotebookNode:
        return notebooks.read(self.root / "release" / self.assignment / f"{name}.ipynb")

    def source(self, name: str) -> nbformat.NotebookNode:
        return notebooks.read(self.root / "source" / self.assignment / f"{name}.ipynb")

    def notebook_names(self) -> list[str]:
        return [p.stem for p in notebooks.lesson_paths(self.root / "source")]

    def submit(self, student: str, nbs: dict[str, nbformat.NotebookNode],
               timestamp: dt.datetime | None = None) -> Path:
        folder = self.root / "submitted" / student / self.assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, nb in nbs.items():
            notebooks.write(nb, folder / f"{name}.ipynb")
        stamp = timestamp or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        (folder / "timestamp.txt").write_text(stamp.strftime("%Y-%m-%d %H:%M:%S.%f %Z"))
        return folder

    def autograde(self, *extra: str, student: str | None = None) -> subprocess.CompletedProcess:
        args = ["autograde", self.assignment, "--force", *extra]
        if student:
            args += ["--student", student]
        proc = build.nbgrader(*args, cwd=self.root, check=False)
        self.log += proc.stdout
        return proc

    def scores(self) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
        """{student: {notebook: {grade_id: (score, max_score)}}} for every graded cell."""
        out: dict = {}
        with Gradebook(self.db_url) as gb:
            for sub in gb.assignment_submissions(self.assignment):
                per_nb = out.setdefault(sub.student.id, {})
                for nb in sub.notebooks:
                    per_nb[nb.name] = {g.name: (g.score, g.max_score) for g in nb.grades}
        return out
