"""Kernel-side probe helpers for graded tests (runs INSIDE the sandboxed kernel).

The grader runs this file's source in the student's kernel before the notebook's first
cell (labs/grading/sandbox.py). The hidden part of each graded test cell then only *probes*: it
calls the student's code on inputs the grader chose, through `_probe(what, fn, ...)`,
and `_probe` displays what came back as data under `MIME`. It decides nothing: the judge
(labs/grading/judge.py, in the grading process) compares each record with the same record from
the instructor's solution, with the options (tolerances, kinks, hints) taken from the
solution's record, never from the student's.

A record: {"v": 1, "key": what, "value": <encoded> | "error": "ExceptionName",
           "ops": [distinct aten operator names the call ran, sorted],
           "calls": [distinct library Python functions it called, "module.qualname", sorted],
           "threads": n, "unhooked": bool, "strings": n, ...options}
Encoded values: null, bool, int, str, {"float": repr}, {"tensor": dtype, "shape": [...],
"b64": little-endian bytes}, {"list": [...]}, {"object": type name}.

The logs (evidence, when they show what the exercise re-implements):
- ops: a TorchDispatchMode records every aten operator (forward and backward) that runs in
  the probing thread. Dispatch modes are thread-local and torch's profiler does not see
  other threads either, so `threading.setprofile` makes every thread the probe starts
  through `threading` enter its own op log (sharing the names) at its first Python event.
- calls: `sys.setprofile` sees every Python function called in the probing thread (and, as
  above, in threads it starts): the log holds the distinct library functions among them
  (code outside the notebook: site-packages, the standard library, torch), so a Python
  built-in such as torch.utils.checkpoint.checkpoint shows however it was reached.
What the kit cannot prove it reports for review: "threads" counts threads started during
the probe and threads the notebook started before it that are still alive (those run
unlogged); "unhooked" says the probe's hooks were gone when it ended; "strings" counts
exec/eval/compile calls made from notebook code. Each log holds at most `_LAB_MAX_LOG`
distinct names (more is itself reported: the judge reads a longer log as garbled).

Nothing here is trusted: student code can replace or bypass every name defined here, and
that only ever changes the data, which then has to match the solution's on its own; a log
can be emptied or forged, which the judge can only flag (an empty log where the solution's
was not), never prove. The kit keeps its own references (`_lab_probe_impl`) so that
rebinding the global `_probe` needs code the scan flags; it cannot stop that code.
"""

import _thread as _lab_thread
import base64 as _lab_b64
import builtins as _lab_builtins
import os as _lab_os
import sys as _lab_sys
import sysconfig as _lab_sysconfig
import threading as _lab_threading
import warnings as _lab_warnings

import torch as _lab_torch
from IPython.display import display as _lab_display
from torch.utils._python_dispatch import TorchDispatchMode as _LabDispatchMode
from torch.utils._python_dispatch import _get_current_dispatch_mode as _lab_current_mode

_LAB_PROBE_MIME = "application/vnd.lab.probe+json"
_LAB_DTYPES = {_lab_torch.float32: "float32", _lab_torch.float64: "float64", _lab_torch.int64: "int64",
               _lab_torch.int32: "int32", _lab_torch.bool: "bool"}
_LAB_MAX_LOG = 2000
_LAB_LIBRARY = tuple(sorted({_lab_os.path.realpath(p) + _lab_os.sep for p in (
    _lab_sys.prefix, _lab_sys.base_prefix, _lab_sys.exec_prefix, _lab_sysconfig.get_paths()["stdlib"],
    _lab_sysconfig.get_paths()["purelib"], _lab_sysconfig.get_paths()["platlib"],
    _lab_os.path.dirname(_lab_os.path.dirname(_lab_torch.__file__)))} | {"<frozen "}))
_LAB_THREAD_STARTS = tuple(f for f in (getattr(_lab_thread, "start_new_thread", None),
                                       getattr(_lab_thread, "start_joinable_thread", None)) if f is not None)
_LAB_STRINGS = (_lab_builtins.exec, _lab_builtins.eval, _lab_builtins.compile)
_LAB_KERNEL_THREADS = frozenset(_lab_sys._current_frames())  # the kernel's own, alive before any notebook cell


class _LabOpLog(_LabDispatchMode):
    """Records the name of every aten operator that runs under it (the student's code,
    forward and backward), so the judge sees a delegated built-in. `ops` may be shared by
    the logs of several threads."""

    def __init__(self, ops=None):
        super().__init__()
        self.ops = set() if ops is None else ops

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.add(func.overloadpacket.__name__)
        return func(*args, **(kwargs or {}))


class _LabCallLog:
    """The probe's profile function (sys.setprofile / threading.setprofile): which code objects
    ran (resolved to names once, at the end), threads started, strings executed."""

    def __init__(self, ops):
        self.codes = {}
        self.ops = ops
        self.threads = 0
        self.strings = 0
        self.modes = []

    def __call__(self, frame, event, arg):
        if event == "call":
            code = frame.f_code
            if code not in self.codes:
                self.codes[code] = frame.f_globals.get("__name__")
        elif event == "c_call":
            if arg in _LAB_THREAD_STARTS:
                self.threads += 1
            elif arg in _LAB_STRINGS and not frame.f_code.co_filename.startswith(_LAB_LIBRARY):
                self.strings += 1

    def in_thread(self, frame, event, arg):
        """threading.setprofile: the first event of a thread started during the probe."""
        _lab_sys.setprofile(self)
        mode = _LabOpLog(self.ops)
        mode.__enter__()  # stays for the thread's life: the thread-local stack goes with it
        self.modes.append(mode)
        self(frame, event, arg)

    def names(self):
        found = set()
        for code, module in list(self.codes.items()):
            if code.co_filename.startswith(_LAB_LIBRARY) and isinstance(module, str) and code.co_name != "<module>":
                found.add(f"{module}.{getattr(code, 'co_qualname', code.co_name)}")
        return found


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


def _lab_log(names):
    names = sorted(str(n)[:200] for n in names)
    return names if len(names) <= _LAB_MAX_LOG else names[:_LAB_MAX_LOG] + ["(more)"]


def _lab_probe_impl(what, fn, ops=True, **options):
    """Run fn() (student code on the grader's inputs) and display its result as data.

    `options` travel with the record but the judge reads them only from the solution's
    record: atol/rtol (tensors), compare ("close", "equal", "at_most"), at (the inputs,
    for messages), kinks (breakpoints that name regions), hint (a sentence for students)."""
    log = _LabOpLog() if ops else None
    calls = _LabCallLog(log.ops if log is not None else set())
    record = {"v": 1, "key": what}
    alive = len(set(_lab_sys._current_frames()) - _LAB_KERNEL_THREADS - {_lab_threading.get_ident()})
    unhooked = False
    try:
        with _lab_warnings.catch_warnings():
            _lab_warnings.simplefilter("ignore")
            if log is None:
                value = fn()
            else:
                with log:
                    _lab_threading.setprofile(calls.in_thread)
                    _lab_sys.setprofile(calls)
                    try:
                        value = fn()
                    finally:
                        unhooked = _lab_sys.getprofile() is not calls or _lab_current_mode() is not log
                        _lab_sys.setprofile(None)
                        _lab_threading.setprofile(None)
        record["value"] = _lab_encode(value)
    except Exception as err:  # the student's code raised: that is the data
        record["error"] = type(err).__name__
    if log is not None:
        record["ops"] = _lab_log(log.ops)
        record["calls"] = _lab_log(calls.names())
        record["threads"] = calls.threads + alive
        record["unhooked"] = unhooked
        record["strings"] = calls.strings
    else:
        record["ops"] = []
    for name, option in options.items():
        record[name] = _lab_encode(option) if name == "at" else option
    _lab_display({_LAB_PROBE_MIME: record}, raw=True)


def _lab_warm_up():
    """The first dispatch mode imports much of torch lazily (sympy, ...): done here, once, so
    that no probe pays for it in time or in its call log."""
    with _LabOpLog():
        leaf = _lab_torch.ones(2, requires_grad=True)
        (leaf * 2).sum().backward()


_lab_warm_up()
_probe = _lab_probe_impl
