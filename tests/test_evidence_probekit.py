"""The probe kit's logs (labs/grading/probekit.py), run in this process as the kernel runs it: what the
student's code ran shows in the op and call logs, from other threads too, and what the kit cannot
log (threads, strings, its hooks removed) is reported for review."""

from __future__ import annotations

import pytest

from labs import ROOT
from labs.grading import judge

KIT = (ROOT / "labs" / "grading" / "probekit.py").read_text()
CELL = "/tmp/ipykernel_0/cell.py"  # notebook code, as ipykernel names it (not a library file)


@pytest.fixture(scope="module")
def kernel():
    ns = {"__name__": "__main__"}
    exec(compile(KIT, "/tmp/ipykernel_0/kit.py", "exec"), ns)
    records = []
    ns["_lab_display"] = lambda data, raw: records.append(data[judge.MIME])
    exec(compile("import threading\nimport torch\nimport torch.nn.functional as F\n"
                 "from torch.utils.checkpoint import checkpoint as torch_checkpoint\n"
                 "x = torch.linspace(-5, 5, 11, dtype=torch.float64)\n"
                 "def mine(x):\n    return x * (x + 3).clamp(0, 6) / 6\n", CELL, "exec"), ns)

    def probe(code: str) -> dict:
        records.clear()
        exec(compile(code + "\n_probe('p', lambda: answer(x))", CELL, "exec"), ns)
        (rec,) = records
        return rec
    return probe


def test_an_honest_answer_logs_its_ops_and_no_flag(kernel):
    rec = kernel("answer = mine")
    assert {"mul", "clamp"} <= set(rec["ops"]) and "hardswish" not in rec["ops"]
    assert (rec["threads"], rec["unhooked"], rec["strings"]) == (0, False, 0)
    assert len(rec["calls"]) < 100


def test_the_builtin_run_from_a_worker_thread_is_logged_and_flagged(kernel):
    rec = kernel("def answer(x):\n    out = []\n"
                 "    t = threading.Thread(target=lambda: out.append(F.hardswish(x)))\n"
                 "    t.start()\n    t.join()\n    return out[0]")
    assert "hardswish" in rec["ops"] and rec["threads"] == 1


def test_a_python_builtin_shows_in_the_call_log_however_reached(kernel):
    rec = kernel("import operator\nget = operator.attrgetter('utils.checkpoint.checkpoint')\n"
                 "def answer(x):\n    x = x.clone().requires_grad_(True)\n"
                 "    return get(torch)(mine, x, use_reentrant=False)")
    assert "torch.utils.checkpoint.checkpoint" in rec["calls"]
    assert "torch.utils.checkpoint.checkpoint" not in kernel("answer = mine")["calls"]


def test_code_run_from_a_string_is_counted_and_still_logged(kernel):
    rec = kernel("def answer(x):\n    return eval('F.hardswish(x)')")
    assert rec["strings"] == 1 and "hardswish" in rec["ops"]
    rec = kernel("import code\ndef answer(x):\n    code.InteractiveInterpreter(locals={'F': F, 'x': x, 'o': []})"
                 ".runsource('o.append(F.hardswish(x))')\n    return mine(x)")
    assert "hardswish" in rec["ops"]


def test_removing_the_kits_hooks_is_reported(kernel):
    rec = kernel("import sys\ndef answer(x):\n    sys.setprofile(None)\n    return mine(x)")
    assert rec["unhooked"] is True

