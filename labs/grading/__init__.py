"""Grading with trust: student code is hostile; only raw values it computes on the grader's inputs count.

In the order data flows (`python -m labs.grading collect|autograde|export|feedback|report`):

    collect          an LMS download -> submitted/<student>/, filed by the uploader (never by a name inside)
    intake           each submitted notebook bounded (size, depth, cells), readable, repaired or quarantined
    scan             the static scan of the cells a student changed: the allowlist review, reserved names
    plan             the skip plan: which show-only cells need not run (`runnable`)
    execute          one notebook in a sandbox with the probe kit first: a `sandbox.Run`
      sandbox        bubblewrap + cgroups + seccomp + tmpfs bounds; the runner log on a descriptor
      sandbox_runner runs inside the sandbox (kernel side: imports nothing of this package)
      probekit       the probe kit, cell 0 of every run (kernel side: imports nothing of this package)
    runs             the store of runs: one run per key, written once by the fan-out, read by nbgrader
    fanout           many sandboxes at once (Dask), retries of timeouts, CPU contention measured
    reference        the instructor's solution through the same probes, cached: the expected values
    judge            a run's raw records against the reference: verdicts, evidence, review flags
    nbgrader_steps   the preprocessors nbgrader's autograde and feedback run (SandboxedExecute, Judge, ...)
    autograde        the batch: intake, reference, fan-out, `nbgrader autograde`, results, summary, state
    report           grades.csv rows (export plugin) and the class report
    cli              the commands above (also `python -m labs.grading`)
    throwaway_course a course made from this repository in a temporary folder (tests, benchmarks)
    bench            `make bench-grading`: stock nbgrader against ours on a synthetic class

Layers are checked by import-linter (pyproject.toml): each module imports only modules listed
below it in the contract, never above.
"""
