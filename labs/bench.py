"""`make bench`: the speed and memory targets of the lessons, measured side by side.

Implementations come from the source notebooks themselves (the setup cell and the
answer cells are executed into a namespace), so the benchmark measures exactly the
published solution. Results print as a table; the exit status is 1 when a target
is missed. Ratios, not absolute times: machines are shared and noisy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from . import ASSIGNMENT, SOURCE, notebooks


@dataclass
class Row:
    lesson: str
    measure: str
    value: float
    target: str
    ok: bool | None  # None: informational, no target


def lesson_namespace(name: str, extra_cells: tuple[str, ...] = ()) -> dict:
    """Execute a source notebook's setup and answer cells (plus cells whose grade_id is
    in `extra_cells`) and return the resulting namespace, hidden-test regions left out."""
    os.environ.setdefault("LAB_DEVICE", "cpu")
    nb = notebooks.read(SOURCE / ASSIGNMENT / f"{name}.ipynb")
    ns: dict = {"get_ipython": lambda: _NoIPython()}
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        if cell.cell_type == "code" and (gid == "setup" or notebooks.is_answer(cell) or gid in extra_cells):
            regions = ((notebooks.HIDDEN_BEGIN, notebooks.HIDDEN_END),)
            code = "\n".join(notebooks.outside_lines(cell.source, regions))
            exec(compile(code, f"{name}:{gid}", "exec"), ns)
    return ns


class _NoIPython:
    def __getattr__(self, _):
        return self

    def __call__(self, *a, **k):
        return None


def hardswish() -> list[Row]:
    import torch
    import torch.nn.functional as F
    from torch.utils import benchmark

    ns = lesson_namespace("01_hardswish")
    n = 2_000_000
    x = torch.randn(n, generator=torch.Generator().manual_seed(5)) * 4
    up = torch.randn(n, generator=torch.Generator().manual_seed(6))

    def timed(fn: Callable) -> float:
        leaf = x.clone().requires_grad_(True)

        def step():
            leaf.grad = None
            fn(leaf).backward(up)

        return benchmark.Timer("step()", globals={"step": step}).blocked_autorange(min_run_time=0.5).median

    best: dict[str, float] = {}
    for _ in range(3):  # interleaved rounds, best of each
        for name, fn in (("builtin", F.hardswish), ("custom", ns["hard_swish_custom"])):
            best[name] = min(best.get(name, float("inf")), timed(fn))
    ratio = best["custom"] / best["builtin"]
    return [
        Row("hardswish", f"F.hardswish fwd+bwd, {n:,} CPU elements (ms)", best["builtin"] * 1e3, "", None),
        Row("hardswish", "hard_swish_custom fwd+bwd (ms)", best["custom"] * 1e3, "", None),
        Row("hardswish", "custom / built-in time ratio", ratio, "<= 3.0", ratio <= 3.0),
    ]


BENCHES: list[Callable[[], list[Row]]] = [hardswish]


def main() -> int:
    rows = [row for bench in BENCHES for row in bench()]
    print(f"{'lesson':12s} {'measure':58s} {'value':>10s} {'target':>8s}  verdict")
    for r in rows:
        verdict = "" if r.ok is None else ("ok" if r.ok else "MISSED")
        print(f"{r.lesson:12s} {r.measure:58s} {r.value:10.3f} {r.target:>8s}  {verdict}")
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
