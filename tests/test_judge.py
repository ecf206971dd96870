"""The judge (labs/grading/judge.py) on hostile probe data: whatever a kernel sends, a test scores only
when its data equals the solution's, and nothing sent crashes the judge or slips a message
of the kernel's choosing into feedback."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from labs.grading import judge


def tensor(values, dtype="float64", shape=None) -> dict:
    arr = np.asarray(values, dtype={"float64": "<f8", "float32": "<f4", "bool": "|b1", "int64": "<i8"}[dtype])
    return {"tensor": dtype, "shape": list(arr.shape if shape is None else shape),
            "b64": base64.b64encode(arr.tobytes()).decode()}


def record(key, value=None, error=None, **options) -> dict:
    rec = {"v": 1, "key": key, "ops": []}
    rec.update({"error": error} if error else {"value": value})
    rec.update(options)
    return rec


def display(rec) -> dict:
    return {"output_type": "display_data", "data": {judge.MIME: rec}, "metadata": {}}


X = [-4.0, -3.0, 0.0, 3.0, 4.0]
REF = {
    "forward": record("forward", tensor([0.0, 0.0, 0.0, 3.0, 4.0]), at=tensor(X), kinks=[-3, 3]),
    "facts": record("facts", {"list": ["torch.float32", {"list": [3, 4]}, True]}),
    "bytes": record("bytes", 4096, compare="at_most"),
}


def verdict(*outputs, forbidden=frozenset()):
    return judge.verdict(REF, list(outputs), forbidden)


def honest():
    return [display(REF["forward"]), display(REF["facts"]), display(record("bytes", 4096))]


def test_the_solutions_own_records_pass():
    assert verdict(*honest()) is None


def test_extra_probes_and_other_outputs_are_ignored():
    noise = [{"output_type": "stream", "name": "stdout", "text": "1.0"},
             {"output_type": "execute_result", "data": {"text/plain": "10"}, "metadata": {}, "execution_count": 1},
             {"output_type": "error", "ename": "X", "evalue": "y", "traceback": []},
             display(record("something else", 1))]
    assert verdict(*noise, *honest()) is None


@pytest.mark.parametrize("bad", [
    "not a dict", 42, None, [], {"key": 7}, {"no key": 1}, {"key": "x" * 1000},
])
def test_malformed_records_fail_the_test_with_a_message(bad):
    message = verdict(*honest(), display(bad))
    assert message and "malformed" in message


def test_a_duplicated_record_fails():
    message = verdict(*honest(), display(REF["forward"]))
    assert message and "two records" in message


def test_a_missing_probe_fails_and_says_so():
    message = verdict(display(REF["forward"]), display(REF["facts"]))
    assert message.startswith("bytes: no result")


@pytest.mark.parametrize("value, expect", [
    (tensor([0.0, 0.0, 0.0, 3.0, 4.0], dtype="float32"), "dtype"),
    (tensor([0.0, 0.0, 0.0, 3.0]), "shape"),
    (tensor([0.0, -0.5, 0.0, 3.0, 4.0]), "the kink x = -3"),
    (tensor([0.0, 0.0, 0.0, 3.0, float("nan")]), "x > 3"),
    (tensor([0.0, 0.0, 0.0, 3.0, float("inf")]), "wrong at 1 of 5"),
    ({"list": [1, 2]}, "expected a tensor"),
    (5, "expected a tensor"),
    ({"object": "Liar"}, "expected a tensor"),
    ("1.0", "expected a tensor"),
])
def test_wrong_values_fail_with_the_judges_own_message(value, expect):
    rec = record("forward", value)
    message = verdict(display(rec), display(REF["facts"]), display(record("bytes", 1)))
    assert message and expect in message, message


@pytest.mark.parametrize("value", [
    {"tensor": "float64", "shape": [5], "b64": "!!!"},                      # not base64
    {"tensor": "float64", "shape": [6], "b64": tensor(X)["b64"]},           # bytes do not match the shape
    {"tensor": "float64", "shape": [1 << 30], "b64": ""},                   # huge
    {"tensor": "float64", "shape": [-1], "b64": ""},
    {"tensor": "object", "shape": [1], "b64": "AAAAAAAAAAA="},              # not a dtype the protocol has
    {"tensor": "float64", "shape": [5], "b64": tensor(X)["b64"], "x": 1},   # extra field
    {"float": "1" * 100},
    {"list": [0] * 1000},
])
def test_hostile_values_are_malformed_not_crashes(value):
    rec = record("forward", value)
    message = verdict(display(rec), display(REF["facts"]), display(record("bytes", 1)))
    assert message and "malformed" in message, message


def test_a_huge_record_is_refused_before_it_is_decoded():
    big = {"output_type": "display_data", "metadata": {},
           "data": {judge.MIME: json.dumps(record("forward", "x" * (judge.MAX_RECORD_BYTES + 10)))}}
    message = verdict(big, display(REF["facts"]), display(record("bytes", 1)))
    assert message and "too large" in message


def test_the_students_options_are_ignored():
    """Tolerances, compare mode and hints come from the solution's record only."""
    loose = record("forward", tensor([9.0, 9.0, 9.0, 9.0, 9.0]), atol=1e9, rtol=1e9, compare="at_most",
                   hint="<script>alert(1)</script>")
    message = verdict(display(loose), display(REF["facts"]), display(record("bytes", 1)))
    assert message and "wrong at" in message and "<script>" not in message
    assert "expected at most 4096" in verdict(*honest()[:2], display(record("bytes", 4097)))


def test_exception_names_reach_the_student_only_when_known():
    ok = verdict(display(record("forward", error="NotImplementedError")), *honest()[1:])
    assert "raised NotImplementedError" in ok
    sneaky = verdict(display(record("forward", error="def _probe(): hidden test code")), *honest()[1:])
    assert "raised an exception" in sneaky and "hidden" not in sneaky


def test_nan_where_the_solution_has_nan_is_equal():
    ref = {"v": record("v", tensor([float("nan"), 1.0]))}
    assert judge.verdict(ref, [display(record("v", tensor([float("nan"), 1.0])))]) is None
    assert judge.verdict(ref, [display(record("v", tensor([0.0, 1.0])))]) is not None


def test_a_delegated_builtin_in_the_op_log_fails():
    rec = dict(REF["forward"], ops=["mul", "hardswish"])
    message = verdict(display(rec), *honest()[1:], forbidden=frozenset({"hardswish"}))
    assert "aten.hardswish" in message


def test_a_cell_that_did_not_run_fails_with_why():
    assert "Not run: the kernel died" in judge.verdict(REF, honest(), not_run="the kernel died")


def test_the_reference_must_be_clean():
    assert judge.check_reference({"t": {"a": record("a", error="RuntimeError")}}, ["t"])
    assert judge.check_reference({}, ["t"]) == ["t: the solution produced no probe record"]
    assert judge.check_reference({"t": {"a": record("a", 1)}}, ["t"]) == []
