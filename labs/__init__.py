"""Course tooling for Lab 2.1.3: Autograd Deep Dive, in two wings and a deployment.

    labs/course/   authoring: source notebooks -> release/ and solutions/, the gates, the corpus,
                   `make lab` and its Validate, `make bench` (labs/course/__init__.py has its map)
    labs/grading/  grading with trust: collect -> intake -> scan -> sandboxed execution -> store of
                   runs -> judge against the reference -> nbgrader -> export, feedback, report
                   (labs/grading/__init__.py has its map)
    labs/hub/      the course on a JupyterHub with nbgrader's exchange (`make hub`)
    labs/nbgrader_cli.py  `python -m nbgrader`, faster to start

The constants below (paths, the assignment) are shared by all. Student notebooks never import
this package: a release notebook needs only torch, matplotlib and the standard library.
"""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENT = "lab_2_1_3"
SOURCE = ROOT / "source"
RELEASE = ROOT / "release"
SOLUTIONS = ROOT / "solutions"
VENV_BIN = ROOT / ".venv" / "bin"


def db_url(course: Path) -> str:
    """The gradebook: `LAB_DB_URL` (e.g. postgresql+psycopg2://grader@/course?host=/run/postgresql,
    shared by several graders and the formgrader), else the course's own SQLite file. It is read
    by the grading process only; sandboxes start with an empty environment."""
    return os.environ.get("LAB_DB_URL") or f"sqlite:///{Path(course) / 'gradebook.db'}"


def skip_slow_imports() -> None:
    """Make the optional `rfc3987_syntax` unimportable in this process (see labs/nbgrader_cli.py):
    reading a notebook then costs about 0.3 s of imports instead of 2 s. Only effective before
    nbformat is first imported."""
    sys.modules.setdefault("rfc3987_syntax", None)


skip_slow_imports()
