"""One notebook, run once in a sandbox with the probe kit first.

`execute` inserts labs/grading/probekit.py as cell 0, runs the notebook with `sandbox.run_notebook`
under `limits`, and returns the `sandbox.Run` indexed like the notebook (the kit's cell removed).
A kit that did not load is the event `KIT_FAILED`: never the student's doing (the fan-out retries it).
"""

from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

import nbformat

from . import sandbox

KIT = Path(__file__).with_name("probekit.py")
KIT_SECONDS = 180  # the kit's own cell timeout (it imports torch)
KIT_FAILED = "the grader's probe kit did not load"


def limits(cell_seconds: int = 60) -> sandbox.Limits:
    return sandbox.Limits(cell_seconds=cell_seconds, unsafe=os.environ.get("LAB_GRADE_UNSAFE") == "1")


def execute(nb, cell_seconds: int = 60, lim: sandbox.Limits | None = None) -> sandbox.Run:
    """Run a (runnable) notebook with the probe kit first, in a sandbox; results indexed like `nb`."""
    with_kit = copy.deepcopy(nb)
    with_kit.cells.insert(0, nbformat.v4.new_code_cell(KIT.read_text()))
    lim = lim or limits(cell_seconds)
    # The kit imports torch before any student code: on a loaded machine that can take longer than a
    # student's cell may, and it is never the student's doing (labs/grading/fanout.py retries a kit that failed).
    lim = dataclasses.replace(lim, first_cell_seconds=max(KIT_SECONDS, lim.cell_seconds))
    raw = sandbox.run_notebook(with_kit, lim)
    run = sandbox.Run(events=raw.events, seconds=raw.seconds, timing=dict(raw.timing))
    run.cell_seconds = {i - 1: t for i, t in raw.cell_seconds.items()}
    run.statuses = {i - 1: s for i, s in raw.statuses.items() if i > 0}
    run.outputs = {i - 1: o for i, o in raw.outputs.items() if i > 0}
    run.errors = {i - 1: e for i, e in raw.errors.items() if i > 0}
    if raw.statuses.get(0, "ok") != "ok" or (raw.statuses and 0 not in raw.statuses) or not raw.statuses:
        run.events.append(KIT_FAILED)
    return run
