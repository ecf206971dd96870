"""What the class got right and wrong: grades.csv per notebook, and an instructor report.

`PerNotebookCsv` is an nbgrader export plugin (configured in nbgrader_config.py), so
`nbgrader export` writes one row per student and notebook, with the late penalty.
`write()` makes report/<assignment>.md and .png: the score distribution, and for each
graded test the share of students who lost its points.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from nbgrader.api import Gradebook
from nbgrader.plugins import ExportPlugin

from .. import ASSIGNMENT, db_url


def review_flags(course: Path, student: str, assignment: str, notebook: str) -> list[str]:
    """What the static scan flagged for an instructor's review in one graded notebook."""
    path = course / "autograded" / student / assignment / f"{notebook}.ipynb"
    if not path.is_file():
        return []
    try:
        return [str(f) for f in json.loads(path.read_text()).get("metadata", {}).get("lab_grading", {})
                .get("review", [])]
    except ValueError:
        return []


class PerNotebookCsv(ExportPlugin):
    """grades.csv: one row per student and notebook. `score` is after the late penalty,
    `raw_score` before it (what the tests gave); `review` lists what the scan flagged
    for an instructor's review (never scored)."""

    def export(self, gradebook: Gradebook) -> None:
        dest = self.to or "grades.csv"
        with open(dest, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["assignment", "duedate", "student_id", "notebook", "score", "max_score",
                        "raw_score", "late_penalty", "seconds_late", "timestamp", "review_flags", "review"])
            for assignment in gradebook.assignments:
                for student in gradebook.students:
                    try:
                        sub = gradebook.find_submission(assignment.name, student.id)
                    except Exception:  # no submission: zero for every notebook
                        for nb in assignment.notebooks:
                            w.writerow([assignment.name, assignment.duedate, student.id, nb.name, 0.0,
                                        nb.max_score, 0.0, 0.0, 0, "", 0, ""])
                        continue
                    for nb in sub.notebooks:
                        penalty = nb.late_submission_penalty or 0.0
                        flags = review_flags(Path.cwd(), student.id, assignment.name, nb.name)
                        w.writerow([assignment.name, assignment.duedate, student.id, nb.name,
                                    max(0.0, nb.score - penalty), nb.max_score, nb.score, penalty,
                                    sub.total_seconds_late, sub.timestamp, len(flags), " | ".join(flags)[:2000]])


def class_stats(course: Path, assignment: str = ASSIGNMENT) -> dict:
    """{'totals': [(student, score, max)], 'tests': {(notebook, grade_id): (failed, graded, points)}}"""
    totals, tests = [], {}
    with Gradebook(db_url(course)) as gb:
        for sub in gb.assignment_submissions(assignment):
            totals.append((sub.student.id, sub.score, sub.max_score))
            for nb in sub.notebooks:
                for g in nb.grades:
                    if not g.max_score:
                        continue
                    failed, n, pts = tests.get((nb.name, g.name), (0, 0, g.max_score))
                    tests[(nb.name, g.name)] = (failed + (g.score < g.max_score), n + 1, pts)
        # a student nbgrader created but could not grade (no readable notebook) scores zero
        graded = {t[0] for t in totals}
        assignment_ = gb.find_assignment(assignment)
        for student in gb.students:
            if student.id in graded:
                continue
            totals.append((student.id, 0.0, assignment_.max_score))
            for nb in assignment_.notebooks:
                for cell in nb.grade_cells:
                    if cell.max_score:
                        failed, n, pts = tests.get((nb.name, cell.name), (0, 0, cell.max_score))
                        tests[(nb.name, cell.name)] = (failed + 1, n + 1, pts)
    return {"totals": sorted(totals), "tests": dict(sorted(tests.items()))}


def write(course: Path, assignment: str = ASSIGNMENT) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stats = class_stats(course, assignment)
    out = course / "report"
    out.mkdir(exist_ok=True)
    scores = [s for _, s, _ in stats["totals"]]
    most = max((m for _, _, m in stats["totals"]), default=0)
    fig, (a, b) = plt.subplots(1, 2, figsize=(13, 4 + 0.15 * len(stats["tests"])))
    a.hist(scores, bins=max(1, min(20, int(most) + 1)), range=(0, most or 1), color="steelblue")
    a.set_title(f"{assignment}: total scores ({len(scores)} students)")
    a.set_xlabel(f"score (out of {most:g})")
    labels = [f"{nb}: {gid}" for nb, gid in stats["tests"]]
    shares = [100 * f / n if n else 0 for f, n, _ in stats["tests"].values()]
    b.barh(labels, shares, color="indianred")
    b.invert_yaxis()
    b.set_xlim(0, 100)
    b.set_xlabel("% of students who lost the test's points")
    b.set_title("Which tests the class missed")
    fig.tight_layout()
    png = out / f"{assignment}.png"
    fig.savefig(png, dpi=100)
    plt.close(fig)
    lines = [f"# Grading report: {assignment}", "",
             f"{len(scores)} submissions; mean {sum(scores) / max(1, len(scores)):.2f} / {most:g}; "
             f"full marks: {sum(s == most for s in scores)}; zero: {sum(s == 0 for s in scores)}.", "",
             f"![scores and failed tests]({png.name})", "",
             "| notebook | graded test | points | lost by | share |", "|---|---|---|---|---|"]
    for (nb, gid), (f, n, pts) in stats["tests"].items():
        lines.append(f"| {nb} | {gid} | {pts:g} | {f}/{n} | {100 * f / n if n else 0:.0f}% |")
    flagged = [(student, path.stem, flag) for student, _, _ in stats["totals"]
               for path in sorted((course / "autograded" / student / assignment).glob("*.ipynb"))
               for flag in review_flags(course, student, assignment, path.stem)]
    lines += ["", "## Flagged for review", "",
              "Code that reaches for the grader or the runtime (never scored: read it and decide).", ""]
    lines += [f"- {student} / {nb}: {flag}" for student, nb, flag in flagged] or ["None."]
    md = out / f"{assignment}.md"
    md.write_text("\n".join(lines) + "\n")
    return md
