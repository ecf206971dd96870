"""nbgrader settings for the Autograd Deep Dive course (Lab 2.1.3).

Every nbgrader command of the Makefile and the tests reads this file. The course
root is the directory nbgrader runs in (the repository, or a throwaway copy of
it in the tests); `labs` (the course tooling) must be importable, which the
Makefile and tests arrange with PYTHONPATH.
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "autograd-deep-dive"
# The gradebook: the course's gradebook.db (SQLite), or a shared server (PostgreSQL) named by
# LAB_DB_URL, e.g. postgresql+psycopg2://grader@/autograd?host=/run/postgresql (never passed to a sandbox).
if os.environ.get("LAB_DB_URL"):
    c.CourseDirectory.db_url = os.environ["LAB_DB_URL"]
c.CourseDirectory.solution_directory = "solutions"
# Generated, never copied into a release or an autograded submission.
c.CourseDirectory.ignore = [
    ".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", ".DS_Store",
]

# --- student release -------------------------------------------------------
c.ClearSolutions.code_stub = {
    "python": "# YOUR CODE HERE\nraise NotImplementedError()",
}
c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
# Cells tagged `solution-only` (worked explanations) never reach students.
c.TagRemovePreprocessor.enabled = True
c.TagRemovePreprocessor.remove_cell_tags = {"solution-only"}
c.GenerateAssignment.preprocessors = [
    "nbgrader.preprocessors.IncludeHeaderFooter",
    "nbgrader.preprocessors.InstantiateTests",
    "nbgrader.preprocessors.LockCells",
    "nbgrader.preprocessors.ClearSolutions",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.CheckCellMetadata",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.SaveCells",
    "nbgrader.preprocessors.ClearHiddenTests",
    "nbgrader.preprocessors.ClearMarkScheme",
    "nbconvert.preprocessors.TagRemovePreprocessor",
    "nbgrader.preprocessors.ComputeChecksums",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# --- solutions companion ---------------------------------------------------
# Same source, hidden tests removed, solution regions kept and visibly marked,
# executed with outputs stored. StrictExecute fails the build on any error
# except in cells tagged `raises-exception` (the ones that demonstrate a bug).
_solution_pps = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.ClearMarkScheme",
    "nbgrader.preprocessors.ClearHiddenTests",
    "labs.course.preprocessors.MarkSolutionRegions",
    "labs.course.preprocessors.SolutionsBanner",
    "labs.course.preprocessors.RecordSourceHash",
]
if os.environ.get("LAB_SOLUTIONS_EXECUTE", "1") != "0":
    _solution_pps.append("labs.course.preprocessors.StrictExecute")
c.GenerateSolution.preprocessors = _solution_pps
c.StrictExecute.timeout = 300

# --- autograding -----------------------------------------------------------
# Trusted grading (labs/grading/nbgrader_steps.py): every notebook runs in a sandbox of its own
# (labs/grading/sandbox.py: bubblewrap, no network, no view of the course, its own PID namespace,
# memory and process limits for the whole submission, a wall-clock budget); the hidden
# tests only probe; the judge compares the probe data with the solution's, outside the
# kernel, and writes each graded cell's verdict before SaveAutoGrades. Cells keep the
# outputs the student submitted, never outputs made while grading.
c.Execute.timeout = 60  # seconds per cell (the sandbox's per-cell timeout)
c.SandboxedExecute.timeout = c.Execute.timeout
c.OverwriteCells.add_missing_cells = True
c.Autograde.sanitize_preprocessors = [
    "labs.grading.nbgrader_steps.DeduplicateIds",
    "labs.grading.nbgrader_steps.KeepSubmittedOutputs",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "labs.grading.nbgrader_steps.RestoreCellOrder",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "labs.grading.nbgrader_steps.SandboxedExecute",
    "labs.grading.nbgrader_steps.Judge",
    "labs.grading.nbgrader_steps.SanitizeStudentHTML",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# --- late submissions --------------------------------------------------------
# The deadline lives in the gradebook (`nbgrader db assignment add lab_2_1_3 --duedate=...`,
# or `make assignment DUEDATE=...`). Policy: "zero" (late work scores 0), "none" (no penalty),
# or the name of a LateSubmissionPlugin subclass; set LAB_LATE_POLICY.
_late = os.environ.get("LAB_LATE_POLICY", "none")
if _late == "zero":
    c.AssignLatePenalties.plugin_class = "nbgrader.plugins.LateSubmissionPlugin"
    c.LateSubmissionPlugin.penalty_method = "zero"
elif _late != "none":
    c.AssignLatePenalties.plugin_class = _late

# --- feedback ----------------------------------------------------------------
# Stock feedback shows the hidden tests that autograde put back (nbgrader #1363): remove them
# from the instructor's test cells only (a student's marker text breaks nothing); graded cells
# hold only the judge's message; outputs are the student's own, HTML sanitized.
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "labs.grading.nbgrader_steps.ClearHiddenTestCells",
    "labs.grading.nbgrader_steps.SanitizeStudentHTML",
    "labs.grading.nbgrader_steps.OfflineMath",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
# The page opens offline and calls no third party: nbgrader's feedback template with its MathJax-from-a-CDN
# macro replaced (labs/grading/templates/feedback/mathjax.html.j2, found first), the math written
# as MathML by OfflineMath.
import nbgrader  # noqa: E402

import labs  # noqa: E402

c.HTMLExporter.template_name = "feedback"
c.HTMLExporter.extra_template_basedirs = [
    os.path.join(os.path.dirname(labs.__file__), "grading", "templates"),
    os.path.join(os.path.dirname(nbgrader.__file__), "server_extensions", "formgrader", "templates"),
]

# --- collecting an LMS download ----------------------------------------------
# `make collect` (labs/grading/collect.py) reads these settings and files each upload under the student
# the LMS says uploaded it, refusing nested archives and inner names that claim another student; do not
# run `nbgrader zip_collect` by hand: it takes the student id from names inside a student's own zip.
# `nbgrader zip_collect lab_2_1_3` reads downloaded/lab_2_1_3/archive/*.zip, extracts to
# downloaded/lab_2_1_3/extracted/, and files each notebook under submitted/<student>/.
# File names like `<student>_<anything>_<notebook>.ipynb` (the common LMS pattern; also
# Moodle's `<student>_<id>_assignsubmission_file_<notebook>.ipynb`).
c.ZipCollectApp.archive_directory = "archive"
c.ZipCollectApp.extracted_directory = "extracted"
c.FileNameCollectorPlugin.named_regexp = (
    r"^(?:.*/)?(?P<student_id>[A-Za-z0-9][A-Za-z0-9.\-]*)_(?:[^/]*_)?(?P<file_id>\d\d_[A-Za-z0-9_]+\.ipynb)$"
)

# --- export: grades.csv with one row per student and notebook (labs/grading/report.py) ----
c.ExportApp.plugin_class = "labs.grading.report.PerNotebookCsv"
