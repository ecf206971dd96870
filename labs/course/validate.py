"""Validate that tells the truth before submission: nbgrader's Validate, then the grader's review scan.

A jupyter-server extension (`labs.course.validate`) that serves nbgrader's Validate URL
(`/assignments/validate`, and `/nbgrader_version` beside it) in place of nbgrader's own
`validate_assignment` extension, which is switched off where this one is on (`make lab`:
labs/course/lab.py; the hub's student servers: hub/student/jupyter_server_config.json).

1. nbgrader's validation runs as before (nbgrader's handler's own `validate_notebook` and its
   `Validator`), except that its Execute skips the lesson's show-only cells (timings, figures,
   torch.compile, demos) exactly as grading skips them (`labs.grading.plan.skip_plan`: only a cell
   whose text is one the source tags `grading-skip`, and only when nothing that runs may read a
   name it binds). A graded test sees the same values either way, and Validate runs what the
   grader runs: seconds, where the whole lesson took up to half a minute. Its verdict is never
   changed.
2. The grader's static review scan then runs on the same file, as the grader runs it (the Judge,
   labs/grading/nbgrader_steps.py: `scan.scan_notebook` with the lesson's declaration,
   `reference.declaration`), and what it will flag
   is listed in plain words next to nbgrader's result.

The scan needs the instructor's source notebook (which cells are the student's; the names the
grader's hidden code binds). Where the course's source/ is readable (`make lab`) it is read. On
the hub students cannot read it: `python -m labs.hub start` publishes, per notebook, its *review
rules* (`rules`): the source's code cells as the release shows them (show-only cells keep their
`grading-skip` tag), each answer cell replaced by the names it binds, and the names the hidden
tests bind, with no hidden test and no solution text, under the exchange
(`<exchange>/<course>/lab-review/<assignment>/<notebook>.ipynb`). tests/test_validate.py checks
that the scan gives the same findings with the rules as with the source on every corpus answer,
and that Validate skips the same cells with either.

How it shows: nbgrader's labextension renders only fixed keys of the reply. A reply with no
failure shows a fixed "Success!" and nothing else, so flags are added as entries of `failed`,
under its fixed heading "The following cell failed:": one per flagged cell, the cell's name and
"flagged for review (not a test failure)", each flag in plain words with its line of code, then
a message that starts "Not a test failure" and says whether nbgrader's tests passed. nbgrader's
own failures stay first, unchanged. When nbgrader reports changed cells or a changed cell type
(to be fixed first) or an error, the UI shows only that (an error's text gets the flags
appended). The reply always carries `review` (the flags) and `nbgrader` (nbgrader's own result)
for other clients.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path

import nbformat

from ..grading import plan, reference, scan
from . import notebooks

REVIEW_DIR = "lab-review"   # under the exchange's course folder on the hub
LINE_CHARS = 160            # of a flagged line shown in the dialog

# What each category of flag means, for a student.
MEANING = {
    "re-implements": "uses the built-in this exercise asks you to re-implement",
    "outside the lesson's allowlist": "uses something this lesson's answers may not use",
    "tracing": "installs a tracer or profiler",
    "introspection": "inspects the running program (frames, the garbage collector)",
    "dynamic lookups": "looks names up dynamically",
    "processes": "starts processes or threads, or sends signals",
    "network": "uses the network",
    "files and OS": "reaches files or the operating system",
    "IPython machinery": "uses IPython's machinery (magics, the shell, its history)",
    "native/unsafe": "uses native code or unpickling",
    "builtins": "reaches Python's builtins or the import system",
    "torch internals": "uses PyTorch internals",
    "code objects": "reads or changes code objects or class internals",
    "patching modules": "rebinds or patches a module or a name the lesson's setup binds",
    "patching the grader": "rebinds a name the grader's tests use",
    "does not parse": "is not valid Python",
    "over the scan's bounds": "is too large to scan",
}


# --------------------------------------------------------------------------- the scan

def review(nb, rules_nb) -> list[scan.Finding]:
    """What the grader's scan will flag in `nb`: the same call as the Judge's (nbgrader_steps.py), with
    source notebook or its published review rules (`rules`) as `rules_nb`."""
    decl = reference.declaration(rules_nb)
    return scan.scan_notebook(nb, decl["reimplements"], source=rules_nb, allow=decl["allow"])


def rules(source_nb):
    """A source notebook's review rules: what the scan reads of the source, without what students
    must not see. Its code cells: the source's, as the release shows them (hidden tests dropped);
    each answer cell replaced by one that binds the same names (no solution text); and one cell
    whose hidden region binds the names the source's setup and hidden tests bind (the grader's
    names: binding one is a flag). The exercise declaration (`lab` metadata) is kept."""
    cells = []
    for cell in source_nb.cells:
        if cell.get("cell_type") != "code":
            continue
        meta = {k: v for k, v in (cell.metadata.get("nbgrader") or {}).items()
                if k in ("grade_id", "solution", "grade", "locked", "points", "schema_version")}
        if meta.get("solution"):
            tree = scan.parse(cell.source)[0]
            names = sorted(scan._bound(tree, module_scope=True)) if tree is not None else []
            text = "# the names this answer cell binds (the answer itself is not published)\n" + \
                "".join(f"{n} = None\n" for n in names)
        else:
            text = scan._plain(cell.source, drop_hidden=True)
        tags = [t for t in cell.metadata.get("tags", []) if t == plan.SKIP_TAG]
        if tags and "### BEGIN HIDDEN TESTS" not in cell.source:
            text = cell.source  # verbatim: Validate skips a cell whose text is exactly this one
        cells.append(nbformat.v4.new_code_cell(text, metadata={**({"nbgrader": meta} if meta else {}),
                                                                **({"tags": tags} if tags else {})}))
    hidden = sorted(scan.reserved_names(source_nb) - {"_probe"})
    cells.append(nbformat.v4.new_code_cell(
        "# the names the grader's setup and hidden tests bind: a cell that binds one is flagged\n"
        "### BEGIN HIDDEN TESTS\n" + "".join(f"{n} = None\n" for n in hidden) + "### END HIDDEN TESTS"))
    out = nbformat.v4.new_notebook(cells=cells)
    if "lab" in source_nb.metadata:
        out.metadata["lab"] = source_nb.metadata["lab"]
    return out


def write_rules(source_dir: Path, dest: Path) -> list[Path]:
    """The review rules of every source notebook of an assignment, written under `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted(Path(source_dir).glob("*.ipynb")):
        path = dest / src.name
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        nbformat.write(rules(notebooks.read(src)), str(tmp))
        os.chmod(tmp, 0o644)
        tmp.replace(path)
        written.append(path)
    return written


def hub_rules_dir() -> Path | None:
    """Where the hub publishes review rules, on a server the hub started (its environment says)."""
    exchange, course = os.environ.get("LAB_HUB_EXCHANGE"), os.environ.get("LAB_HUB_COURSE_ID")
    return Path(exchange) / course / REVIEW_DIR if exchange and course else None


def find_rules(notebook: Path, course: Path):
    """The notebook to scan against for `notebook` (a lesson of assignment `notebook.parent.name`):
    on a hub's server the published rules (a student's own folders decide nothing), else the
    course's source; None when there is none."""
    assignment, name = notebook.parent.name, notebook.name
    published = hub_rules_dir()
    candidates = [published / assignment / name] if published is not None else []
    candidates.append(course / "source" / assignment / name)
    for path in candidates:
        try:
            return notebooks.read(path)
        except (FileNotFoundError, PermissionError, NotADirectoryError):
            continue
    return None


# --------------------------------------------------------------------------- what Validate runs

def show_only(notebook: Path, course: Path) -> set[str]:
    """The texts of the lesson's show-only cells (tagged `grading-skip` in the source or its
    published rules; never read from the student's notebook); empty for a notebook of no lesson."""
    rules_nb = find_rules(notebook, course)
    return plan.skipped_sources(rules_nb) if rules_nb is not None else set()


def skipping_execute(skip: set[str]):
    """nbgrader's Execute preprocessor, skipping the show-only cells grading skips: each is run as a
    comment, then its text is put back (nbgrader's checksums see the notebook as submitted)."""
    from nbgrader.preprocessors import Execute

    class SkippingExecute(Execute):
        def preprocess(self, nb, resources):
            code = [c for c in nb.cells if c.cell_type == "code"]
            skipped = plan.skip_plan([c.source for c in code], skip) if skip else set()
            kept = {i: code[i].source for i in skipped}
            for i in skipped:
                code[i].source = plan.SKIPPED
            try:
                return super().preprocess(nb, resources)
            finally:
                for i, text in kept.items():
                    code[i].source = text

    return SkippingExecute


def validator(skip: set[str]):
    """nbgrader's Validator, its Execute skipping the show-only cells (`skipping_execute`)."""
    from nbgrader.preprocessors import Execute
    from nbgrader.validator import Validator
    from traitlets import List

    class LessonValidator(Validator):
        preprocessors = List([skipping_execute(skip) if pp is Execute else pp for pp in Validator().preprocessors])

    return LessonValidator


# --------------------------------------------------------------------------- plain words

def plain(finding: scan.Finding) -> str:
    """One flag in plain words: where, what, what it means."""
    where = f"line {finding.line}" if finding.line else "the cell"
    meaning = MEANING.get(finding.category, finding.category)
    return f"{where}: {finding.what} ({meaning})"


def _line(nb, cell: str, line: int) -> str:
    """The flagged line of the student's cell, shortened."""
    for i, c in enumerate(nb.cells if nb is not None else []):
        if notebooks.grade_id(c) == cell or f"cell {i}" == cell:
            lines = c.get("source", "").splitlines()
            text = lines[line - 1].strip() if 1 <= line <= len(lines) else ""
            return text if len(text) <= LINE_CHARS else text[:LINE_CHARS] + " ..."
    return ""


def _flagged(nb, cell: str, findings: list[scan.Finding]) -> str:
    """What the dialog shows of one flagged cell (plain text): each flag in plain words, its line."""
    out = [f"{cell}: flagged for review (not a test failure)"]
    for f in findings:
        out.append(f"  {plain(f)}")
        if code := _line(nb, cell, f.line):
            out.append(f"      {code}")
    return "\n".join(out)


def _message(passed: bool | None) -> str:
    tests = {True: "nbgrader's tests passed.", False: "nbgrader's failures are listed above.", None: ""}[passed]
    # shown in a <pre>: lines broken here
    return (f"<b>Not a test failure: flagged for review.</b> {tests}\n"
            "When your notebook is graded, the grader's review scan will flag the code above\n"
            "for an instructor to read. A flag does not change what the tests score.\n"
            "Scratch work that is not part of your answer can simply be deleted.")


def merge(response: dict, nb, findings: list[scan.Finding], note: str = "") -> dict:
    """nbgrader's reply with the review flags added where its labextension shows them (see the
    module's docstring); `review` and `nbgrader` added for other clients. nbgrader's own result is
    never changed."""
    out = dict(response)
    out["review"] = [{"cell": f.cell, "line": f.line, "category": f.category, "what": f.what, "text": plain(f)}
                     for f in findings]
    if note:
        out["review_note"] = note
    value = response.get("value")
    out["nbgrader"] = value
    words = [f"{f['cell']}, {f['text']}" for f in out["review"]] + ([note] if note else [])
    if not words:
        return out
    if response.get("success") is not True:
        if isinstance(value, str):
            out["value"] = value + "\n\nThe grader's review scan will flag:\n" + "\n".join(f"- {w}" for w in words)
        return out
    value = json.loads(value) if isinstance(value, str) else dict(value or {})
    if "type_changed" in value or "changed" in value:
        return out  # the UI shows only these: they must be fixed first
    passed = not value.get("failed")
    failed = list(value.get("failed") or [])
    by_cell: dict[str, list[scan.Finding]] = {}
    for f in findings:
        by_cell.setdefault(f.cell, []).append(f)
    for cell, found in by_cell.items():
        failed.append({"source": _flagged(nb, cell, found), "error": _message(passed)})
    if note:
        failed.append({"source": "", "error": html.escape(note, quote=False)})
    value["failed"] = failed
    out["value"] = value
    return out


def review_response(response: dict, path: Path, course: Path) -> dict:
    """nbgrader's reply for the notebook at `path`, merged with the review scan's flags. A scan
    that cannot run says so in the reply; it never hides nbgrader's result."""
    try:
        nb = notebooks.read(path)
    except Exception:  # nbgrader's reply already says what is wrong with the file
        return merge(response, None, [], "")
    source = find_rules(path, course)
    if source is None:
        return merge(response, nb, [], "The grader's review scan could not run here:\nthis notebook is "
                     "not one of the course's lessons (no review rules for it).")
    try:
        findings = review(nb, source)
    except Exception as err:  # a bug of ours must not hide nbgrader's verdict
        return merge(response, nb, [], f"The grader's review scan failed here ({type(err).__name__});\n"
                     "nbgrader's result above stands.")
    return merge(response, nb, findings)


# --------------------------------------------------------------------------- the server extension

def _handlers():
    from jupyter_server.utils import url_path_join
    from nbgrader.server_extensions.validate_assignment import handlers as nbg

    _NBGRADER_VALIDATOR = nbg.Validator

    class ValidateHandler(nbg.ValidateAssignmentHandler):
        """nbgrader's handler; its reply merged with the review scan's flags."""

        def validate_notebook(self, path):
            target = (Path(self.root_dir).resolve() / path).resolve()
            config = self.load_config()
            course = Path(config.CourseDirectory.root) if "root" in config.get("CourseDirectory", {}) \
                else Path(os.getcwd())
            # nbgrader's handler, with its Validator's Execute skipping what grading skips (one request
            # at a time: Tornado calls this on its one thread, and the name is put back at once)
            nbg.Validator = validator(show_only(target, course) if target.is_relative_to(Path(self.root_dir).resolve())
                                      else set())
            try:
                response = super().validate_notebook(path)  # raises 403 outside the root, as nbgrader's
            finally:
                nbg.Validator = _NBGRADER_VALIDATOR
            return review_response(response, target, course)

    return url_path_join, [(r"/assignments/validate", ValidateHandler),
                           (r"/nbgrader_version", nbg.NbGraderVersionHandler)]


def _jupyter_server_extension_points():
    return [{"module": "labs.course.validate"}]


def _load_jupyter_server_extension(serverapp):
    join, handlers = _handlers()
    web = serverapp.web_app
    web.settings["root_dir"] = serverapp.root_dir
    web.add_handlers(".*$", [(join(web.settings["base_url"], pattern), handler) for pattern, handler in handlers])
    serverapp.log.info("labs.course.validate: nbgrader's Validate with the grader's review scan")
