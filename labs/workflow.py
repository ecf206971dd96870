"""The instructor's grading workflow, one step per command (and per Make target).

    python -m labs.workflow collect   # LMS download: downloaded/<a>/archive/*.zip -> submitted/, by uploader
    python -m labs.workflow autograde # check submissions, execute, nbgrader autograde, summary
    python -m labs.workflow export    # grades.csv, one row per student and notebook
    python -m labs.workflow feedback  # feedback/<student>/<a>/*.html (no hidden tests)
    python -m labs.workflow report    # report/<a>.md + report/<a>.png

All run in a course directory (default: the repository root) with its nbgrader_config.py.

Collect (`collect`): a submission belongs to the student the LMS says uploaded it. Each zip in
downloaded/<a>/archive/ is an LMS download; each of its entries (or each top folder) is one
upload, and the uploader's id comes from the upload's outer name (nbgrader's
`FileNameCollectorPlugin.named_regexp` for a notebook, `UploaderCollector.uploader_regexp` for
a student's own zip or folder). A notebook inside a student's zip is filed under the uploader,
whatever its name says; an inner name that names another student, an archive inside a
student's archive, an unsafe path (absolute, `..`, a link), or an upload over the bounds
(`ZipBounds`: bytes per file, per upload and per download, member count, all measured while
decompressing) is refused for that upload only, with a message. Two files for one notebook of
one student: the newer wins when the names carry timestamps; otherwise neither is collected,
for that student and notebook only. Everyone else is collected.

Before grading, every submitted notebook is checked (`check_submissions`): over the reader's
bounds (`NotebookBounds`: file size, JSON nesting depth, cell count, characters of one cell's
text, measured before any parser builds it) or not a readable notebook, it moves to
quarantine/<student>/<a>/ (it then counts as missing: zero for that notebook, the student's
other notebooks are graded; the message never quotes the notebook); an old nbformat or
duplicate cell ids are repaired, the original kept in quarantine/. Nothing is deleted.

Every autograde records its state in .lab-grader/autograde.json (written atomically): started,
then completed, with the students of the batch, when, and the notebooks that are grading
errors to rerun. `export`, `feedback` and `report` refuse (exit 3, in capitals) while the last
autograde did not complete or left grading errors. A notebook that ran out of time is run
again alone (labs/fanout.py: `retry`); if it still runs out of time while its processes were
starved of CPU, it is a grading error to rerun, never a wrong answer. The summary counts the
students of this batch only.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Unicode

from . import ASSIGNMENT, ROOT, build, db_url

# What a non-ok cell status means, in the summary (labs/sandbox.py's runner statuses).
STATUS_TEXT = {
    "timeout": "a cell ran past the per-cell timeout (timeout)",
    "died": "the kernel died (kernel died: os._exit, a crash, or memory exhausted)",
}


@dataclass
class StudentResult:
    student: str
    problems: list[str] = field(default_factory=list)
    failed: bool = False
    seconds_late: float = 0.0
    late_penalty: float = 0.0
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)  # notebook -> (score, max)
    failures: dict[str, dict[str, str]] = field(default_factory=dict)     # notebook -> {grade_id: message}
    review: list[str] = field(default_factory=list)                        # flagged for an instructor's review
    findings: list[str] = field(default_factory=list)                      # what grading observed
    rerun: list[str] = field(default_factory=list)                         # grading errors: rerun, not scores


@dataclass(frozen=True)
class NotebookBounds:
    """What the grading process reads of a submitted notebook, at most (the course's own notebooks
    have about 50 cells, 5,000 characters in the longest cell, 330 KB with outputs, depth 8)."""

    file_bytes: int = 32 << 20
    depth: int = 64                 # JSON nesting: objects and arrays inside each other
    cells: int = 1000
    cell_chars: int = 256 << 10     # the text of one cell


# Possessive quantifiers: a string that never ends (a truncated notebook) must not backtrack. With
# `"(?:[^"\\]+|\\.)*"` an unterminated string of n escapes took time exponential in n (36 s at 26).
_JSON_STRING = re.compile(rb'"(?:[^"\\]++|\\.)*+"', re.S)
_JSON_BRACKET = re.compile(rb"[\[\]{}]")


def json_depth(raw: bytes, limit: int) -> int:
    """How deeply `raw`'s arrays and objects nest (strings skipped), without building it: linear
    in its size; stops counting past `limit` (returns limit + 1)."""
    depth = most = 0
    for m in _JSON_BRACKET.finditer(_JSON_STRING.sub(b'""', raw)):
        depth += 1 if m.group() in (b"[", b"{") else -1
        if depth > most:
            most = depth
            if most > limit:
                return most
    return most


def over_bounds(path: Path, bounds: NotebookBounds = NotebookBounds()) -> str | None:
    """Why a submitted file is over the grader's bounds (in the grader's words only), or None."""
    size = path.stat().st_size
    if size > bounds.file_bytes:
        return f"{size >> 20} MiB, over the bound of {bounds.file_bytes >> 20} MiB"
    raw = path.read_bytes()
    if json_depth(raw, bounds.depth) > bounds.depth:
        return f"its JSON nests deeper than {bounds.depth} levels"
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        return None  # not JSON: the reader says so
    cells = data.get("cells") if isinstance(data, dict) else None
    if not isinstance(cells, list):
        return None
    if len(cells) > bounds.cells:
        return f"{len(cells)} cells, over the bound of {bounds.cells}"
    for i, cell in enumerate(cells):
        src = cell.get("source", "") if isinstance(cell, dict) else ""
        chars = len(src) if isinstance(src, str) else sum(len(x) for x in src if isinstance(x, str)) \
            if isinstance(src, list) else 0
        if chars > bounds.cell_chars:
            return f"cell {i} holds {chars:,} characters, over the bound of {bounds.cell_chars:,}"
    return None


def check_submissions(course: Path, assignment: str = ASSIGNMENT,
                      bounds: NotebookBounds = NotebookBounds()) -> dict[str, list[str]]:
    """Quarantine notebooks over the bounds or unreadable, repair old/duplicate-id ones; problems
    per student. Only the grader's words: nothing of a notebook's text reaches a message."""
    problems: dict[str, list[str]] = {}
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    for folder in sorted((course / "submitted").glob(f"*/{assignment}")):
        student = folder.parent.name
        found = problems.setdefault(student, [])
        quarantine = course / "quarantine" / student / assignment

        def move(path: Path, why: str, quarantine: Path = quarantine, found: list = found) -> None:
            quarantine.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), quarantine / path.name)
            found.append(f"{path.name}: {why}; moved to {quarantine.relative_to(course)}/, scores zero")

        for name in sorted(expected - {p.name for p in folder.glob("*.ipynb")}):
            found.append(f"{name}: missing (scores zero)")
        for path in sorted(folder.iterdir()):
            if path.name == "timestamp.txt" or path.name.startswith("."):
                continue
            if path.name not in expected:
                found.append(f"{path.name}: extra file, ignored")
                continue
            if path.is_symlink() or not path.is_file():
                move(path, "not a plain file")
                continue
            why = over_bounds(path, bounds)
            if why:
                move(path, f"over the grader's bounds ({why})")
                continue
            try:
                raw_ids = [c.get("id") for c in json.loads(path.read_bytes()).get("cells", [])
                           if isinstance(c, dict)]
                raw = nbformat.read(str(path), as_version=nbformat.NO_CONVERT)
                nb = nbformat.read(str(path), as_version=4)
            except Exception as err:  # malformed JSON, not a notebook at all
                move(path, f"not a readable notebook ({type(err).__name__})")
                continue
            ids = [i for i in raw_ids if i is not None]
            repaired = []
            if raw.nbformat < 4:
                repaired.append(f"nbformat {raw.nbformat} upgraded to 4")
            if len(set(ids)) != len(ids):  # nbformat.read already gave the copies new ids
                repaired.append("duplicate cell ids renamed")
            if repaired:
                quarantine.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, quarantine / f"{path.name}.original")
                nbformat.write(nb, str(path))
                found.append(f"{path.name}: {', '.join(repaired)} (original kept in quarantine/)")
    return problems


def _grading_report(nb) -> dict:
    """The judge's record of one autograded notebook (labs/grader.py, metadata `lab_grading`)."""
    return nb.metadata.get("lab_grading", {})


def _findings(name: str, report: dict) -> list[str]:
    out = [f"{name}: {event}" for event in report.get("events", [])]
    for index, status in sorted(report.get("statuses", {}).items(), key=lambda kv: int(kv[0])):
        if status in STATUS_TEXT:  # an exception in a student's cell is theirs: the verdicts say what it cost
            out.append(f"{name}: {STATUS_TEXT[status]} (cell {index})")
    out += [f"{name}: ran what the exercise re-implements: {f} (that test scores zero)"
            for f in report.get("forbidden", [])]
    return out


def _maxima(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        return {nb.name: nb.max_score for nb in gb.find_assignment(assignment).notebooks}


def results(course: Path, assignment: str = ASSIGNMENT, students=None) -> dict[str, StudentResult]:
    """Each student's scores and findings (only `students`, when given: one batch)."""
    from nbgrader.api import Gradebook

    res: dict[str, StudentResult] = {}
    with Gradebook(db_url(course)) as gb:
        for sub in gb.assignment_submissions(assignment):
            if students is not None and sub.student.id not in students:
                continue
            r = res.setdefault(sub.student.id, StudentResult(sub.student.id))
            r.seconds_late = sub.total_seconds_late
            r.late_penalty = sum(nb.late_submission_penalty or 0.0 for nb in sub.notebooks)
            for nb in sub.notebooks:
                r.scores[nb.name] = (nb.score, nb.max_score)
    for student, r in res.items():
        for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
            report = _grading_report(nbformat.read(str(path), as_version=4))
            r.failures[path.stem] = {g: m for g, m in report.get("verdicts", {}).items() if m}
            r.findings += _findings(path.stem, report)
            r.review += [f"{path.stem}: {flag}" for flag in report.get("review", [])]
    maxima = _maxima(course, assignment)
    for r in res.values():  # notebooks nbgrader did not grade score zero
        for name, most in maxima.items():
            r.scores.setdefault(name, (0.0, most))
    return res


class GradingStopped(RuntimeError):
    pass


def prepare(course: Path, assignment: str, unsafe: bool = False, out=sys.stdout) -> None:
    """Before any student: the sandbox can be created, and the solution passes its own probes
    (the judge's reference, run once per source version and cached in .lab-grader/)."""
    from . import grader, sandbox

    try:
        sandbox.check(sandbox.Limits(unsafe=unsafe))
    except sandbox.SandboxUnavailable as err:
        raise GradingStopped(f"grading stopped: {err}") from None
    if unsafe:
        print("UNSAFE: --unsafe was given: submissions run WITHOUT a sandbox (no isolation from the course, "
              "the network or each other).", file=out, flush=True)
    env = {"LAB_GRADE_UNSAFE": "1"} if unsafe else {}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        for src in sorted((course / "source" / assignment).glob("*.ipynb")):
            t0 = time.perf_counter()
            try:
                grader.reference(course, assignment, src.stem)
            except grader.ReferenceFailed as err:
                raise GradingStopped(f"grading stopped: {err}") from None
            print(f"  reference {src.stem}: ready ({time.perf_counter() - t0:.0f} s)", file=out, flush=True)
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


def default_jobs() -> int:
    return int(os.environ.get("JOBS") or os.cpu_count() or 1)


STATE = Path(".lab-grader") / "autograde.json"
RERUN = "rerun `make autograde` (python -m labs.workflow autograde) to completion, on an idle machine"


def write_state(course: Path, **state) -> None:
    """The last autograde's state, replaced atomically (a reader sees the old or the new file)."""
    path = course / STATE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(state, indent=1))
    os.replace(tmp, path)


def read_state(course: Path) -> dict | None:
    try:
        state = json.loads((course / STATE).read_text())
    except FileNotFoundError:
        return None
    except ValueError:
        return {"state": "unreadable"}
    return state if isinstance(state, dict) else {"state": "unreadable"}


def not_final(course: Path) -> str | None:
    """Why the gradebook does not hold a finished grading (in capitals), or None when it does."""
    state = read_state(course)
    if state is None:
        return None
    if state.get("state") != "completed":
        return (f"THE LAST AUTOGRADE DID NOT COMPLETE (started {state.get('started', '?')}, state "
                f"{state.get('state', '?')}): THE GRADEBOOK MAY HOLD AN EARLIER RUN'S SCORES. {RERUN.upper()}.")
    if state.get("rerun"):
        return (f"THE LAST AUTOGRADE LEFT {len(state['rerun'])} GRADING ERROR(S) TO RERUN "
                f"({', '.join(sorted(state['rerun'])[:10])}): THEIR SCORES ARE NOT GRADES. {RERUN.upper()}.")
    return None


def _refuse(course: Path, step: str) -> bool:
    why = not_final(course)
    if why:
        print(f"make {step} REFUSED: {why}", file=sys.stderr)
        return True
    if read_state(course) is None and (course / "autograded").is_dir():
        print(f"NOTE: no record of the last autograde in {STATE} (graded by plain nbgrader?): "
              f"{step} cannot tell whether it completed.", file=sys.stderr)
    return False


def _timeout_signs(course: Path, student: str, assignment: str) -> list[str]:
    """The notebooks of one student whose grading shows a timeout (serial mode: nbgrader ran them)."""
    names = []
    for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb")):
        report = _grading_report(nbformat.read(str(path), as_version=4))
        text = json.dumps([report.get("statuses", {}), report.get("events", []), report.get("verdicts", {})])
        if "timeout" in text or "timed out" in text or "wall-clock budget" in text:
            names.append(path.stem)
    return names


def _retry_serial(course: Path, assignment: str, students: list[str], limits, env, out) -> dict:
    """Serial mode (nbgrader executed each notebook): each notebook that ran out of time is run
    again alone (labs/fanout.py: retry); a stored retry is graded again by nbgrader for that student."""
    from . import fanout

    pending: dict[str, tuple[list, list]] = {}
    preprocessors = fanout.sanitize_preprocessors(course)
    for student in students:
        for name in _timeout_signs(course, student, assignment):
            try:
                nb = fanout.prepared(course, assignment, student, name, db_url(course), preprocessors)
            except Exception:  # noqa: BLE001 - nbgrader reported it already
                continue
            key = fanout.run_key(nb, limits)
            cells = [(c.cell_type, c.source) for c in nb.cells]
            pending.setdefault(key, (cells, []))[1].append((student, name))
    if not pending:
        return {}
    print(f"  {len(pending)} notebook(s) ran out of time: running each again, alone", file=out, flush=True)
    rerun = fanout.retry_timeouts(course, pending, limits, out)
    again = sorted({s for _, owners in pending.values() for s, n in owners if (s, n) not in rerun})
    for student in again:
        subprocess.run([sys.executable, "-m", "labs.nbgrader_cli", "autograde", assignment, "--force",
                        "--student", student], cwd=course, env=env, text=True, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT)
    return rerun


def autograde(course: Path = ROOT, assignment: str = ASSIGNMENT, out=sys.stdout, unsafe: bool = False,
              jobs: int | None = None, scheduler: str | None = None) -> dict[str, StudentResult]:
    """Check, execute every notebook in parallel sandboxes (labs/fanout.py: `jobs` local workers, or
    the Dask cluster at `scheduler`), grade in one nbgrader batch, print progress and a summary.
    jobs=1 without a scheduler: no fan-out, nbgrader executes each notebook itself, in order.
    Either way a notebook that ran out of time is run again alone; one that still does while the
    machine was overloaded is a grading error to rerun. The state of the run is recorded in
    .lab-grader/autograde.json: started, then completed."""
    from tqdm import tqdm

    from . import fanout, grader

    t0 = time.perf_counter()
    jobs = jobs or default_jobs()
    scheduler = scheduler or os.environ.get("SCHEDULER") or None
    prepare(course, assignment, unsafe, out)
    started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    write_state(course, state="started", started=started, assignment=assignment, students=[], jobs=jobs,
                scheduler=scheduler, unsafe=unsafe, pid=os.getpid())
    pre = check_submissions(course, assignment)
    expected = {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    students = sorted(pre)
    write_state(course, state="started", started=started, assignment=assignment, students=students, jobs=jobs,
                scheduler=scheduler, unsafe=unsafe, pid=os.getpid())
    print(f"autograde {assignment}: {len(students)} submissions", file=out, flush=True)
    from nbgrader.api import Gradebook

    with Gradebook(db_url(course)) as gb:
        for student in students:  # nbgrader skips a folder without notebooks: still a zero
            gb.update_or_create_student(student)
    env = build.tool_env(**({"LAB_GRADE_UNSAFE": "1"} if unsafe else {}))
    limits = dataclasses.replace(grader.limits(_cell_seconds(course)), unsafe=unsafe)
    rerun: dict[tuple[str, str], str] = {}
    fanned = jobs > 1 or bool(scheduler)
    if fanned:
        stats = fanout.fan_out(course, assignment, students, db_url(course), limits, jobs, scheduler, out)
        rerun = stats["rerun"]
        where = scheduler or f"{jobs} local workers"
        print(f"  executed {stats['executed']} notebooks on {where} in {stats['seconds']:.0f} s "
              f"({stats['cached']} already done, {stats['retried']} retried alone"
              + (f", {stats['crashed']} left to nbgrader after a crash" if stats["crashed"] else "") + ")",
              file=out, flush=True)
    cmd = [sys.executable, "-m", "labs.nbgrader_cli", "autograde", assignment, "--force"]
    proc = subprocess.Popen(cmd, cwd=course, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log: list[str] = []
    failed: set[str] = set()
    with tqdm(total=len(students), desc="grading", unit="student", file=out, mininterval=1.0) as bar:
        for line in proc.stdout:
            log.append(line)
            if re.search(r"Creating/updating student with ID '([^']+)'", line):
                bar.update(1)
            m = re.search(r"error processing assignment '[^']+' for student '([^']+)'", line)
            if m:
                failed.add(m.group(1))
        proc.wait()
    (course / "autograde.log").write_text("".join(log))
    # every student with a notebook was graded in this batch, or reported failed, else nbgrader stopped midway
    batch_start = time.time() - (time.perf_counter() - t0)
    missed = [s for s in students if s not in failed and any(
        p.name in expected for p in (course / "submitted" / s / assignment).glob("*.ipynb"))
        and not any(p.stat().st_mtime >= batch_start
                    for p in (course / "autograded" / s / assignment).glob("*.ipynb"))]
    if proc.returncode < 0 or proc.returncode > 1 or missed:  # killed, or nbgrader itself stopped
        print(f"AUTOGRADE DID NOT COMPLETE: nbgrader exited with {proc.returncode} (see autograde.log); "
              f"{RERUN}.", file=out)
        raise GradingStopped(f"grading stopped: nbgrader exited with {proc.returncode} before grading "
                             f"{len(missed)} student(s); the gradebook may hold an earlier run's scores")
    if not fanned:
        rerun = _retry_serial(course, assignment, [s for s in students if s not in failed], limits, env, out)
    res = results(course, assignment, set(students))
    for student in students:
        if student not in res:
            res[student] = StudentResult(student, scores={n: (0.0, m) for n, m in _maxima(course, assignment).items()})
        r = res[student]
        r.problems = list(pre.get(student, []))
        folder = course / "submitted" / student / assignment
        nothing = not any(p.name in expected for p in folder.glob("*.ipynb"))
        r.failed = student in failed and not nothing
        r.rerun = [f"{name}: {note}" for (s, name), note in sorted(rerun.items()) if s == student]
        if nothing:
            r.problems.append("no notebook to grade: every notebook scores zero")
        elif r.failed:
            r.problems.append("nbgrader could not grade this submission (see autograde.log)")
        if r.seconds_late > 0:
            r.problems.append(f"late by {r.seconds_late / 3600:.1f} h (penalty {r.late_penalty:g} points)")
        r.problems += r.findings
    write_state(course, state="completed", started=started, finished=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
                assignment=assignment, students=students, jobs=jobs, scheduler=scheduler, unsafe=unsafe,
                failed=sorted(s for s, r in res.items() if r.failed),
                rerun=sorted(f"{s}/{n}" for s, n in rerun))
    print(summary(res, assignment), file=out)
    if unsafe:
        print("UNSAFE: these submissions were graded WITHOUT a sandbox (--unsafe).", file=out)
    print(f"done in {time.perf_counter() - t0:.0f} s; full log: autograde.log", file=out)
    return res


def _cell_seconds(course: Path) -> int:
    """The per-cell timeout nbgrader will use (nbgrader_config.py, c.SandboxedExecute.timeout)."""
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    return int(config.SandboxedExecute.get("timeout", 60))


def summary(res: dict[str, StudentResult], assignment: str = ASSIGNMENT) -> str:
    """This batch's students: scores, problems, grading errors to rerun, review flags."""
    lines = [f"\nSummary for {assignment}:"]
    errors = [r for r in res.values() if r.rerun]
    graded = [r for r in res.values() if not r.failed and not r.rerun]
    lines.append(f"  graded: {len(graded)}   failed to grade: {sum(r.failed for r in res.values())}   "
                 f"grading errors to rerun: {len(errors)}   (this batch: {len(res)} students)")
    for r in sorted(res.values(), key=lambda r: r.student):
        total = sum(s for s, _ in r.scores.values())
        most = sum(m for _, m in r.scores.values())
        status = "FAILED" if r.failed else "GRADING ERROR: rerun" if r.rerun else f"{total:g}/{most:g}"
        lines.append(f"  {r.student:40s} {status}")
        lines += [f"      !! GRADING ERROR {p}" for p in r.rerun]
        lines += [f"      ! {p}" for p in r.problems]
        lines += [f"      ? flagged for review: {p}" for p in r.review]
    flagged = sorted(r.student for r in res.values() if r.review)
    lines.append(f"  flagged for review: {len(flagged)}" + (f" ({', '.join(flagged)})" if flagged else ""))
    if errors:
        lines.append(f"  GRADING ERRORS: {len(errors)} student(s) ran out of time on an overloaded machine; their "
                     f"scores are not grades, and export, feedback and report refuse until you {RERUN}.")
    return "\n".join(lines)


# --- collect: an LMS download, filed by uploader ------------------------------------------

@dataclass(frozen=True)
class ZipBounds:
    """How much of an LMS download collect reads, at most (bytes measured while decompressing,
    never taken from the archive's headers)."""

    file_bytes: int = 32 << 20            # one notebook (NotebookBounds.file_bytes)
    upload_bytes: int = 64 << 20          # one upload, all its files together
    download_bytes: int = 4 << 30         # one LMS download, all uploads together
    members: int = 20000                  # entries of one LMS download
    upload_members: int = 50              # entries of a student's own zip


class Refused(Exception):
    """An upload collect will not file (the reason, in the grader's words)."""


class UploaderCollector(FileNameCollectorPlugin):
    """nbgrader's FileNameCollectorPlugin, where the student is the uploader: `collect(outer, inner)`
    takes the student id from the upload's outer name (`named_regexp` for a notebook uploaded as
    itself, `uploader_regexp` for a zip or a folder) and only the notebook's name from the inner
    file's name. An inner name that `named_regexp` reads as another student's is refused."""

    uploader_regexp = Unicode(r"^(?P<student_id>[A-Za-z0-9][A-Za-z0-9.\-]*)_",
                               help="the uploader's id at the start of an uploaded zip's or folder's name "
                                    "(group student_id, optionally timestamp)").tag(config=True)

    def uploader(self, outer: str) -> dict:
        name = outer.rstrip("/").rsplit("/", 1)[-1]
        info = self._match(name) if name.endswith(".ipynb") else None
        if not info:
            m = re.match(self.uploader_regexp, name)
            info = m.groupdict() if m else None
        if not info or not _SAFE_ID.fullmatch(str(info.get("student_id") or "")):
            raise Refused("its name does not start with a student id the LMS gives")
        return info

    def collect(self, outer: str, inner: str | None = None) -> dict | None:
        """{student_id, file_id, timestamp?} for one file of one upload; None: not a notebook."""
        info = dict(self.uploader(outer))
        name = (inner or outer).rsplit("/", 1)[-1]
        if not name.endswith(".ipynb"):
            return None
        if inner is None:
            if not info.get("file_id"):
                return None
        else:
            claim = self._match(name)
            if claim and claim.get("student_id") != info["student_id"]:
                raise Refused(f"a file inside it names another student ({str(claim['student_id'])[:40]})")
            info["file_id"] = claim["file_id"] if claim else name
        info["file_id"] = os.path.splitext(str(info["file_id"]).rsplit("/", 1)[-1])[0] + ".ipynb"
        return info


_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-]{0,99}")


def _member_path(info) -> str:
    """A zip entry's name, refused when it is not a plain relative path (absolute, `..`, a link)."""
    import stat

    name = info.filename
    parts = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or ":" in parts[0] or ".." in parts or "\0" in name:
        raise Refused("an entry has an unsafe path (absolute or with '..')")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise Refused("an entry is a symbolic link")
    return "/".join(p for p in parts if p not in ("", "."))


def _read_member(zf, info, limit: int) -> bytes:
    """At most `limit` bytes of one entry, counted while decompressing."""
    if info.file_size > limit:
        raise Refused(f"a file is over the bound of {limit >> 20} MiB")
    data = bytearray()
    with zf.open(info) as fh:
        while chunk := fh.read(1 << 20):
            data += chunk
            if len(data) > limit:
                raise Refused(f"a file is over the bound of {limit >> 20} MiB (once decompressed)")
    return bytes(data)


def _is_archive(name: str) -> bool:
    return name.lower().endswith((".zip", ".gz", ".tgz", ".tar", ".7z", ".rar", ".bz2", ".xz"))


def _upload_files(outer: str, entries: list[tuple[str, bytes]], bounds: ZipBounds) -> list[tuple[str | None, bytes]]:
    """The files of one upload as (inner name or None, bytes): a notebook is itself; a student's
    zip is opened one level (an archive inside it is refused); a folder's entries are its files."""
    import io
    import zipfile

    if len(entries) == 1 and entries[0][0] == outer and not outer.lower().endswith(".zip"):
        if _is_archive(outer):
            raise Refused("archives other than zip are not accepted")
        return [(None, entries[0][1])]
    files: list[tuple[str | None, bytes]] = []
    for path, data in entries:
        if path.lower().endswith(".zip"):
            try:
                inner = zipfile.ZipFile(io.BytesIO(data))
                infos = inner.infolist()
            except (zipfile.BadZipFile, OSError, ValueError) as err:
                raise Refused(f"a zip in it cannot be read ({type(err).__name__})") from None
            if len(infos) > bounds.upload_members:
                raise Refused(f"its zip holds {len(infos)} entries, over the bound of {bounds.upload_members}")
            used = 0
            for info in infos:
                name = _member_path(info)
                if info.is_dir() or not name:
                    continue
                if _is_archive(name):
                    raise Refused("it holds an archive inside an archive (nested archives are not accepted)")
                blob = _read_member(inner, info, min(bounds.file_bytes, bounds.upload_bytes - used))
                used += len(blob)
                files.append((name, blob))
        elif _is_archive(path):
            raise Refused("it holds an archive inside an archive (nested archives are not accepted)")
        else:
            files.append((path, data))
    return files


def _uploads(archive: Path, bounds: ZipBounds, out) -> tuple[dict[str, list[tuple[str, bytes]]], list[str]]:
    """{outer name: [(path, bytes)]} of every upload in the LMS download folder, and the refusals."""
    import zipfile

    uploads: dict[str, list[tuple[str, bytes]]] = {}
    refused: list[str] = []
    budget = bounds.download_bytes
    for path in sorted(archive.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        if not path.name.lower().endswith(".zip"):  # an upload put there as itself
            if path.stat().st_size > bounds.upload_bytes:
                refused.append(f"{ascii(path.name)[:120]}: over the bound of {bounds.upload_bytes >> 20} MiB")
            else:
                uploads.setdefault(path.name, []).append((path.name, path.read_bytes()))
            continue
        try:
            zf = zipfile.ZipFile(path)
            infos = zf.infolist()
        except (zipfile.BadZipFile, OSError) as err:
            refused.append(f"{ascii(path.name)[:120]}: not a readable zip ({type(err).__name__}); nothing in it "
                           "was collected")
            continue
        if len(infos) > bounds.members:
            refused.append(f"{ascii(path.name)[:120]}: {len(infos)} entries, over the bound of {bounds.members}; "
                           "nothing in it was collected")
            continue
        bad: dict[str, str] = {}
        for info in infos:
            outer = info.filename.replace("\\", "/").lstrip("/").split("/")[0] or info.filename
            if outer in bad or info.is_dir():
                continue
            try:
                name = _member_path(info)
                used = sum(len(d) for _, d in uploads.get(outer, []))
                blob = _read_member(zf, info, min(bounds.upload_bytes - used, budget))
            except Refused as why:
                bad[outer] = str(why)
                uploads.pop(outer, None)
                continue
            except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as err:
                bad[outer] = f"an entry cannot be read ({type(err).__name__})"
                uploads.pop(outer, None)
                continue
            budget -= len(blob)
            uploads.setdefault(outer, []).append((name, blob))
        refused += [f"{ascii(outer)[:120]}: refused: {why}" for outer, why in sorted(bad.items())]
    return uploads, refused


def collect(course: Path = ROOT, assignment: str = ASSIGNMENT, out=sys.stdout,
            bounds: ZipBounds = ZipBounds()) -> int:
    """downloaded/<a>/archive/ -> submitted/<uploader>/<a>/, each submission filed under the
    student the LMS says uploaded it. Exit 0, or 1 when an upload or a notebook was refused
    (each named, with the reason); everyone else is collected either way."""
    from nbgrader.utils import parse_utc
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()
    collector = UploaderCollector(config=config)
    released = {p.name for p in (course / "release" / assignment).glob("*.ipynb")} or \
        {p.name for p in (course / "source" / assignment).glob("*.ipynb")}
    archive = course / "downloaded" / assignment / config.ZipCollectApp.get("archive_directory", "archive")
    uploads, refused = _uploads(archive, bounds, out)
    chosen: dict[tuple[str, str], tuple[object, bytes, str]] = {}
    duplicates: dict[tuple[str, str], int] = {}
    for outer, entries in sorted(uploads.items()):
        try:
            files = _upload_files(outer, entries, bounds)
            found = []
            for inner, data in files:
                info = collector.collect(outer, inner if inner != outer else None)
                if info and info["file_id"] in released:
                    found.append((info, data))
        except Refused as why:
            refused.append(f"{ascii(outer)[:120]}: refused: {why}")
            continue
        if not found:
            refused.append(f"{ascii(outer)[:120]}: no notebook of {assignment} in it (released names: "
                           f"{', '.join(sorted(released))})")
        for info, data in found:
            stamp = None
            if info.get("timestamp"):
                try:
                    stamp = parse_utc(info["timestamp"])
                except (ValueError, OverflowError):
                    stamp = None
            key = (str(info["student_id"]), str(info["file_id"]))
            if key in chosen:
                old = chosen[key][0]
                if stamp is not None and old is not None and stamp != old:
                    if stamp > old:
                        chosen[key] = (stamp, data, outer)
                    continue
                duplicates[key] = duplicates.get(key, 1) + 1
            else:
                chosen[key] = (stamp, data, outer)
    for key, n in sorted(duplicates.items()):
        chosen.pop(key)
        refused.append(f"{key[0]} / {key[1]}: {n} files for this notebook and no timestamps to choose by: none "
                       "collected for this student and notebook (put the right one in submitted/ yourself)")
    students = sorted({s for s, _ in chosen})
    for student in students:
        dest = course / "submitted" / student / assignment
        staging = course / "submitted" / f".{student}.collect-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        stamps = []
        for (s, file_id), (stamp, data, _) in sorted(chosen.items()):
            if s == student:
                (staging / file_id).write_bytes(data)
                stamps += [stamp] if stamp is not None else []
        if stamps:
            (staging / "timestamp.txt").write_text(max(stamps).isoformat(" "))
        if dest.exists():
            shutil.rmtree(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging, dest)
    print(f"collected {len(chosen)} notebook(s) of {len(students)} student(s) into submitted/", file=out)
    for line in refused:
        print(f"  REFUSED {line}", file=out)
    return 1 if refused else 0


def export(course: Path = ROOT) -> int:
    if _refuse(course, "export"):
        return 3
    proc = build.nbgrader("export", "--to", str(course / "grades.csv"), cwd=course, check=False)
    print(proc.stdout[-2000:] if proc.returncode else f"wrote {course / 'grades.csv'}")
    return proc.returncode


def feedback(course: Path = ROOT, assignment: str = ASSIGNMENT) -> int:
    if _refuse(course, "feedback"):
        return 3
    proc = build.nbgrader("generate_feedback", assignment, "--force", cwd=course, check=False)
    if proc.returncode:
        print(proc.stdout[-3000:])
    return proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["collect", "autograde", "export", "feedback", "report"])
    parser.add_argument("--course", type=Path, default=ROOT)
    parser.add_argument("--assignment", default=ASSIGNMENT)
    parser.add_argument("--jobs", type=int, default=None,
                        help="notebooks executed at once on this machine (default: JOBS, else the core count)")
    parser.add_argument("--scheduler", default=None,
                        help="a Dask scheduler (tcp://host:8786) to execute on instead (default: SCHEDULER, "
                             "DASK_SCHEDULER_ADDRESS)")
    parser.add_argument("--unsafe", action="store_true",
                        help="autograde without the sandbox (only where it cannot be created; the summary says so)")
    args = parser.parse_args(argv)
    if args.step == "autograde":
        try:
            res = autograde(args.course, args.assignment, unsafe=args.unsafe, jobs=args.jobs,
                            scheduler=args.scheduler)
        except GradingStopped as err:
            print(err, file=sys.stderr)
            return 2
        return 1 if any(r.failed or r.rerun for r in res.values()) else 0
    if args.step == "collect":
        return collect(args.course, args.assignment)
    if args.step == "export":
        return export(args.course)
    if args.step == "feedback":
        return feedback(args.course, args.assignment)
    if _refuse(args.course, "report"):
        return 3
    from . import report
    path = report.write(args.course, args.assignment)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
