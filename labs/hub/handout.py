"""`make handout`: the release as one zip for an LMS, for students who run the lab on their own machine.

    python -m labs.hub handout [--out artifacts/handout/lab_2_1_3-handout.zip]

The zip holds release/<assignment>/*.ipynb (the student notebooks, nothing else of the course),
the pinned environment files (requirements.txt, environment.yml) and a README with the two
commands that run it. No source, no solutions, no hidden tests: the notebooks are the release's
bytes, which the gates keep free of both. `make collect` takes the LMS download back.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from pathlib import Path

from .. import ASSIGNMENT, ROOT

FILES = ("requirements.txt", "environment.yml")
FIXED = (2026, 1, 1, 0, 0, 0)   # every entry's time: the same release gives the same zip

README = """# Lab 2.1.3: Autograd Deep Dive

Three notebooks in `{a}/`, in order. You need Python 3.11; then, in this folder:

```bash
python3 -m venv .venv && .venv/bin/pip install -r requirements.txt
.venv/bin/jupyter lab {a}/01_hardswish.ipynb
```

(With conda instead: `conda env create -f environment.yml && conda activate autograd-lab`, then
`jupyter lab {a}/01_hardswish.ipynb`.) Every version is pinned: you run what the grader runs.

Run the cells in order, write your answer where it says `YOUR CODE HERE`, and run the
self-check after it. Press **Validate** in the notebook toolbar before you hand in: it runs the
notebook as the grader does and shows which visible test fails. Hidden tests run only when your
work is graded. Hand in the three `.ipynb` files of `{a}/` through the LMS, with their names
unchanged.
"""


def entries(root: Path = ROOT, assignment: str = ASSIGNMENT) -> dict[str, bytes]:
    """What the hand-out holds: archive name -> bytes."""
    notebooks = sorted((root / "release" / assignment).glob("*.ipynb"))
    if not notebooks:
        raise FileNotFoundError(f"no notebook in release/{assignment}/: run `make` first")
    out = {f"{assignment}/{p.name}": p.read_bytes() for p in notebooks}
    out.update({name: (root / name).read_bytes() for name in FILES})
    out["README.md"] = README.format(a=assignment).encode()
    return out


def build(dest: Path, root: Path = ROOT, assignment: str = ASSIGNMENT) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries(root, assignment).items():
            info = zipfile.ZipInfo(f"{assignment}-handout/{name}", date_time=FIXED)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    tmp.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "artifacts" / "handout" / f"{ASSIGNMENT}-handout.zip")
    args = parser.parse_args(argv)
    path = build(args.out)
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
    print(f"wrote {path} ({path.stat().st_size >> 10} KiB): " + ", ".join(n.split("/", 1)[1] for n in names))
    return 0


if __name__ == "__main__":
    sys.exit(main())
