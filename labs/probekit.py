"""Kernel-side probe helpers for graded tests (runs INSIDE the sandboxed kernel).

The grader runs this file's source in the student's kernel before the notebook's first
cell (labs/sandbox.py). The hidden part of each graded test cell then only *probes*: it
calls the student's code on inputs the grader chose, through `_probe(what, fn, ...)`,
and `_probe` displays what came back as data under `MIME`. It decides nothing: the judge
(labs/judge.py, in the grading process) compares each record with the same record from
the instructor's solution, with the options (tolerances, kinks, hints) taken from the
solution's record, never from the student's.

A record: {"v": 1, "key": what, "value": <encoded> | "error": "ExceptionName",
           "ops": [aten operator names the call ran], ...options}
Encoded values: null, bool, int, str, {"float": repr}, {"tensor": dtype, "shape": [...],
"b64": little-endian bytes}, {"list": [...]}, {"object": type name}.

Nothing here is trusted: student code can replace or bypass every name defined here, and
that only ever changes the data, which then has to match the solution's on its own.
"""

import base64 as _lab_b64
import warnings as _lab_warnings

import torch as _lab_torch
from IPython.display import display as _lab_display
from torch.utils._python_dispatch import TorchDispatchMode as _LabDispatchMode

_LAB_PROBE_MIME = "application/vnd.lab.probe+json"
_LAB_DTYPES = {_lab_torch.float32: "float32", _lab_torch.float64: "float64", _lab_torch.int64: "int64",
               _lab_torch.int32: "int32", _lab_torch.bool: "bool"}


class _LabOpLog(_LabDispatchMode):
    """Records the name of every aten operator that runs under it (the student's code,
    forward and backward), so the judge sees a delegated built-in."""

    def __init__(self):
        super().__init__()
        self.ops = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


def _lab_encode(value, depth=0):
    if depth > 4:
        return {"object": "nested too deep"}
    if value is None or isinstance(value, bool | str):
        return value if not isinstance(value, str) else value[:200]
    if isinstance(value, int):
        return value if abs(value) < 2**53 else {"float": repr(float(value))}
    if isinstance(value, float):
        return {"float": repr(value)}
    if isinstance(value, _lab_torch.dtype | _lab_torch.device):
        return str(value)
    if isinstance(value, _lab_torch.Tensor):
        t = value.detach()
        name = _LAB_DTYPES.get(t.dtype)
        data = t.to("cpu", t.dtype if name else _lab_torch.float64).contiguous()
        raw = data.numpy().tobytes() if data.numel() else b""
        return {"tensor": name or str(t.dtype).removeprefix("torch."), "shape": list(t.shape),
                "b64": _lab_b64.b64encode(raw).decode("ascii")}
    if isinstance(value, list | tuple):
        return {"list": [_lab_encode(v, depth + 1) for v in value[:64]]}
    return {"object": type(value).__name__}


def _probe(what, fn, ops=True, **options):
    """Run fn() (student code on the grader's inputs) and display its result as data.

    `options` travel with the record but the judge reads them only from the solution's
    record: atol/rtol (tensors), compare ("close", "equal", "at_most"), at (the inputs,
    for messages), kinks (breakpoints that name regions), hint (a sentence for students)."""
    log = _LabOpLog() if ops else None
    record = {"v": 1, "key": what}
    try:
        with _lab_warnings.catch_warnings():
            _lab_warnings.simplefilter("ignore")
            if log is None:
                value = fn()
            else:
                with log:
                    value = fn()
        record["value"] = _lab_encode(value)
    except Exception as err:  # the student's code raised: that is the data
        record["error"] = type(err).__name__
    record["ops"] = sorted(log.ops) if log is not None else []
    for name, option in options.items():
        record[name] = _lab_encode(option) if name == "at" else option
    _lab_display({_LAB_PROBE_MIME: record}, raw=True)
