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
    ("judge", "from labs import workflow", "Grading, top to bottom"),
    ("probekit", "import labs.notebooks", "Kernel-side files import nothing"),
    ("build", "from labs import grader", "Authoring the course does not import grading"),
])
def test_a_planted_import_breaks_a_contract(tmp_path, module, planted, contract):
    shutil.copytree(ROOT / "labs", tmp_path / "labs", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    target = tmp_path / "labs" / f"{module}.py"
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    proc = lint(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert contract in proc.stdout and "BROKEN" in proc.stdout
