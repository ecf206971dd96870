"""nbgrader settings for the Autograd Deep Dive course (Lab 2.1.3).

Every nbgrader command of the Makefile and the tests reads this file. The course
root is the directory nbgrader runs in (the repository, or a throwaway copy of
it in the tests); `labs` (the course tooling) must be importable, which the
Makefile and tests arrange with PYTHONPATH.
"""

import os

c = get_config()  # noqa: F821  (injected by traitlets when nbgrader loads this file)

c.CourseDirectory.course_id = "autograd-deep-dive"
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
    "labs.preprocessors.MarkSolutionRegions",
    "labs.preprocessors.RecordSourceHash",
]
if os.environ.get("LAB_SOLUTIONS_EXECUTE", "1") != "0":
    _solution_pps.append("labs.preprocessors.StrictExecute")
c.GenerateSolution.preprocessors = _solution_pps
c.StrictExecute.timeout = 300

# --- autograding -----------------------------------------------------------
c.Execute.timeout = 60  # seconds per cell: an infinite loop costs one cell, not the batch
c.Execute.interrupt_on_timeout = True
c.Execute.extra_arguments = ["--HistoryManager.hist_file=:memory:"]
