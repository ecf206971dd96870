"""Self-checks predict the grade, and lessons declare what they re-implement.

A corpus entry may name the self-check its mistake must fail, with the words the student then reads:

    # selfcheck: hooks_selfcheck fails "still alive after it"

Every such entry fails that self-check with that message (an AssertionError, not a crash), and every
correct entry (`expect: full`) passes every self-check of its notebook: a student who sees "Self-check
passed" on an answer the grader accepts, and a failure on one it rejects. The self-checks run in this
process on the release with the entry's answers and every cell before them but figures and timings.
(That hidden regions record raw values only is a gate: tests/test_gates.py, scan.hidden_region_problems.)
"""

from __future__ import annotations

import contextlib
import multiprocessing
import re

import pytest
import torch  # (imported once here: each self-check's forked child inherits it, about 2 s saved per run)

from labs import ROOT
from labs.course import corpus, notebooks
from labs.grading import plan

LESSONS = [p.stem for p in notebooks.lesson_paths(ROOT / "source")]
_SLOW = re.compile(r"\bplt\.|matplotlib")
_SELFCHECK = re.compile(r'^# selfcheck: (\S+) fails "([^"]+)"\s*$', re.M)


def _source(lesson):
    return notebooks.read(ROOT / "source" / "lab_2_1_3" / f"{lesson}.ipynb")


def _release(lesson):
    return notebooks.read(ROOT / "release" / "lab_2_1_3" / f"{lesson}.ipynb")


def selfcheck_expectation(entry: corpus.Entry) -> tuple[str, str] | None:
    text = (corpus.CORPUS / entry.notebook / f"{entry.name}.py").read_text(encoding="utf-8")
    m = _SELFCHECK.search(text)
    return (m.group(1), m.group(2)) if m else None


def run_selfcheck(entry: corpus.Entry, selfcheck: str) -> BaseException | None:
    """`_run_selfcheck` in a forked child, so that no state one notebook leaves in torch (grad mode, hooks,
    threads, generators) reaches the next: the exception the self-check raised (type and message), or None."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child():
        try:
            err = _run_selfcheck(entry, selfcheck)
            send.send(None if err is None else (type(err).__name__, str(err)[:4000]))
        except BaseException as crash:  # noqa: BLE001 (reported to the parent)
            send.send(("crash " + type(crash).__name__, str(crash)[:4000]))

    proc = ctx.Process(target=child)
    proc.start()
    got = receive.recv() if receive.poll(600) else ("timeout", "no answer in 600 s")
    proc.join(10)
    if got is None:
        return None
    kind = {"AssertionError": AssertionError}.get(got[0], RuntimeError)
    return kind(got[1] if kind is AssertionError else f"{got[0]}: {got[1]}")


def _run_selfcheck(entry: corpus.Entry, selfcheck: str) -> BaseException | None:
    """Run the entry's notebook up to `selfcheck` (setup, the locked helper cells, the answers) and the
    self-check itself; the exception it raised, or None."""
    source = _source(entry.notebook)
    nb = entry.apply(_release(entry.notebook), source)
    # The lesson's show-only cells (demos, figures, the other self-checks) are skipped as grading skips
    # them: only when nothing that runs may read a name they bind (labs.grading.plan.skip_plan).
    code = [c for c in nb.cells if c.cell_type == "code"]
    target = next(c.source.strip() for c in source.cells if notebooks.grade_id(c) == selfcheck)
    skipped = {id(code[i]) for i in plan.skip_plan([c.source for c in code],
                                                      plan.skipped_sources(source) - {target})}
    namespace: dict = {"__name__": "__main__"}
    for cell in nb.cells:
        gid = notebooks.grade_id(cell)
        if cell.cell_type != "code" or notebooks.is_graded_test(cell) and gid != "setup" or id(cell) in skipped:
            continue
        if gid is None and (_SLOW.search(cell.source) or "nbval-ignore-output" in cell.metadata.get("tags", [])):
            continue  # figures and timings: nothing a self-check needs
        if gid is None:  # a demo: only the names it defines matter here (it asserts in the student's kernel)
            with contextlib.suppress(Exception):
                exec(compile(cell.source, f"<{entry.notebook}:demo>", "exec"), namespace)
            continue
        if gid.endswith("_selfcheck") and gid != selfcheck:
            continue
        code = compile(cell.source, f"<{entry.notebook}:{gid}>", "exec")
        if gid == selfcheck:
            try:
                exec(code, namespace)
            except Exception as err:  # what the student sees
                return err
            return None
        exec(code, namespace)
    raise AssertionError(f"no self-check {selfcheck!r} in {entry.notebook}")


def _selfchecks(lesson: str) -> list[str]:
    return [notebooks.grade_id(c) for c in _source(lesson).cells
            if (notebooks.grade_id(c) or "").endswith("_selfcheck") and "optional" not in c.source.lower()]


def _answers_of(lesson: str, selfcheck: str) -> str:
    """The answer cell a self-check checks: the last answer before it."""
    last = None
    for c in _source(lesson).cells:
        if notebooks.is_answer(c):
            last = notebooks.grade_id(c)
        if notebooks.grade_id(c) == selfcheck:
            return last
    raise KeyError(selfcheck)


CORRECT = [(e, s) for e in corpus.entries() if e.expect_full for s in _selfchecks(e.notebook)
           if _answers_of(e.notebook, s) in e.cells]
NAMED = [e for e in corpus.entries() if selfcheck_expectation(e)]


@pytest.mark.parametrize(("entry", "selfcheck"), CORRECT, ids=lambda v: getattr(v, "student", v))
def test_correct_answer_passes_its_selfcheck(entry, selfcheck):
    err = run_selfcheck(entry, selfcheck)
    assert err is None, f"{entry.student}: {selfcheck} fails a correct answer: {type(err).__name__}: {err}"


@pytest.mark.parametrize("entry", NAMED, ids=lambda e: e.student)
def test_mistake_fails_its_selfcheck_with_its_message(entry):
    selfcheck, words = selfcheck_expectation(entry)
    assert not entry.expect_full and entry.expect_fails, f"{entry.student}: a self-check failure loses marks too"
    err = run_selfcheck(entry, selfcheck)
    assert isinstance(err, AssertionError), f"{entry.student}: {selfcheck} should fail with an assertion, got {err!r}"
    assert words in str(err), f"{entry.student}: {selfcheck} failed without saying {words!r}: {err}"


def test_selfcheck_proofs_cover_every_known_failure():
    named = {(e.notebook, selfcheck_expectation(e)[0]) for e in NAMED}
    for need in (("03_saved_tensor_hooks", "hooks_selfcheck"), ("02_checkpointing", "checkpoint_selfcheck"),
                 ("01_hardswish", "hardswish_selfcheck"), ("04_modern_swish", "swish_selfcheck")):
        assert need in named, f"no corpus entry proves {need}"


@pytest.mark.parametrize("lesson", LESSONS)
def test_declarations_complete(lesson):
    ex = _source(lesson).metadata["lab"]["exercise"]
    assert set(ex) == {"reimplements", "ops", "calls", "allow"}
    assert ex["reimplements"] and ex["calls"] and "torch.*" in ex["allow"]
    assert all(isinstance(v, str) and v for k in ex for v in ex[k])
    if lesson == "04_modern_swish":
        assert {"_softmax", "_softmax_backward_data", "_log_softmax"} <= set(ex["ops"])


def test_declared_ops_are_what_the_builtins_run():
    """The ops lesson 3 declares for its vmap rule are those torch.softmax and log_softmax run on the CPU."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Log(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops.add(func.overloadpacket.__name__)
            return func(*args, **(kwargs or {}))

    declared = set(_source("04_modern_swish").metadata["lab"]["exercise"]["ops"])
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    for fn in (lambda t: torch.softmax(t, -1), lambda t: torch.nn.functional.softmax(t, -1),
               lambda t: torch.log_softmax(t, -1).exp(), lambda t: torch.func.vmap(torch.softmax, (0, None))(t, -1)):
        with Log() as log:
            fn(x).sum().backward()
        assert log.ops & declared, sorted(log.ops)
