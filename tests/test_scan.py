"""The static scan (labs/grading/scan.py): honest code is clean, tampering and re-implementation shortcuts are found.

Fast: nothing here executes a notebook; every snippet is only parsed.
"""

from __future__ import annotations

import textwrap

import nbformat
import pytest

from labs import ROOT
from labs.course import corpus, notebooks
from labs.grading.scan import Finding, matches, scan_notebook, scan_source

FORBIDDEN = {
    "01_hardswish": ["hardswish*", "Hardswish"],
    "02_checkpointing": ["utils.checkpoint", "torch_checkpoint", "checkpoint_sequential"],
    "03_saved_tensor_hooks": ["utils.checkpoint", "torch_checkpoint", "checkpoint_sequential"],
    "04_modern_swish": ["silu*", "SiLU"],
}
ALL_FORBIDDEN = [p for patterns in FORBIDDEN.values() for p in patterns]
SOURCE = ROOT / "source" / "lab_2_1_3"

# The corpus entries that tamper, and what each must be flagged for.
TAMPERING = {
    "02_checkpointing/patches_allclose": ("patching modules", "patches torch.allclose"),
    "02_checkpointing/wraps_tensor_gt": ("patching modules", "patches torch.Tensor.__gt__"),
    "04_modern_swish/patches_gradgradcheck": ("patching modules", "patches torch.autograd.gradgradcheck"),
}
ENTRIES = corpus.entries()


def _notebook(*cells) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for source, meta in cells:
        cell = nbformat.v4.new_code_cell(source)
        if meta is not None:
            cell.metadata["nbgrader"] = meta
        nb.cells.append(cell)
    return nb


def _scan(entry: corpus.Entry) -> list[Finding]:
    return [f for gid, src in entry.cells.items() for f in scan_source(src, gid, FORBIDDEN[entry.notebook])]


@pytest.mark.parametrize("entry", [e for e in ENTRIES if f"{e.notebook}/{e.name}" not in TAMPERING],
                         ids=lambda e: f"{e.notebook}/{e.name}")
def test_honest_corpus_is_clean(entry):
    assert _scan(entry) == []


@pytest.mark.parametrize("key", sorted(TAMPERING))
def test_tampering_corpus_is_flagged(key):
    entry = next(e for e in ENTRIES if f"{e.notebook}/{e.name}" == key)
    found = _scan(entry)
    assert found and all(f.kind == "review" for f in found), found
    assert ("review", *TAMPERING[key]) in {(f.kind, f.category, f.what) for f in found}, found


@pytest.mark.parametrize("lesson", sorted(FORBIDDEN))
def test_source_answers_are_clean(lesson):
    nb = notebooks.read(SOURCE / f"{lesson}.ipynb")
    assert any(notebooks.is_answer(c) for c in nb.cells)
    assert scan_notebook(nb, FORBIDDEN[lesson], notebooks.is_answer) == []


@pytest.mark.parametrize("lesson", sorted(FORBIDDEN))
def test_source_notebooks_scanned_against_themselves_are_clean(lesson):
    """Every code line of the source notebook is the instructor's: the demonstration cells (no nbgrader
    metadata, so scanned as added cells) compare with the built-ins and must not count against students."""
    nb = notebooks.read(SOURCE / f"{lesson}.ipynb")
    assert scan_notebook(nb, FORBIDDEN[lesson], source=nb) == []


def test_cells_are_chosen_by_text_not_metadata():
    """Every code cell whose text differs from the source's is scanned, whatever its metadata says;
    a cell identical to one of the source's is the instructor's."""
    answer = {"grade_id": "answer", "solution": True, "locked": False}
    source = _notebook(("ref = F.hardswish(x)\nprint(ref)", None), ("raise NotImplementedError()", answer))
    hidden = {"grade_id": "test_x", "grade": True, "locked": True, "points": 1}  # the student's own metadata
    submitted = _notebook(("ref = F.hardswish(x)\nprint(ref)", None), ("import subprocess", hidden),
                          ("def hard_swish_custom(x):\n    return F.hardswish(x)", answer))
    source.cells[1].source = "def hard_swish_custom(x):\n    raise NotImplementedError()"
    found = [(f.kind, f.cell, f.line) for f in scan_notebook(submitted, FORBIDDEN["01_hardswish"], source=source)]
    assert found == [("review", "test_x", 1), ("forbidden", "answer", 2)]


def test_a_scratch_cell_that_compares_with_the_builtin_is_not_flagged():
    answer = {"grade_id": "answer", "solution": True, "locked": False}
    source = _notebook(("def hard_swish_custom(x):\n    return x", answer))
    scratch = "print((hard_swish_custom(x) - F.hardswish(x)).abs().max())"
    submitted = _notebook(("def hard_swish_custom(x):\n    return x * (x + 3).clamp(0, 6) / 6", answer),
                          (scratch, None))
    assert scan_notebook(submitted, FORBIDDEN["01_hardswish"], source=source, allow=["torch.*", "F.*"]) == []
    rebinds = _notebook(("hard_swish_custom = F.hardswish", None))  # a cell that binds the answer's name
    assert [f.kind for f in scan_notebook(rebinds, FORBIDDEN["01_hardswish"], source=source)] == ["forbidden"]


# (id, lesson, the student's code, kind, category, text the finding must contain)
ATTACKS = [
    # re-implements: the exercise's own target, however it is reached
    ("F.hardswish", "01_hardswish", "def hard_swish_custom(x):\n    return F.hardswish(x)",
     "forbidden", "re-implements", "uses torch.nn.functional.hardswish"),
    ("torch.nn.functional.hardswish", "01_hardswish", "y = torch.nn.functional.hardswish(x)",
     "forbidden", "re-implements", "torch.nn.functional.hardswish"),
    ("torch._C._nn.hardswish", "01_hardswish", "y = torch._C._nn.hardswish(x)",
     "forbidden", "re-implements", "torch._C._nn.hardswish"),
    ("aten.hardswish_backward", "01_hardswish", "g = torch.ops.aten.hardswish_backward(grad_output, x)",
     "forbidden", "re-implements", "torch.ops.aten.hardswish_backward"),
    ("getattr literal", "01_hardswish", 'fn = getattr(F, "hardswish")', "forbidden", "re-implements", "hardswish"),
    ("string of an op", "01_hardswish", 'op = torch.ops.aten.__getattr__("hardswish_backward")',
     "forbidden", "re-implements", '"hardswish_backward"'),
    ("implicit concatenation", "01_hardswish", 'fn = vars(F)["hard" "swish"]', "forbidden", "re-implements",
     '"hardswish"'),
    ("from import as", "01_hardswish", "from torch.nn.functional import hardswish as hs\ny = hs(x)",
     "forbidden", "re-implements", "imports torch.nn.functional.hardswish"),
    ("nn.Hardswish", "01_hardswish", "act = nn.Hardswish()", "forbidden", "re-implements", "torch.nn.Hardswish"),
    ("alias of F", "01_hardswish", "G = F\ny = G.hardswish(x)", "forbidden", "re-implements",
     "uses torch.nn.functional.hardswish"),
    ("shadowed F", "01_hardswish", "def f(x, F=F):\n    return F.hardswish(x)", "forbidden", "re-implements",
     "hardswish"),
    ("star import", "01_hardswish", "from torch.nn.functional import *\ny = hardswish(x)",
     "forbidden", "re-implements", "uses hardswish"),
    ("import checkpoint as", "02_checkpointing", "import torch.utils.checkpoint as cp\ny = cp.checkpoint(f, x)",
     "forbidden", "re-implements", "imports torch.utils.checkpoint"),
    ("from checkpoint import", "02_checkpointing", "from torch.utils.checkpoint import checkpoint",
     "forbidden", "re-implements", "imports torch.utils.checkpoint.checkpoint"),
    ("torch_checkpoint", "02_checkpointing", "def checkpoint(f, *args):\n    return torch_checkpoint(f, *args)",
     "forbidden", "re-implements", "torch.utils.checkpoint.checkpoint"),
    ("checkpoint_sequential", "02_checkpointing", "y = checkpoint_sequential(model, 2, x)",
     "forbidden", "re-implements", "checkpoint_sequential"),
    ("torch.utils.checkpoint", "02_checkpointing", "y = torch.utils.checkpoint.checkpoint(f, x, use_reentrant=True)",
     "forbidden", "re-implements", "torch.utils.checkpoint.checkpoint"),
    ("F.silu", "04_modern_swish", "class S(Function):\n    @staticmethod\n    def forward(x):\n"
     "        return F.silu(x)", "forbidden", "re-implements", "torch.nn.functional.silu"),
    ("torch.nn.SiLU", "04_modern_swish", "y = torch.nn.SiLU()(x)", "forbidden", "re-implements", "torch.nn.SiLU"),
    ("aten.silu_backward", "04_modern_swish", "g = torch.ops.aten.silu_backward(grad_output, x)",
     "forbidden", "re-implements", "silu_backward"),
    ("silu through importlib", "04_modern_swish", 'import importlib\nf = importlib.import_module("torch").silu',
     "forbidden", "re-implements", "silu"),
    # IPython machinery
    ("get_ipython hook", "01_hardswish",
     'ip = get_ipython()\nip.events.register("pre_run_cell", lambda info: sys.displayhook(1.0))',
     "review", "IPython machinery", "uses get_ipython"),
    ("transform_cell", "01_hardswish", "get_ipython().input_transformers_cleanup.append(lambda lines: [])",
     "review", "IPython machinery", "get_ipython"),
    ("import IPython", "01_hardswish", "from IPython import get_ipython", "review", "IPython machinery",
     "imports IPython.get_ipython"),
    ("ipykernel", "01_hardswish", "import ipykernel.kernelapp", "review", "IPython machinery", "ipykernel"),
    ("zmq", "01_hardswish", "import zmq", "review", "IPython machinery", "imports zmq"),
    ("raw display", "01_hardswish", 'display({"text/plain": "1.0"}, raw=True)', "review", "IPython machinery",
     "displays a raw MIME bundle"),
    ("__IPYTHON__", "01_hardswish", "inside = __IPYTHON__", "review", "IPython machinery", "__IPYTHON__"),
    ("input history", "01_hardswish", 'hidden = "\\n".join(In)', "review", "IPython machinery", "uses In"),
    ("magics", "01_hardswish", "!cat /etc/passwd\n%load_ext autoreload", "review", "IPython machinery",
     "magics or shell escapes"),
    # tracing
    ("settrace", "01_hardswish", "import sys\nsys.settrace(tracer)", "review", "tracing", "sys.settrace"),
    ("setprofile from", "01_hardswish", "from sys import setprofile\nsetprofile(p)", "review", "tracing",
     "sys.setprofile"),
    ("threading.settrace", "01_hardswish", "import threading\nthreading.settrace(t)", "review", "tracing",
     "threading.settrace"),
    ("sys.monitoring", "01_hardswish", "sys.monitoring.use_tool_id(3, 'x')", "review", "tracing", "sys.monitoring"),
    ("audit hook", "01_hardswish", "import sys as s\ns.addaudithook(h)", "review", "tracing", "sys.addaudithook"),
    # code objects
    ("__code__ swap", "01_hardswish", "for v in list(globals().values()):\n    v.__code__ = nothing.__code__",
     "review", "code objects", "__code__"),
    ("__closure__", "01_hardswish", "cells = f.__closure__", "review", "code objects", "__closure__"),
    ("__defaults__", "01_hardswish", "f.__defaults__ = (True,)", "review", "code objects", "__defaults__"),
    ("__subclasses__", "01_hardswish", "kids = object.__subclasses__()", "review", "code objects", "__subclasses__"),
    ("__class__ assignment", "01_hardswish", "y.__class__ = Liar", "review", "code objects", "assigns y.__class__"),
    ("__getattribute__", "01_hardswish", "class P:\n    def __getattribute__(self, name):\n        return 1",
     "review", "code objects", "defines __getattribute__"),
    ("getattr literal dunder", "01_hardswish", 'g = getattr(fn, "__globals__")', "review", "code objects",
     "fn.__globals__"),
    # introspection
    ("inspect", "01_hardswish", "import inspect\nframe = inspect.currentframe()", "review", "introspection",
     "inspect"),
    ("setup inspect", "01_hardswish", "caller = inspect.stack()[1]", "review", "introspection", "inspect.stack"),
    ("_getframe", "01_hardswish", "import sys\nf = sys._getframe(1)", "review", "introspection", "sys._getframe"),
    ("f_back", "01_hardswish", "def f(frame):\n    return frame.f_back.f_globals", "review", "introspection",
     "frame.f_back.f_globals"),
    ("tb_frame", "01_hardswish", "try:\n    1 / 0\nexcept Exception as e:\n    g = e.__traceback__.tb_frame",
     "review", "introspection", "tb_frame"),
    ("gc", "01_hardswish", "import gc\nfor o in gc.get_objects():\n    pass", "review", "introspection",
     "gc.get_objects"),
    # native/unsafe
    ("ctypes", "01_hardswish", "import ctypes\nctypes.string_at(0)", "review", "native/unsafe", "ctypes"),
    ("pickle", "01_hardswish", "import pickle as p\np.loads(blob)", "review", "native/unsafe", "pickle.loads"),
    ("marshal", "01_hardswish", "from marshal import loads", "review", "native/unsafe", "marshal.loads"),
    ("dill", "01_hardswish", "import dill", "review", "native/unsafe", "dill"),
    # builtins
    ("builtins module", "01_hardswish", "import builtins\nbuiltins.abs = lambda x: 0", "review", "builtins",
     "builtins"),
    ("globals", "01_hardswish", 'globals()["_compare"] = None', "review", "builtins", "uses globals"),
    ("setattr", "01_hardswish", 'setattr(torch, "allclose", lambda *a, **k: True)', "review", "builtins",
     "uses setattr"),
    ("delattr", "01_hardswish", "delattr(obj, name)", "review", "builtins", "delattr"),
    ("exec", "01_hardswish", "exec(code)", "review", "builtins", "uses exec"),
    ("eval", "01_hardswish", 'f = eval("F." + "hard" + "swish")', "review", "builtins", "uses eval"),
    ("compile", "01_hardswish", "c = compile(src, 'x', 'exec')", "review", "builtins", "compile"),
    ("__import__", "01_hardswish", 'sp = __import__("subpro" + "cess")', "review", "builtins", "__import__"),
    ("importlib", "01_hardswish", "import importlib\nm = importlib.import_module(name)", "review", "builtins",
     "importlib"),
    ("breakpoint", "01_hardswish", "breakpoint()", "review", "builtins", "breakpoint"),
    ("__builtins__", "01_hardswish", '__builtins__["len"] = lambda x: 0', "review", "builtins", "__builtins__"),
    ("exec by another name", "01_hardswish", "run = exec\nrun(code)", "review", "builtins", "uses exec"),
    # torch internals, modes and overrides
    ("dispatch mode", "01_hardswish",
     "from torch.utils._python_dispatch import TorchDispatchMode\nclass Q(TorchDispatchMode):\n"
     "    def __torch_dispatch__(self, func, types, args=(), kwargs=None):\n        return func(*args)",
     "review", "torch internals", "defines __torch_dispatch__"),
    ("function mode", "01_hardswish", "from torch.overrides import TorchFunctionMode", "review", "torch internals",
     "torch.overrides.TorchFunctionMode"),
    ("Tensor subclass", "01_hardswish", "class Liar(torch.Tensor):\n    pass", "review", "torch internals",
     "subclasses a Tensor (Liar)"),
    ("__torch_function__", "01_hardswish", "class W:\n    __torch_function__ = handler", "review",
     "torch internals", "__torch_function__"),
    ("torch.library", "01_hardswish", 'lib = torch.library.Library("aten", "IMPL")', "review", "torch internals",
     "torch.library.Library"),
    ("dynamo", "01_hardswish", "torch._dynamo.reset()", "review", "torch internals", "torch._dynamo.reset"),
    ("disable modes", "01_hardswish", "from torch.utils._mode_utils import _disable_current_modes",
     "review", "torch internals", "_disable_current_modes"),
    ("private gradcheck", "01_hardswish", "ok = torch.autograd.gradcheck._allclose_with_type_promotion(a, b)",
     "review", "torch internals", "torch.autograd.gradcheck._allclose_with_type_promotion"),
    # patching modules
    ("patch allclose", "01_hardswish", "torch.allclose = lambda *a, **k: True", "review", "patching modules",
     "patches torch.allclose"),
    ("patch assert_close", "01_hardswish", "torch.testing.assert_close = lambda *a, **k: None", "review",
     "patching modules", "patches torch.testing.assert_close"),
    ("patch dunder", "01_hardswish", "torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)",
     "review", "patching modules", "patches torch.Tensor.__sub__"),
    ("patch Function.apply", "01_hardswish", "Function.apply = classmethod(lambda cls, *a: a[0])", "review",
     "patching modules", "patches torch.autograd.Function.apply"),
    ("patch F", "01_hardswish", "F.relu6 += 0", "review", "patching modules",
     "patches torch.nn.functional.relu6"),
    ("delete attribute", "01_hardswish", "del torch.testing.assert_close", "review", "patching modules",
     "deletes torch.testing.assert_close"),
    ("patch through alias", "01_hardswish", "T = torch.Tensor\nT.__gt__ = lambda a, b: True", "review",
     "patching modules", "patches torch.Tensor.__gt__"),
    ("patch through import alias", "01_hardswish",
     "import torch.autograd.gradcheck as _gc\n_gc._allclose_with_type_promotion = lambda *a, **k: True",
     "review", "patching modules", "patches torch.autograd.gradcheck._allclose_with_type_promotion"),
    ("patch math", "01_hardswish", "import math as m\nm.isclose = lambda *a, **k: True", "review",
     "patching modules", "patches math.isclose"),
    ("rebind gradcheck", "04_modern_swish", "gradcheck = gradgradcheck = lambda *a, **k: True", "review",
     "patching modules", "rebinds gradgradcheck"),
    ("patch in a loop", "01_hardswish", "for name in names:\n    warnings.warn = print", "review",
     "patching modules", "patches warnings.warn"),
    ("rebind the probe", "01_hardswish", "_probe = lambda *a, **k: None", "review", "patching modules",
     "rebinds _probe"),
    # files and OS
    ("open", "01_hardswish", 'with open("sitecustomize.py", "w") as fh:\n    fh.write(patch)', "review",
     "files and OS", "uses open"),
    ("os.path", "01_hardswish", "p = os.path.join(os.getcwd(), 'x')", "review", "files and OS", "os.path.join"),
    ("os.remove", "01_hardswish", "os.remove(path)", "review", "files and OS", "os.remove"),
    ("environ write", "01_hardswish", 'os.environ["LAB_DEVICE"] = "cpu"', "review", "files and OS", "os.environ"),
    ("pathlib", "01_hardswish", "from pathlib import Path\nPath('x').write_text('y')", "review", "files and OS",
     "pathlib.Path"),
    ("shutil", "01_hardswish", "import shutil\nshutil.rmtree('/tmp/x')", "review", "files and OS", "shutil.rmtree"),
    ("glob", "01_hardswish", "import glob\nfiles = glob.glob('../*')", "review", "files and OS", "glob.glob"),
    ("tempfile", "01_hardswish", "import tempfile", "review", "files and OS", "imports tempfile"),
    ("io", "01_hardswish", "import io\nio.open('x')", "review", "files and OS", "io.open"),
    # network
    ("socket", "01_hardswish", "import socket\nsocket.create_connection(('127.0.0.1', 9))", "review", "network",
     "socket.create_connection"),
    ("urllib", "01_hardswish", "from urllib.request import urlopen", "review", "network", "urllib.request.urlopen"),
    ("requests", "01_hardswish", "import requests as r\nr.post(url, data=loot)", "review", "network",
     "requests.post"),
    ("http", "01_hardswish", "import http.client", "review", "network", "http.client"),
    ("asyncio connection", "01_hardswish", "import asyncio\nasyncio.open_connection('h', 1)", "review", "network",
     "asyncio.open_connection"),
    # processes
    ("subprocess alias", "01_hardswish", "import subprocess as sp\nsp.Popen(['sleep', '600'])", "review",
     "processes", "subprocess.Popen"),
    ("os.system", "01_hardswish", "os.system('kill -9 1')", "review", "processes", "os.system"),
    ("os.fork", "01_hardswish", "pid = os.fork()", "review", "processes", "os.fork"),
    ("os.execv", "01_hardswish", "os.execv('/bin/sh', ['sh'])", "review", "processes", "os.execv"),
    ("os._exit", "01_hardswish", "import os\nos._exit(0)", "review", "processes", "os._exit"),
    ("multiprocessing", "01_hardswish", "import multiprocessing as mp\nmp.Process(target=f).start()", "review",
     "processes", "multiprocessing.Process"),
    ("signal", "01_hardswish", "import signal\nsignal.signal(signal.SIGALRM, signal.SIG_IGN)", "review",
     "processes", "signal.signal"),
    ("threading", "01_hardswish", "from threading import Thread", "review", "processes", "threading.Thread"),
    ("concurrent", "01_hardswish", "import concurrent.futures", "review", "processes", "concurrent.futures"),
    ("pty", "01_hardswish", "import pty", "review", "processes", "pty"),
    # dynamic lookups
    ("computed getattr", "01_hardswish", 'fwd = getattr(F, "hard" + "swish")', "review", "dynamic lookups",
     "getattr with a computed name"),
    ("computed hasattr", "01_hardswish", "ok = hasattr(torch, name)", "review", "dynamic lookups",
     "hasattr with a computed name"),
    ("sys.modules", "01_hardswish", 'import sys\nsys.modules["torch"].allclose = None', "review",
     "dynamic lookups", "sys.modules"),
    ("vars", "01_hardswish", "fn = vars(F)[name]", "review", "dynamic lookups", "uses vars"),
    ("__dict__", "01_hardswish", 'fn = F.__dict__[name]', "review", "dynamic lookups", "__dict__"),
    # does not parse
    ("syntax error", "01_hardswish", "def f(:\n    pass", "review", "does not parse", "does not parse"),
    # nested past Python's parser (MemoryError, not SyntaxError): a finding, never a crash of the grading pass
    ("too large to parse", "01_hardswish", "x = " + "-" * 200_000 + "1", "review", "does not parse", "too large"),
    ("too deep to parse", "01_hardswish", "x = " + "-" * 90_000 + "1", "review", "does not parse", "too deeply"),
    ("too deep to parse", "01_hardswish", "f = " + "lambda: " * 3000 + "1", "review", "does not parse", "too deeply"),
]


@pytest.mark.parametrize(("lesson", "code", "kind", "category", "what"), [a[1:] for a in ATTACKS],
                         ids=[a[0] for a in ATTACKS])
def test_attack_is_found(lesson, code, kind, category, what):
    if kind == "forbidden":  # what an answer runs: inside its function (module level is a scratch comparison)
        code = "def answer(x):\n" + textwrap.indent(code, "    ")
    found = scan_source(code, "answer", FORBIDDEN[lesson])
    assert any(f.kind == kind and f.category == category and what in f.what for f in found), found
    if kind == "review":
        assert not any(f.kind == "forbidden" for f in found), found


def test_computed_getattr_is_review_not_forbidden():
    found = scan_source('fwd = getattr(F, "hard" + "swish")', "answer", FORBIDDEN["01_hardswish"])
    assert [(f.kind, f.category) for f in found] == [("review", "dynamic lookups")]


BENIGN = [
    "ctx.x = x",
    "self.w = w",
    "y = x.clamp(0, 6)",
    "y = torch.where(x > 0, x, torch.zeros_like(x))",
    'def f(x):\n    """Like hardswish, but by hand: HardSwish(x) = x * relu6(x + 3) / 6."""\n    return x',
    '"""The module docstring mentions F.hardswish and torch.utils.checkpoint."""',
    "def checkpoint(function, *args, preserve_rng_state=True):\n"
    "    return CheckpointFunction.apply(function, preserve_rng_state, *args)",
    "y = checkpoint(functools.partial(block, layer), x)",
    'state = getattr(ctx, "cpu_state", None)',
    'if hasattr(ctx, "cuda_states"):\n    pass',
    'device = os.environ.get("LAB_DEVICE", "cpu")',
    'device = os.environ["LAB_DEVICE"]',
    "with torch.random.fork_rng(devices=ctx.devices, enabled=ctx.preserve_rng_state):\n"
    "    torch.set_rng_state(ctx.cpu_state)",
    "states = [torch.cuda.get_rng_state(d) for d in ctx.devices] if torch.cuda.is_initialized() else []",
    "ok = torch.is_tensor(a) and isinstance(a, torch.Tensor)",
    "class CheckpointFunction(Function):\n    @staticmethod\n    def forward(ctx, run_function, *args):\n"
    "        ctx.run_function = run_function\n        return run_function(*args)",
    "class ModernSwishFunction(Function):\n    generate_vmap_rule = True",
    "silu_x = x * torch.sigmoid(x)\ny = silu_x * 2",
    "def f(hardswish_out):\n    return hardswish_out + 1",
    'print(f"largest error: {gap:.3f}")',
    'label = "hard swish, by hand"',
    "torch.autograd.backward([o for o, _ in pairs], [g for _, g in pairs])",
    "x = x.detach().requires_grad_(x.requires_grad)",
    "layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))",
    "y = math.sqrt(2.0) * F.gelu(x)",
    "outs = out if isinstance(out, tuple) else (out,)",
    "import torch\nimport torch.nn.functional as F\nfrom torch.autograd import Function",
    "def hard_swish_custom(x):\n    return HardSwishFunction.apply(x)",
    "with torch.no_grad():\n    w = torch.empty(3).uniform_()",
    "model.weight.data = torch.zeros(3)",
    "time.sleep(0)",
    "def f(signal):\n    return signal.sum()",
]


@pytest.mark.parametrize("code", BENIGN)
def test_benign_look_alikes_are_clean(code):
    assert scan_source(code, "answer", ALL_FORBIDDEN) == []


@pytest.mark.parametrize(("pattern", "chain", "hit"), [
    ("hardswish*", "torch.nn.functional.hardswish", True),
    ("hardswish*", "torch.ops.aten.hardswish_backward", True),
    ("Hardswish", "torch.nn.HardSwish", False),
    ("utils.checkpoint", "torch.utils.checkpoint.checkpoint", True),
    ("utils.checkpoint", "checkpoint", False),
    ("utils.checkpoint", "my.utils", False),
    ("silu*", "x.sigmoid", False),
])
def test_patterns_match_consecutive_components(pattern, chain, hit):
    assert matches(pattern, chain.split(".")) is hit


def test_notebook_scans_answers_and_added_cells_only():
    nb = _notebook(
        ("import subprocess as sp\ntorch.allclose = None", {"grade_id": "setup", "locked": True, "solution": False}),
        ("hs = F.hardswish\nhs = F.hardswish", {"grade_id": "answer", "solution": True, "locked": False}),
        ("sp.run(['ls'])", None),
        ("import pickle", {"grade_id": "test_x", "grade": True, "locked": True, "points": 1}),
    )
    found = scan_notebook(nb, FORBIDDEN["01_hardswish"])
    assert found == [
        Finding("forbidden", "re-implements", "uses torch.nn.functional.hardswish", "answer", 1),
        Finding("review", "processes", "uses subprocess.run", "cell 2", 1),  # alias from the locked cell
    ]
    assert scan_notebook(nb, (), student_cells=lambda c: "nbgrader" not in c.metadata) == [found[1]]


def test_notebook_knows_the_students_own_names_across_cells():
    nb = _notebook(("def silu_by_hand(x):\n    return x * torch.sigmoid(x)", None),
                   ("y = silu_by_hand(x)", {"grade_id": "answer", "solution": True}))
    assert scan_notebook(nb, FORBIDDEN["04_modern_swish"]) == []


def test_notebook_resolves_aliases_across_cells():
    nb = _notebook(("T = torch.Tensor", None), ("T.__gt__ = lambda a, b: True", None))
    assert [(f.category, f.what) for f in scan_notebook(nb)] == [("patching modules", "patches torch.Tensor.__gt__")]


def test_findings_are_deduplicated_and_sorted():
    found = scan_source("import os\nos.system('a')\nos.system('b')\ntorch.allclose = 1", "c", ())
    assert [(f.what, f.line) for f in found] == [
        ("imports os", 1), ("uses os.system", 2), ("patches torch.allclose", 4)]


def test_a_cell_that_does_not_parse_is_a_finding_not_a_crash():
    [finding] = scan_source("class :", "cell 3", ALL_FORBIDDEN)
    assert (finding.kind, finding.category, finding.cell, finding.line) == ("review", "does not parse", "cell 3", 1)
