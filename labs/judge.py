"""The judge: verdicts from probe data, outside the student's kernel.

Each graded test cell's hidden part only probes (labs/probekit.py): it displays records of
what the student's code returned on the grader's inputs. The judge runs in the grading
process. For each graded cell it compares the student's records with the records the
instructor's solution produced on the same probes (`Reference`), using only the
solution's options (tolerances, kinks, hints), and writes the cell's verdict: no output
for a pass, one error output carrying the judge's own message for a fail. nbgrader's
SaveAutoGrades then scores it. Nothing the kernel printed, displayed or raised decides.

Kernel data is hostile: records are size-capped, type- and shape-checked, decoded without
pickle; a missing, duplicated or malformed record fails that test with a message. Kernel
text never reaches a message (an exception is named only if its name is a known one).
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass

import numpy as np

MIME = "application/vnd.lab.probe+json"
MAX_RECORD_BYTES = 1 << 20       # one record, as JSON
MAX_CELL_RECORDS = 200
MAX_ELEMENTS = 1 << 20           # one tensor
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


def records(outputs) -> dict[str, dict]:
    """{key: record} from one cell's outputs (probe records only, everything else ignored)."""
    found: dict[str, dict] = {}
    for out in outputs or []:
        if not isinstance(out, dict) or out.get("output_type") not in ("display_data", "execute_result"):
            continue
        data = out.get("data")
        if not isinstance(data, dict) or MIME not in data:
            continue
        rec = data[MIME]
        if isinstance(rec, str):
            if len(rec) > MAX_RECORD_BYTES:
                raise Malformed("a probe record is too large")
            try:
                rec = json.loads(rec)
            except ValueError:
                raise Malformed("a probe record is not JSON") from None
        if not isinstance(rec, dict) or not isinstance(rec.get("key"), str) or len(rec["key"]) > 300:
            raise Malformed("a probe record without a key")
        if len(json.dumps(rec)) > MAX_RECORD_BYTES:
            raise Malformed("a probe record is too large")
        if rec["key"] in found:
            raise Malformed(f"two records for {rec['key']!r}")
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


def _describe(value) -> str:
    if isinstance(value, Tensor):
        return f"a tensor of shape {value.shape}"
    if isinstance(value, tuple) and value[:1] == ("object",):
        return f"a {value[1]}"
    if isinstance(value, list):
        return f"a sequence of {len(value)}"
    return type(value).__name__ if not isinstance(value, str | int | float | bool) else repr(value)


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
        name = got["error"] if got["error"] in KNOWN_ERRORS else "an exception"
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
            return f"{what}: expected {_describe(want)}, got {_describe(value)}."
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
    return f"{what}: expected {_describe(want)}, got {_describe(value)}."


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


def verdict(reference: dict[str, dict], outputs, forbidden_ops: frozenset[str] = frozenset(),
            not_run: str | None = None) -> str | None:
    """One graded cell: None (pass) or the message the student reads."""
    if not_run:
        return f"Not run: {not_run}."
    try:
        got = records(outputs)
    except Malformed as err:
        return f"The probe data of this test is malformed ({err}), so it scores zero."
    for key, ref in reference.items():
        mine = got.get(key)
        try:
            message = compare(ref, mine)
        except Malformed as err:
            message = f"{key}: malformed result ({err})."
        if message:
            return message
        ops = mine.get("ops") if mine else None
        if forbidden_ops and isinstance(ops, list):
            used = sorted(str(op)[:60] for op in ops[:500] if op in forbidden_ops)
            if used:
                return (f"{key}: your code ran the built-in {', '.join('aten.' + op for op in used)}; the exercise "
                        "is to implement it yourself, so this test scores zero.")
    return None

