"""Build the student release and the solutions companion from `source/`.

    python -m labs.course.build            # release always (cheap); solutions only where stale
    python -m labs.course.build --all      # re-execute every solutions notebook

Both go through nbgrader with the repository's nbgrader_config.py:
`nbgrader generate_assignment` writes `release/`, `nbgrader generate_solution`
(preprocessors configured in nbgrader_config.py) writes `solutions/`.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

from .. import ASSIGNMENT, ROOT, VENV_BIN
from . import notebooks


class BuildError(RuntimeError):
    pass


def tool_env(**extra: str) -> dict[str, str]:
    """Environment for nbgrader: the venv first on PATH (nbgrader runs `alembic` from
    PATH), `labs` importable, solutions executed on the CPU so stored outputs are the
    CPU ones."""
    env = dict(os.environ)
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.setdefault("LAB_DEVICE", "cpu")
    env.setdefault("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    env.update(extra)
    return env


def nbgrader(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "labs.nbgrader_cli", *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env or tool_env(), text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        raise BuildError(f"`nbgrader {' '.join(args)}` failed in {cwd}:\n{proc.stdout[-6000:]}")
    return proc


def build_release(course: Path = ROOT) -> None:
    nbgrader("generate_assignment", ASSIGNMENT, "--force", cwd=course)


def stale_solutions(course: Path = ROOT) -> list[str]:
    """Notebook names whose solutions notebook is missing or stamped with another source hash."""
    stale = []
    for src in notebooks.lesson_paths(course / "source"):
        sol = course / "solutions" / src.parent.name / src.name
        stamp = notebooks.read(sol).metadata.get("lab", {}).get("source_sha256") if sol.exists() else None
        if stamp != notebooks.content_hash(src):
            stale.append(src.stem)
    return stale


def build_solutions(course: Path = ROOT, names: list[str] | None = None,
                    execute: bool = True) -> None:
    env = tool_env(LAB_SOLUTIONS_EXECUTE="1" if execute else "0")
    if names is None:
        nbgrader("generate_solution", ASSIGNMENT, "--force", cwd=course, env=env)
        return
    for name in names:
        nbgrader("generate_solution", ASSIGNMENT, "--force", "--notebook", name,
                 cwd=course, env=env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--all", action="store_true", help="re-execute every solutions notebook")
    args = parser.parse_args(argv)
    try:
        t0 = time.perf_counter()
        build_release()
        print(f"release/   built in {time.perf_counter() - t0:.1f} s")
        names = None if args.all else stale_solutions()
        if names == []:
            print("solutions/ up to date (source hashes match)")
            return 0
        t0 = time.perf_counter()
        build_solutions(names=names)
        done = ", ".join(names) if names else "all notebooks"
        print(f"solutions/ built and executed ({done}) in {time.perf_counter() - t0:.1f} s")
    except BuildError as err:
        print(f"BUILD FAILED: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
