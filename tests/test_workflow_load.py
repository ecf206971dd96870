"""Load never costs marks (labs/grading/fanout.py: retry, Contention). A notebook that ran out of time
is run again alone with the same limits; if it still runs out of time while its own processes
waited for a CPU, it is a grading error to rerun, never a wrong answer. An honest sleep keeps
its timeout. UNSAFE runs (no sandbox: what is tested is the retry and the measure, not the
sandbox), each cell timeout a few seconds."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

from labs.grading import execute, fanout, runs, sandbox

# About 1 s of one idle core (pure Python), 4 s of timeout: on time unless the CPU is taken away.
WORK = "t = 0\nfor i in range(12_000_000):\n    t += i\nprint(t)"


@contextlib.contextmanager
def busy_cpus(n: int = 8):
    """`n` busy loops, each in a session of its own (an autogroup of its own: nice would not
    matter), on the machine's cores for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"], start_new_session=True)
             for _ in range(n)]
    try:
        time.sleep(0.5)
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_timeout_under_cpu_contention_is_a_grading_error():
    limits = sandbox.Limits(unsafe=True, cell_seconds=4)
    with busy_cpus():
        again = fanout.retry([("code", WORK)], limits)
    assert again.timed_out, f"the work finished in time despite the contention: {again.run['statuses']}"
    assert again.overloaded and again.starved >= fanout.STARVED, again.starved
    assert "overloaded" in again.note() and "rerun" in again.note()


def test_an_honest_sleep_on_a_machine_that_gives_it_the_cpu_keeps_its_timeout():
    limits = sandbox.Limits(unsafe=True, cell_seconds=4)
    again = fanout.retry([("code", "import time\ntime.sleep(10**9)")], limits)
    assert again.timed_out and again.run["statuses"].get(0) == "timeout", again.run["statuses"]
    assert not again.overloaded and again.starved < fanout.STARVED, again.starved


def test_the_same_work_on_time_without_contention():
    """The control of the first test: the work itself fits its timeout."""
    again = fanout.retry([("code", WORK)], sandbox.Limits(unsafe=True, cell_seconds=4))
    assert not again.timed_out and again.run["statuses"].get(0) == "ok", again.run["statuses"]


def test_a_notebook_that_competes_with_itself_keeps_its_timeout():
    """Attack kept as a test: a notebook whose own children keep the CPUs busy waited for a CPU
    too, and was called a grading error (the bad-submission batch's memory-children case), so a
    student could turn any timeout into a rerun. Starved means the REST of the machine left the
    notebook less than one free CPU."""
    hog = ("import multiprocessing as mp, time\n"
           "def spin():\n    while True: pass\n"
           "procs = [mp.get_context('fork').Process(target=spin, daemon=True) for _ in range(4)]\n"
           "[p.start() for p in procs]\n" + WORK)
    again = fanout.retry([("code", hog)], sandbox.Limits(unsafe=True, cell_seconds=4))
    assert again.timed_out, again.run["statuses"]
    assert again.starved >= fanout.STARVED, again.starved  # it did wait, on itself
    # Its own wait decides nothing: only what the rest of the machine took (about 0 on an idle one).
    assert again.overloaded == (again.others_cores > (os.cpu_count() or 1) - 1), (again.starved, again.others_cores)


def test_a_probe_kit_that_did_not_load_is_retried_and_never_a_score():
    """The kit is the grader's first cell, before any student code: when it did not finish (it
    imports torch; a loaded machine slowed it past the timeout) the run is retried, and a retry
    that fails the same way is a grading error whatever the load."""
    failed = {"statuses": {"3": "ok"}, "events": [execute.KIT_FAILED]}
    assert runs.timed_out(failed) and runs.kit_failed(failed)
    assert not runs.timed_out({"statuses": {"3": "ok"}, "events": []})
    note = fanout.Retry(failed, True, 0.0, True).note()
    assert "probe kit" in note and "rerun" in note and "not a score" in note
