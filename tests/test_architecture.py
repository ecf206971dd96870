"""The package's layers are checked, not hoped for: import-linter's contracts (pyproject.toml) hold, and a
planted import that breaks one is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from labs import ROOT, VENV_BIN

LINT = str(VENV_BIN / "lint-imports")


def lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_contracts_hold():
    proc = lint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize("module, planted, contract", [
    ("grading/judge", "from labs.grading import autograde", "Grading, top to bottom"),
    ("grading/runs", "from labs.grading import fanout", "Grading, top to bottom"),  # the old fanout <-> grader cycle
    ("grading/sandbox", "from labs.grading import execute", "Grading, top to bottom"),
    ("grading/probekit", "import labs.course.notebooks", "Kernel-side files import nothing"),
    ("grading/sandbox_runner", "from labs.grading import sandbox", "Kernel-side files import nothing"),
    ("course/build", "from labs.grading import nbgrader_steps", "Authoring the course does not import grading"),
    ("course/notebooks", "from labs.course import build", "Authoring, top to bottom"),
])
def test_a_planted_import_breaks_a_contract(tmp_path, module, planted, contract):
    shutil.copytree(ROOT / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "labs" / f"{module}.py"
    assert target.is_file(), target
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    proc = lint(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert contract in proc.stdout and "BROKEN" in proc.stdout
