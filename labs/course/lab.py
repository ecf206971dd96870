"""`make lab`: JupyterLab on the student release, the way a student works in it.

The release is copied once into `student/<assignment>/` (ignored by git, never
overwritten: it holds the student's answers), so the committed release/ stays
equal to its regeneration. JupyterLab serves the course root (the repository):
nbgrader's Validate button and the instructor's formgrader read
nbgrader_config.py from the directory the server runs in, and the formgrader
needs the course inside the server's root. Validate is nbgrader's, followed by the
grader's review scan (labs/course/validate.py, which serves Validate in place of nbgrader's own
server extension): it lists what grading will flag for review. The browser tests
(tests/test_browser.py, tests/test_validate.py) start the server with the same `command()`
on a throwaway course copy.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from .. import ASSIGNMENT, ROOT, VENV_BIN

WORK = "student"
FIRST_LESSON = "01_hardswish.ipynb"
# Validate: nbgrader's, then the grader's review scan (labs/course/validate.py serves its URL instead).
EXTENSIONS = {"labs.course.validate": True, "nbgrader.server_extensions.validate_assignment": False}


def prepare(course: Path = ROOT, assignment: str = ASSIGNMENT) -> Path:
    """The student's working copy of the release; created when missing, never overwritten."""
    work = course / WORK
    work.mkdir(exist_ok=True)
    (work / ".gitignore").write_text("# the student's working copy of the release (make lab)\n*\n")
    dest = work / assignment
    if not dest.exists():
        shutil.copytree(course / "release" / assignment, dest)
    return dest


def notebook_url_path(assignment: str = ASSIGNMENT, notebook: str = FIRST_LESSON) -> str:
    """Where JupyterLab opens a lesson of the working copy (relative to the course root)."""
    return f"{WORK}/{assignment}/{notebook}"


def command(course: Path = ROOT, *extra: str, notebook: str = FIRST_LESSON) -> list[str]:
    """`jupyter lab` serving `course` on localhost, opened on a lesson of the working copy.
    Run it with cwd=course (nbgrader finds nbgrader_config.py there)."""
    return [
        str(VENV_BIN / "jupyter"), "lab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={course}",
        f"--LabApp.default_url=/lab/tree/{notebook_url_path(notebook=notebook)}",
        *(f"--ServerApp.jpserver_extensions={name}={on}" for name, on in EXTENSIONS.items()),
        # Containers and CI run as root; Jupyter refuses that without being told.
        *(["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []),
        *extra,
    ]


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: `base` (default: this process's) with the repository on PYTHONPATH, so
    the server imports our Validate extension (labs.course.validate) wherever it is started from, and
    this Python's scripts first on PATH (the formgrader runs `alembic` from PATH: without it, started
    as `.venv/bin/python -m labs.course.lab`, its assignment list never loaded)."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["PATH"] = os.pathsep.join(p for p in (str(Path(sys.executable).parent), env.get("PATH")) if p)
    return env


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    dest = prepare()
    print(f"Your working copy of the lab: {dest.relative_to(ROOT)}/ (release/ stays as released).")
    print("In a notebook: run the cells, write your answer, then press Validate in the notebook toolbar.")
    os.chdir(ROOT)
    cmd = command(ROOT, *args)
    os.execve(cmd[0], cmd, environment())
    return 1  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
