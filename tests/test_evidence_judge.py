"""The judge on evidence and hostile records (labs/grading/judge.py): a test scores zero for delegation only on
its own probes' logs, what cannot be proven is a flag, and no message carries the kernel's text."""

from __future__ import annotations

import json

from labs.grading import judge
from tests.test_judge import REF, display, honest, record, tensor

HIDDEN = "_probe(f'forward ({_dtype})', lambda: hard_swish_custom(_x.clone()), at=_x, kinks=_KINKS)"


def cell(*outputs, ops=frozenset(), calls=frozenset(), ref=REF):
    return judge.judge_cell(ref, list(outputs), ops, calls)


def test_honest_records_pass_without_evidence_or_flags():
    result = cell(*honest(), ops={"hardswish"})
    assert (result.message, result.evidence, result.flags) == (None, [], [])


def test_the_whole_op_log_is_read_not_its_first_500_names():
    ops = [f"op{i}" for i in range(1500)] + ["hardswish"]
    rec = dict(REF["forward"], ops=ops)
    result = cell(display(rec), *honest()[1:], ops={"hardswish"})
    assert result.evidence == ["forward: ran aten.hardswish"] and "scores zero" in result.message


def test_an_over_long_log_is_a_flag_and_still_evidence():
    rec = dict(REF["forward"], ops=["hardswish"] + ["x"] * (judge.MAX_LOG + 5))
    result = cell(display(rec), *honest()[1:], ops={"hardswish"})
    assert result.evidence and any("garbled" in f for f in result.flags)


def test_an_op_the_solutions_probe_runs_too_is_not_evidence():
    ref = {"forward": dict(REF["forward"], ops=["hardswish", "mul"])}  # the grader's own code ran it
    result = cell(display(dict(REF["forward"], ops=["hardswish"])), ops={"hardswish"}, ref=ref)
    assert result.message is None and result.evidence == []


def test_a_declared_python_call_is_evidence():
    rec = dict(REF["forward"], calls=["torch.utils.checkpoint.checkpoint", "torch.autograd.grad"])
    result = cell(display(rec), *honest()[1:], calls={"torch.utils.checkpoint.checkpoint"})
    assert result.evidence == ["forward: ran torch.utils.checkpoint.checkpoint"]
    assert "scores zero" in result.message


def test_an_emptied_op_log_is_flagged_when_the_solutions_was_not():
    """`global _probe` rebinding the probe, or a forged record: every op log says [] (attack F)."""
    ref = {"forward": dict(REF["forward"], ops=["mul", "add"])}
    result = cell(display(dict(REF["forward"], ops=[])), ref=ref)
    assert result.message is None and any("no operator was logged" in f for f in result.flags)
    result = cell(display({k: v for k, v in REF["forward"].items() if k != "ops"}), ref=ref)
    assert any("no operator log" in f for f in result.flags)


def test_threads_unhooked_and_strings_are_flags_not_scores():
    rec = dict(REF["forward"], threads=1, unhooked=True, strings=2)
    result = cell(display(rec), *honest()[1:])
    assert result.message is None
    assert [f.split(": ", 1)[1] for f in result.flags] == [
        "your code started a thread (only threads started through threading are logged) during this probe",
        "your code removed the probe kit's hooks (the logs may be incomplete) during this probe",
        "your code ran code from a string (exec, eval or compile) during this probe"]


def test_what_the_solutions_own_run_reports_flags_nothing():
    """Found grading the corpora: lesson 3's own cells leave a thread alive, so every vmap probe of every
    honest answer reported one and was flagged. The solution's run of the same probe is the baseline."""
    ref = {"forward": dict(REF["forward"], threads=1, strings=1, unhooked=False)}
    same = cell(display(dict(REF["forward"], threads=1, strings=1, unhooked=False)), ref=ref)
    assert (same.message, same.flags) == (None, [])
    more = cell(display(dict(REF["forward"], threads=2, strings=1, unhooked=True)), ref=ref)
    assert [f.split(": ", 1)[1] for f in more.flags] == [
        "your code started a thread (only threads started through threading are logged) during this probe",
        "your code removed the probe kit's hooks (the logs may be incomplete) during this probe"]


def test_a_probe_key_of_hidden_test_text_is_never_echoed():
    """A kernel that names its records after its hidden cells' lines: counted, never shown (attack E)."""
    leak = display(record(HIDDEN, 1))
    result = cell(*honest(), leak, leak)
    assert result.message is None
    message = cell(leak, leak, display(REF["facts"]), display(record("bytes", 1))).message
    assert HIDDEN not in message and "_probe" not in message


def test_a_duplicated_known_key_names_only_the_graders_key():
    message = cell(*honest(), display(REF["forward"])).message
    assert message == "The probe data of this test is malformed (two records for 'forward'), so it scores zero."


def test_an_output_that_prints_hidden_source_never_reaches_a_message():
    """Returned text, an object's type name, an exception name: the student's text never shows."""
    for value in (HIDDEN, {"object": HIDDEN[:60]}):
        message = cell(display(record("forward", value)), *honest()[1:]).message
        assert message and HIDDEN[:20] not in message and "_probe" not in message, message
    message = cell(display(record("facts", {"list": ["torch.float32", {"list": [3, 4]}, HIDDEN]})),
                   display(REF["forward"]), display(record("bytes", 1))).message
    assert "expected True, got a text" in message and HIDDEN[:20] not in message


def test_a_record_nested_100_deep_costs_only_that_test():
    deep = {"list": []}
    for _ in range(100):
        deep = {"list": [deep]}
    message = cell(display(record("forward", deep)), *honest()[1:]).message
    assert "nested too deeply" in message
    text = json.dumps(record("forward", 1)).replace('"value": 1', '"value": ' + "[" * 100_000 + "]" * 100_000)
    big = {"output_type": "display_data", "metadata": {}, "data": {judge.MIME: text}}
    assert "malformed" in cell(big, *honest()[1:]).message  # json's own recursion is never reached


def test_a_record_of_a_million_elements_costs_only_that_test():
    message = cell(display(record("forward", {"list": [0] * 10**6})), *honest()[1:]).message
    assert "too many parts" in message
    message = cell(display(dict(REF["forward"], ops=["mul"] * 10**6)), *honest()[1:]).message
    assert "too many parts" in message


def test_an_unhashable_error_name_is_an_exception_not_a_crash():
    message = cell(display({"v": 1, "key": "forward", "error": ["RuntimeError"], "ops": []}), *honest()[1:]).message
    assert message == "forward: your code raised an exception."


def test_an_honest_tensor_still_passes_after_bounding():
    rec = record("forward", tensor([0.0, 0.0, 0.0, 3.0, 4.0]), at=tensor([1.0] * 5))
    assert cell(display(rec), *honest()[1:]).message is None
