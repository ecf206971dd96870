"""The judge: verdicts from probe data, outside the student's kernel.

Each graded test cell's hidden part only probes (labs/grading/probekit.py): it displays records of
what the student's code returned on the grader's inputs. The judge runs in the grading
process. For each graded cell it compares the student's records with the records the
instructor's solution produced on the same probes (`Reference`), using only the
solution's options (tolerances, kinks, hints), and writes the cell's verdict: no output
for a pass, one error output carrying the judge's own message for a fail. nbgrader's
SaveAutoGrades then scores it. Nothing the kernel printed, displayed or raised decides.

Kernel data is hostile: records are size-capped, walked iteratively with bounds on depth
(`MAX_DEPTH`) and parts (`MAX_NODES`) before anything else reads them, type- and
shape-checked, decoded without pickle; a missing, duplicated or malformed record fails that
test (only that test) with a message. Messages are built only from the grader's own strings:
the reference's keys, fixed words, declared names and numbers the judge computed. Records
under keys the reference does not have are counted, never named; returned text and type
names are described, never shown; an exception is named only if its name is a known one.

Expected values come only from the reference run (the solution's probes): the judge never
reads a value computed in the kernel other than what the student's code returned.

Evidence and flags (`judge_cell`): a graded test scores zero for delegation only when one of
its own records' logs (`ops`: aten operators, `calls`: library Python functions) holds a name
the lesson declares and the solution's record of the same probe does not. The whole log is
read (bounded at `MAX_LOG` names; a longer or garbled log is a flag). What cannot be proven
is a flag for review that never changes a score: a record without a log, an empty op log
where the solution's was not (a rebound `_probe`, a forged record), a thread started or alive
during the probe, the kit's hooks removed, code run from a string. A log is the kernel's
report about itself: it can prove delegation, never its absence.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field

import numpy as np

MIME = "application/vnd.lab.probe+json"
MAX_RECORD_BYTES = 1 << 20       # one record, as JSON
MAX_CELL_RECORDS = 200
MAX_ELEMENTS = 1 << 20           # one tensor
MAX_DEPTH = 16                   # JSON nesting of one record (the kit's deepest value needs 13)
MAX_NODES = 20_000               # parts of one record (dicts, lists, values); a tensor is one string
MAX_LOG = 2_000                  # distinct names in one record's op or call log
DTYPES = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "int32": "<i4", "bool": "|b1"}
OTHER_DTYPES = {"float16", "bfloat16", "complex64", "complex128", "int8", "int16", "uint8"}  # sent as float64
KNOWN_ERRORS = {
    "ArithmeticError", "AssertionError", "AttributeError", "GradcheckError", "ImportError", "IndexError",
    "KeyError", "LookupError", "MemoryError", "ModuleNotFoundError", "NameError", "NotImplementedError",
    "OverflowError", "RecursionError", "RuntimeError", "TypeError", "UnboundLocalError", "ValueError",
    "ZeroDivisionError", "OutOfMemoryError",
}


class Malformed(ValueError):
    """Probe data that is not what the probe protocol allows."""


@dataclass(frozen=True)
class Tensor:
    dtype: str
    shape: tuple[int, ...]
    values: np.ndarray  # flat float64 (or bool/int) array


def decode(obj, depth: int = 0):
    """A probe value from JSON: None, bool, int, str, float, Tensor, list, ('object', name)."""
    if depth > 5:
        raise Malformed("nested too deep")
    if obj is None or isinstance(obj, bool):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, str):
        return obj[:200]
    if isinstance(obj, dict) and len(obj) == 1 and "float" in obj:
        if not isinstance(obj["float"], str) or len(obj["float"]) > 40:
            raise Malformed("bad float")
        try:
            return float(obj["float"])
        except ValueError:
            raise Malformed("bad float") from None
    if isinstance(obj, dict) and len(obj) == 1 and "list" in obj:
        if not isinstance(obj["list"], list) or len(obj["list"]) > 64:
            raise Malformed("bad list")
        return [decode(v, depth + 1) for v in obj["list"]]
    if isinstance(obj, dict) and len(obj) == 1 and "object" in obj:
        return ("object", str(obj["object"])[:60])
    if isinstance(obj, dict) and set(obj) == {"tensor", "shape", "b64"}:
        return _decode_tensor(obj)
    raise Malformed("not a probe value")


def _decode_tensor(obj) -> Tensor:
    dtype, shape, b64 = obj["tensor"], obj["shape"], obj["b64"]
    if not isinstance(dtype, str) or dtype not in DTYPES and dtype not in OTHER_DTYPES:
        raise Malformed("unknown tensor dtype")
    if not isinstance(shape, list) or len(shape) > 8 or not all(
            isinstance(n, int) and not isinstance(n, bool) and 0 <= n <= MAX_ELEMENTS for n in shape):
        raise Malformed("bad tensor shape")
    count = math.prod(shape)
    if count > MAX_ELEMENTS or not isinstance(b64, str):
        raise Malformed("tensor too large")
    try:
        raw = base64.b64decode(b64, validate=True)
    except ValueError:
        raise Malformed("bad tensor bytes") from None
    wire = DTYPES.get(dtype, "<f8")
    if len(raw) != count * np.dtype(wire).itemsize:
        raise Malformed("tensor bytes do not match its shape")
    values = np.frombuffer(raw, dtype=wire)
    return Tensor(dtype, tuple(shape), values.astype(np.float64) if wire != "|b1" else values.copy())


def _bounded(obj, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> None:
    """Refuse a value nested deeper than `max_depth` or with more than `max_nodes` parts, walking it
    iteratively (no recursion, stopped at the first excess): a record of 10**6 elements costs
    `max_nodes` steps, a record nested 10**5 deep costs `max_depth`."""
    todo, nodes = [(obj, 0)], 0
    while todo:
        item, depth = todo.pop()
        nodes += 1
        if nodes > max_nodes:
            raise Malformed("a probe record has too many parts")
        if isinstance(item, dict | list):
            if depth >= max_depth:
                raise Malformed("a probe record is nested too deeply")
            if isinstance(item, dict) and not all(isinstance(k, str) for k in item):
                raise Malformed("a probe record has a key that is not text")
            todo.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
        elif isinstance(item, str):
            if len(item) > MAX_RECORD_BYTES:
                raise Malformed("a probe record is too large")
        elif not (item is None or isinstance(item, bool | int | float)):
            raise Malformed("a probe record holds a value JSON does not have")


def _record(out) -> dict | None:
    """The probe record of one output (None if it is not one), bounded before anything reads it."""
    if not isinstance(out, dict) or out.get("output_type") not in ("display_data", "execute_result"):
        return None
    data = out.get("data")
    if not isinstance(data, dict) or MIME not in data:
        return None
    rec = data[MIME]
    if isinstance(rec, str):
        if len(rec) > MAX_RECORD_BYTES:
            raise Malformed("a probe record is too large")
        if rec.count("[") + rec.count("{") > MAX_NODES:
            raise Malformed("a probe record has too many parts")
        try:
            rec = json.loads(rec)
        except (ValueError, RecursionError):
            raise Malformed("a probe record is not JSON") from None
    _bounded(rec)
    if not isinstance(rec, dict) or not isinstance(rec.get("key"), str) or len(rec["key"]) > 300:
        raise Malformed("a probe record without a key")
    if len(json.dumps(rec)) > MAX_RECORD_BYTES:
        raise Malformed("a probe record is too large")
    return rec


def records(outputs, known: Collection[str] | None = None) -> dict[str, dict]:
    """{key: record} from one cell's outputs (probe records only, everything else ignored).

    `known`: the reference's keys. With it (a student's outputs), records under other keys are
    counted, never kept or named (their key is the kernel's text), and a message names a key only
    when it is one of `known` (then it is the grader's own string)."""
    found: dict[str, dict] = {}
    unknown = 0
    for out in outputs or []:
        rec = _record(out)
        if rec is None:
            continue
        if known is not None and rec["key"] not in known:
            unknown += 1
            if unknown > MAX_CELL_RECORDS:
                raise Malformed("too many probe records")
            continue
        if rec["key"] in found:
            raise Malformed("two records for one probe" if known is None else f"two records for {rec['key']!r}")
        found[rec["key"]] = rec
        if len(found) > MAX_CELL_RECORDS:
            raise Malformed("too many probe records")
    return found


# --- comparisons: the solution's record says how --------------------------------------

def _region(v: float, kinks: list[float]) -> str:
    for k in kinks:
        if v == k:
            return f"the kink x = {k:g}"
    lo = [k for k in kinks if k < v]
    hi = [k for k in kinks if k > v]
    if not lo:
        return f"x < {hi[0]:g}" if hi else "x"
    if not hi:
        return f"x > {lo[-1]:g}"
    return f"{lo[-1]:g} < x < {hi[0]:g}"


def _describe(value, trusted: bool = False) -> str:
    """Words for a decoded value; text (a str or type name) only when `trusted` (the solution's)."""
    if trusted and isinstance(value, str):
        return repr(value)
    if isinstance(value, Tensor):
        return f"a tensor of shape {value.shape}"
    if isinstance(value, tuple) and value[:1] == ("object",):
        return "an object that is not a tensor, number or sequence"  # its type name is the kernel's text
    if isinstance(value, list):
        return f"a sequence of {len(value)}"
    if isinstance(value, str):
        return "a text"  # never the text itself: the kernel chose it
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int | float):
        return f"{value:.6g}"
    return "a value of another kind"


def _close_tensors(what: str, got: Tensor, want: Tensor, ref: dict) -> str | None:
    if got.shape != want.shape:
        return f"{what}: expected shape {want.shape}, got {got.shape}."
    if ref.get("check_dtype", True) and got.dtype != want.dtype:
        return f"{what}: expected dtype {want.dtype}, got {got.dtype}."
    compare = ref.get("compare", "close")
    g, e = got.values.astype(np.float64), want.values.astype(np.float64)
    if compare == "equal":
        atol = rtol = 0.0
    else:
        atol, rtol = float(ref.get("atol", 1e-5)), float(ref.get("rtol", 1e-4))
    with np.errstate(invalid="ignore"):
        excess = np.abs(g - e) - (atol + rtol * np.abs(e))
        excess = np.where(np.isnan(e) & np.isnan(g), -1.0, excess)
        excess = np.where(np.isnan(excess), np.inf, excess)
    bad = excess > 0
    if not bad.any():
        return None
    i = int(np.argmax(excess))
    where = ""
    at = ref.get("at")
    xs = decode(at).values if isinstance(at, dict) and "tensor" in at else None
    if xs is not None and xs.size == g.size:
        kinks = [float(k) for k in ref.get("kinks", []) if isinstance(k, int | float)]
        regions = sorted({_region(float(v), kinks) for v in xs[bad]}) if kinks else []
        where = (f", in: {'; '.join(regions)}" if regions else "") + f". Largest difference " \
                f"{abs(g[i] - e[i]):.4g} at x = {xs[i]:.6g}: got {g[i]:.6g}, expected {e[i]:.6g}"
    else:
        where = f". Largest difference {abs(g[i] - e[i]):.4g}: got {g[i]:.6g}, expected {e[i]:.6g}"
    return f"{what} is wrong at {int(bad.sum())} of {g.size} entries{where}."


def compare(ref: dict, got: dict | None) -> str | None:
    """None when the student's record matches the solution's; else the student's message."""
    what = ref["key"]
    hint = f" {ref['hint']}" if isinstance(ref.get("hint"), str) else ""
    if got is None:
        return (f"{what}: no result: the cell stopped before this check ran (your code raised an exception, "
                f"or the visible check above it failed).{hint}")
    if "error" in got:
        error = got["error"]
        name = error if isinstance(error, str) and error in KNOWN_ERRORS else "an exception"
        return f"{what}: your code raised {name}.{hint}"
    if "value" not in got:
        return f"{what}: the record has no value."
    want, value = decode(ref["value"]), decode(got["value"])
    message = _match(what, value, want, ref)
    return None if message is None else message + hint


def _match(what: str, value, want, ref: dict) -> str | None:
    if isinstance(want, Tensor):
        if not isinstance(value, Tensor):
            return f"{what}: expected a tensor, got {_describe(value)}."
        return _close_tensors(what, value, want, ref)
    if isinstance(want, list):
        if not isinstance(value, list) or len(value) != len(want):
            return f"{what}: expected {_describe(want, True)}, got {_describe(value)}."
        for k, (v, w) in enumerate(zip(value, want, strict=True)):
            message = _match(f"{what} [item {k}]", v, w, ref)
            if message:
                return message
        return None
    compare_ = ref.get("compare", "close")
    if compare_ == "at_most" and isinstance(want, int | float) and not isinstance(want, bool):
        if isinstance(value, int | float) and not isinstance(value, bool) and value <= want:
            return None
        return f"{what}: expected at most {want:g}, got {_describe(value)}."
    if isinstance(want, float) and isinstance(value, int | float) and not isinstance(value, bool):
        atol, rtol = float(ref.get("atol", 1e-5)), float(ref.get("rtol", 1e-4))
        if abs(value - want) <= atol + rtol * abs(want) or (math.isnan(want) and math.isnan(value)):
            return None
        return f"{what}: expected {want:.6g}, got {value:.6g}."
    if type(value) is type(want) and value == want:
        return None
    return f"{what}: expected {_describe(want, True)}, got {_describe(value)}."


# --- a whole notebook ------------------------------------------------------------------

def check_reference(reference: dict[str, dict[str, dict]], graded: list[str]) -> list[str]:
    """Problems with the solution's own records (each graded test needs a clean record)."""
    problems = []
    for gid in graded:
        recs = reference.get(gid)
        if not recs:
            problems.append(f"{gid}: the solution produced no probe record")
            continue
        for key, rec in recs.items():
            if "value" not in rec:
                problems.append(f"{gid}: the solution's probe {key!r} raised {rec.get('error')}")
            else:
                decode(rec["value"])
    return problems


@dataclass
class Verdict:
    """One graded cell: `message` (None: pass) is what the student reads; `evidence` (grader text)
    says which declared built-in the cell's own probes ran (then it scores zero); `flags` (grader
    text) are for an instructor's review and never change the score."""
    message: str | None = None
    evidence: list[str] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)


def _log(rec: dict, name: str) -> tuple[frozenset[str] | None, bool]:
    """(the distinct names of a record's op or call log, whether that log is intact). A log the
    protocol does not allow (not a list, not text, over `MAX_LOG` names) is read as far as it is
    text, bounded, and reported as not intact."""
    log = rec.get(name)
    if not isinstance(log, list):
        return None, False
    names = frozenset(x for x in log[:MAX_LOG] if isinstance(x, str) and len(x) <= 200)
    return names, len(log) <= MAX_LOG and len(names) == len(log)


def _more(have, had) -> bool:
    """Whether a runtime report (a count, or a yes/no) says more than the solution's run of the same
    probe: a thread the lesson's own cells leave alive is in both and flags nothing."""
    if type(have) is bool:
        return have and had is not True
    if type(have) is int:
        return have > (had if type(had) is int and type(had) is not bool else 0)
    return bool(have)


def judge_cell(reference: dict[str, dict], outputs, ops: Collection[str] = frozenset(),
               calls: Collection[str] = frozenset(), not_run: str | None = None) -> Verdict:
    """One graded cell. `ops`: aten operator names the exercise re-implements; `calls`: qualified
    Python names it re-implements. A probe whose own log shows one of them, where the solution's run
    of the same probe did not, is evidence: the cell scores zero. Everything the judge cannot prove
    (a log missing, emptied, garbled, a thread started or the kit's hooks removed during a probe) is
    a flag. Every text here is the grader's: the reference's keys, fixed words, declared names."""
    if not_run:
        return Verdict(f"Not run: {not_run}.")
    try:
        got = records(outputs, known=reference.keys())
    except Malformed as err:
        return Verdict(f"The probe data of this test is malformed ({err}), so it scores zero.")
    result = Verdict()
    for key, ref in reference.items():
        mine = got.get(key)
        if mine is None:
            continue
        for field_, declared, word in (("ops", ops, "operator"), ("calls", calls, "function")):
            if not declared and field_ == "calls":
                continue
            theirs, intact = _log(mine, field_)
            solution = _log(ref, field_)[0] or frozenset()
            if theirs is None:
                result.flags.append(f"{key}: the record has no {word} log (the probe kit was bypassed?)")
                continue
            if not intact:
                result.flags.append(f"{key}: the {word} log is garbled or over {MAX_LOG} names")
            used = sorted(n for n in declared if n in theirs and n not in solution)
            if used:
                shown = ", ".join(("aten." if field_ == "ops" else "") + n for n in used)
                result.evidence.append(f"{key}: ran {shown}")
                if result.message is None:
                    result.message = (f"{key}: your code ran the built-in {shown}; the exercise is to implement it "
                                      "yourself, so this test scores zero.")
            if field_ == "ops" and solution and not theirs and "value" in mine:
                result.flags.append(f"{key}: no operator was logged, where the solution's run logged "
                                    f"{len(solution)} (the probe or its log was replaced?)")
        for flag, text in (("threads", "started a thread (only threads started through threading are logged)"),
                           ("unhooked", "removed the probe kit's hooks (the logs may be incomplete)"),
                           ("strings", "ran code from a string (exec, eval or compile)")):
            if _more(mine.get(flag), ref.get(flag)):  # the solution's own run of this probe is the baseline
                result.flags.append(f"{key}: your code {text} during this probe")
    if result.message is None:
        for key, ref in reference.items():
            try:
                message = compare(ref, got.get(key))
            except Malformed as err:
                message = f"{key}: malformed result ({err})."
            if message:
                result.message = message
                break
    return result


def verdict(reference: dict[str, dict], outputs, forbidden_ops: Collection[str] = frozenset(),
            not_run: str | None = None, calls: Collection[str] = frozenset()) -> str | None:
    """One graded cell: None (pass) or the message the student reads (see `judge_cell`)."""
    return judge_cell(reference, outputs, forbidden_ops, calls, not_run).message
