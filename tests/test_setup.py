"""The README's promise: `make`, then `make test`, on a fresh machine. `make test` installs the Debian
packages its tests need where it can (root and apt-get), and anywhere else stops before any test with one
message naming the command to run (tools/system-deps.sh). `make` and `make lab` never need root."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from labs import ROOT

SCRIPT = ROOT / "tools" / "system-deps.sh"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


def deps(tmp_path: Path, *, chromium: Path, apt: str = "apt-get", user: list[str] = ()) -> subprocess.CompletedProcess:
    env = {**os.environ, "LAB_CHROMIUM": str(chromium), "LAB_DEPS_APT": apt}
    return subprocess.run([*user, "bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)


def fake_apt(tmp_path: Path, installs: Path | None) -> Path:
    """An apt-get that records its calls and, on `install`, puts an executable where chromium is expected."""
    log = tmp_path / "apt.log"
    apt = tmp_path / "fake-apt-get"
    make = f'touch "{installs}" && chmod +x "{installs}"' if installs else "true"
    apt.write_text(f'#!/bin/bash\necho "$*" >> "{log}"\nif [[ $1 == install ]]; then {make}; fi\n')
    apt.chmod(0o755)
    return apt


def test_everything_present_passes_quietly(tmp_path):
    present = tmp_path / "chromium"
    present.write_text("")
    present.chmod(0o755)
    proc = deps(tmp_path, chromium=present, apt=str(tmp_path / "no-apt"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == proc.stderr == ""


def test_not_root_stops_with_the_exact_command(tmp_path):
    tmp_path.chmod(0o755)
    proc = deps(tmp_path, chromium=tmp_path / "missing-chromium", user=NOBODY)
    assert proc.returncode == 1
    assert "sudo apt-get update && sudo apt-get install -y chromium" in proc.stderr
    assert "no test was run" in proc.stderr
    assert proc.stderr.count("Run:") == 1


def test_root_without_apt_get_stops(tmp_path):
    proc = deps(tmp_path, chromium=tmp_path / "missing-chromium", apt=str(tmp_path / "no-apt-get"))
    assert proc.returncode == 1
    assert "no apt-get" in proc.stderr and "apt-get install -y chromium" in proc.stderr


def test_root_with_apt_get_installs_what_is_missing(tmp_path):
    chromium = tmp_path / "chromium"
    proc = deps(tmp_path, chromium=chromium, apt=str(fake_apt(tmp_path, installs=chromium)))
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "apt.log").read_text().splitlines()
    assert calls == ["update -qq", "install -y -qq chromium"]


def test_an_install_that_leaves_a_package_missing_fails(tmp_path):
    proc = deps(tmp_path, chromium=tmp_path / "chromium", apt=str(fake_apt(tmp_path, installs=None)))
    assert proc.returncode == 1
    assert "still missing" in proc.stderr


def test_make_test_stops_before_any_test_when_it_cannot_install(tmp_path):
    env = {**os.environ, "LAB_CHROMIUM": str(tmp_path / "missing-chromium")}
    proc = subprocess.run([*NOBODY, "make", "--no-print-directory", "-C", str(ROOT), "test"], env=env,
                          capture_output=True, text=True, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "apt-get install -y chromium" in out
    assert "test session starts" not in out and "pytest" not in proc.stdout


@pytest.mark.parametrize("target", ["all", "lab", "build"])
def test_make_and_make_lab_need_no_system_package(target):
    plan = subprocess.run(["make", "--no-print-directory", "-n", "-C", str(ROOT), target], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "MAKEFLAGS": ""})
    assert plan.returncode == 0, plan.stderr
    assert "system-deps" not in plan.stdout and "apt-get" not in plan.stdout


def test_ci_only_calls_make_test():
    lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[-1] == "make test"
    assert not any("apt-get" in line or "pytest" in line for line in lines)


def test_make_labs_server_finds_the_venvs_tools_without_an_activated_venv():
    """`.venv/bin/python -m labs.course.lab` from a shell whose PATH lacks the venv: the server's
    formgrader runs `alembic` from PATH, and its assignment list never loaded (a 500)."""
    from labs.course import lab

    env = lab.environment({"PATH": "/usr/bin:/bin"})
    assert env["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)
    assert shutil.which("alembic", path=env["PATH"]) == str(Path(sys.executable).parent / "alembic")
