"""Preprocessors the nbgrader converters use (named in nbgrader_config.py)."""

from __future__ import annotations

import nbformat
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Bool, Unicode

from . import notebooks


class StrictExecute(Execute):
    """nbgrader's Execute, but a cell that raises fails the build.

    nbgrader's Execute sets ``allow_errors = True`` (and does not let config change it),
    which is right for grading and wrong for a solutions build: a worked answer that
    raises must never be published. Cells tagged ``raises-exception`` (they show a
    bug on purpose) may still raise; nbclient and nbval both honour that tag.
    """

    allow_errors = Bool(False)
    record_timing = Bool(False)


class MarkSolutionRegions(NbGraderPreprocessor):
    """Replace ``### BEGIN/END SOLUTION`` by banners a reader cannot miss."""

    begin_banner = Unicode(
        "# ▼▼▼ SOLUTION: the part you had to write ▼▼▼"
    ).tag(config=True)
    end_banner = Unicode("# ▲▲▲ END OF SOLUTION ▲▲▲").tag(config=True)
    markdown_banner = Unicode("**✎ Solution: the answer you had to write**").tag(config=True)

    def preprocess_cell(self, cell, resources, index):
        if notebooks.SOLUTION_BEGIN not in cell.source:
            return cell, resources
        lines = []
        for line in cell.source.splitlines():
            indent = line[: len(line) - len(line.lstrip())]
            if notebooks.SOLUTION_BEGIN in line:
                banner = self.begin_banner if cell.cell_type == "code" else self.markdown_banner
                lines.append(indent + banner)
            elif notebooks.SOLUTION_END in line:
                if cell.cell_type == "code":
                    lines.append(indent + self.end_banner)
            else:
                lines.append(line)
        cell.source = "\n".join(lines)
        return cell, resources


class SolutionsBanner(NbGraderPreprocessor):
    """Open the solutions companion with what it is and where the answers are, right under
    the lesson's title (the reader who lands here from a search must not mistake it for the
    exercise)."""

    text = Unicode(
        "> **Solutions companion.** This is the worked version of the lesson, for after you have tried it "
        "yourself in the release notebook of the same name. Every exercise is answered in place, between "
        "the banners `▼▼▼ SOLUTION` and `▲▲▲ END OF SOLUTION`; each answer is followed by a section "
        "*Why this answer is right, and the usual mistakes*. Every cell was run (on the CPU) and its "
        "outputs are stored. Graded test cells show only their visible part: the hidden tests are not "
        "here."
    ).tag(config=True)

    def preprocess(self, nb, resources):
        banner = nbformat.v4.new_markdown_cell(self.text)
        banner.id = "solutions-banner"  # fixed: a rebuild must not change the file
        nb.cells.insert(1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0, banner)
        return nb, resources


class RecordSourceHash(NbGraderPreprocessor):
    """Stamp the solutions notebook with the hash of the source it came from.

    `make` skips re-executing a solutions notebook whose stamp matches its source, and
    the freshness gate fails when a stamp is stale.
    """

    def preprocess(self, nb, resources):
        path = resources.get("metadata", {}).get("path")
        name = resources.get("unique_key")
        if path and name:
            source = f"{path}/{name}.ipynb"
            nb.metadata.setdefault("lab", {})["source_sha256"] = notebooks.content_hash(source)
        return nb, resources
