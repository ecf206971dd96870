"""`make bench`: the speed and memory targets of the lessons, measured side by side.

Implementations come from the source notebooks themselves (the setup cell and the
answer cells are executed into a namespace), so the benchmark measures exactly the
published solution. Results print as a table; the exit status is 1 when a target
is missed. Ratios, not absolute times: machines are shared and noisy.
"""

from __future__ import annotations

import ast
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass

from .. import ASSIGNMENT, SOURCE
from . import notebooks


@dataclass
class Row:
    lesson: str
    measure: str
    value: float
    target: str
    ok: bool | None  # None: informational, no target


def lesson_namespace(name: str, extra_cells: tuple[str, ...] = ()) -> dict:
    """Execute a source notebook's setup and answer cells (plus cells whose grade_id is
    in `extra_cells`, and cells tagged `bench`: a tuned version kept in the solutions) and
    return the resulting namespace, hidden-test regions left out."""
    os.environ.setdefault("LAB_DEVICE", "cpu")
    nb = notebooks.read(SOURCE / ASSIGNMENT / f"{name}.ipynb")
    ns: dict = {"get_ipython": lambda: _NoIPython()}
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        tagged = "bench" in cell.metadata.get("tags", [])
        if cell.cell_type == "code" and (gid == "setup" or notebooks.is_answer(cell) or gid in extra_cells or tagged):
            regions = ((notebooks.HIDDEN_BEGIN, notebooks.HIDDEN_END),)
            code = "\n".join(notebooks.outside_lines(cell.source, regions))
            if tagged:  # only its definitions: its demo lines use names of other cells
                tree = ast.parse(code)
                tree.body = [n for n in tree.body if isinstance(n, ast.ClassDef | ast.FunctionDef)]
                code = ast.unparse(tree)
            exec(compile(code, f"{name}:{gid or 'bench'}", "exec"), ns)
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
        for name, fn in (("builtin", F.hardswish), ("readable", ns["hard_swish_custom"]),
                         ("tuned", ns["TunedHardSwishFunction"].apply)):
            best[name] = min(best.get(name, float("inf")), timed(fn))
    readable, tuned = best["readable"] / best["builtin"], best["tuned"] / best["builtin"]
    return [
        Row("hardswish", f"F.hardswish fwd+bwd, {n:,} CPU elements (ms)", best["builtin"] * 1e3, "", None),
        Row("hardswish", "the answer (readable, masked_fill) fwd+bwd (ms)", best["readable"] * 1e3, "", None),
        Row("hardswish", "the tuned answer (in place, solutions) fwd+bwd (ms)", best["tuned"] * 1e3, "", None),
        Row("hardswish", "readable answer / built-in time ratio", readable, "", None),
        Row("hardswish", "tuned answer / built-in time ratio", tuned, "<= 3.0", tuned <= 3.0),
        *hardswish_compiled(ns["hard_swish_custom"], timed, x),
    ]


def hardswish_compiled(answer: Callable, timed: Callable[[Callable], float], x) -> list[Row]:
    """What torch.compile does to the answer (lesson 1, section 5): the answer eager and compiled, the
    built-in compiled and eager, forward+backward on one thread, side by side in interleaved rounds.
    Where torch.compile cannot run (no C++ compiler), one row says so and the compiled rows are left out."""
    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # process-wide: restored below
    try:
        compiled: dict[str, Callable] = {}
        for name, fn in (("answer", answer), ("builtin", F.hardswish)):
            try:
                compiled[name] = torch.compile(fn)
                leaf = x.clone().requires_grad_(True)
                compiled[name](leaf).sum().backward()  # the compilation, once, on the timed input's shape
            except Exception as err:  # noqa: BLE001 (reported as a row, not a crash)
                reason = (str(err).strip().splitlines() or [""])[0][:80]
                return [Row("hardswish", f"torch.compile unavailable, compiled rows skipped: {type(err).__name__}: "
                            f"{reason}", float("nan"), "", None)]
        best: dict[str, float] = {}
        for _ in range(3):  # interleaved rounds, best of each
            for name, fn in (("builtin", F.hardswish), ("answer", answer),
                             ("compiled answer", compiled["answer"]), ("compiled builtin", compiled["builtin"])):
                best[name] = min(best.get(name, float("inf")), timed(fn))
    finally:
        torch.set_num_threads(threads)
    ratio = {name: best[name] / best["builtin"] for name in best}
    faster = best["compiled answer"] / best["answer"]
    return [
        Row("hardswish", "1 thread: F.hardswish eager fwd+bwd (ms)", best["builtin"] * 1e3, "", None),
        Row("hardswish", "1 thread: the answer eager / built-in eager", ratio["answer"], "", None),
        Row("hardswish", "1 thread: the answer compiled / built-in eager", ratio["compiled answer"], "", None),
        Row("hardswish", "1 thread: built-in compiled / built-in eager", ratio["compiled builtin"], "", None),
        Row("hardswish", "1 thread: the answer compiled / the answer eager", faster, "< 1.0", faster < 1.0),
    ]


def checkpointing() -> list[Row]:
    """A 64-layer MLP: the peak bytes autograd keeps (saved-tensor hooks, the notebook's
    SavedMemory) and the forward + backward time, plain against sqrt(n) checkpointed
    segments built from the published `checkpoint`."""
    import functools
    import math
    import time

    import torch
    import torch.nn.functional as F

    threads = torch.get_num_threads()
    try:
        ns = lesson_namespace("02_checkpointing", extra_cells=("saved_memory",))  # sets one thread
        checkpoint, saved_memory = ns["checkpoint"], ns["SavedMemory"]
        depth, width, batch = 64, 128, 64
        layers = ns["seeded_mlp"](depth, width, key=64)
        x = ns["seeded_randn"](batch, width, key=16)
        segments = round(math.sqrt(depth))
        size = math.ceil(depth / segments)

        def plain(h, chunk=layers):
            for layer in chunk:
                h = F.gelu(layer(h))
            return h

        def segmented(h):
            for start in range(0, depth, size):
                h = checkpoint(functools.partial(plain, chunk=layers[start:start + size]), h)
            return h

        def run(fn):
            leaf = x.detach().clone().requires_grad_(True)
            layers.zero_grad(set_to_none=True)
            fn(leaf).sum().backward()

        def peak(fn) -> int:
            with saved_memory(layers.parameters()) as mem:
                run(fn)
            return mem.peak

        def seconds(fn) -> float:
            start = time.perf_counter()
            run(fn)
            return time.perf_counter() - start

        best = {"plain": float("inf"), "segmented": float("inf")}
        for _ in range(15):  # interleaved rounds, best of each
            for name, fn in (("plain", plain), ("segmented", segmented)):
                best[name] = min(best[name], seconds(fn))
        memory = peak(segmented) / peak(plain)
        overhead = best["segmented"] / best["plain"]
    finally:
        torch.set_num_threads(threads)
    return [
        Row("checkpoint", f"plain MLP fwd+bwd, {depth} layers, {batch}x{width} (ms)", best["plain"] * 1e3, "", None),
        Row("checkpoint", f"sqrt(n) = {segments} segments fwd+bwd (ms)", best["segmented"] * 1e3, "", None),
        Row("checkpoint", "sqrt(n) segments / plain: peak saved bytes", memory, "<= 0.30", memory <= 0.30),
        Row("checkpoint", "sqrt(n) segments / plain: fwd+bwd time", overhead, "<= 1.6", overhead <= 1.6),
    ]


BENCHES: list[Callable[[], list[Row]]] = [hardswish, checkpointing]


def main() -> int:
    rows = [row for bench in BENCHES for row in bench()]
    print(f"{'lesson':12s} {'measure':58s} {'value':>10s} {'target':>8s}  verdict")
    for r in rows:
        verdict = "" if r.ok is None else ("ok" if r.ok else "MISSED")
        print(f"{r.lesson:12s} {r.measure:58s} {r.value:10.3f} {r.target:>8s}  {verdict}")
    return 1 if any(r.ok is False for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
