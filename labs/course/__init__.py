"""Authoring the course: one source notebook per lesson, and everything made from it.

In the order data flows:

    notebooks      read, normalize (`python -m labs.course.notebooks`), regions, grade ids, content hashes
    preprocessors  the nbgrader/nbconvert preprocessors of the solutions build (nbgrader_config.py names them)
    build          source/ -> release/ (nbgrader generate_assignment) and solutions/ (executed), `make build`
    checks         release/ and solutions/ fresh, no hidden line leaked, notebooks clean, `make` gates
    studytime      the time a student needs, computed from each lesson and stated in it
    corpus         tests-of-the-tests: realistic student answers (tests/corpus/) and the verdicts they expect
    lab            `make lab`: JupyterLab on the student's working copy of the release, with Validate
    validate       Validate, extended: nbgrader's verdict plus what the grader's scan will flag
    bench          `make bench`: the lessons' speed and memory targets, side by side

It does not import the grading wing (labs/grading/), with one stated exception enforced by
import-linter (pyproject.toml): `validate` runs the grader's own static scan, so that what a
student sees before submitting is exactly what grading will flag.
"""
