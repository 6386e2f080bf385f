"""Reading course notebooks: which cells are the learner's, which are graded, what they check.

Used by the tests (to take the solutions and the released stubs straight from the notebooks)
and by the progress report. Never executes anything by itself except in `exec_definitions`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

CHECK_CALL = re.compile(r"""check\(\s*["']([\w.]+)["']""")
HIDDEN_BLOCK = re.compile(r"### BEGIN HIDDEN TESTS.*?### END HIDDEN TESTS\n?", re.S)


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    source: str

    @property
    def check_keys(self) -> list[str]:
        """The checks this cell calls (hidden ones included), in order, without repeats."""
        return list(dict.fromkeys(CHECK_CALL.findall(self.source)))

    @property
    def visible_source(self) -> str:
        return HIDDEN_BLOCK.sub("", self.source)


def read(path: Path | str) -> nbformat.NotebookNode:
    return nbformat.read(str(path), as_version=4)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def is_test_cell(cell) -> bool:
    """A graded cell that is not the learner's: a test cell."""
    meta = _nbgrader(cell)
    return cell.get("cell_type") == "code" and bool(meta.get("grade")) and not meta.get("solution")


def solution_cells(nb) -> list[str]:
    return [c.source for c in nb.cells if c.cell_type == "code" and _nbgrader(c).get("solution")]


def graded_cells(nb) -> list[GradedCell]:
    return [GradedCell(_nbgrader(c)["grade_id"], float(_nbgrader(c).get("points", 0)), c.source)
            for c in nb.cells if c.cell_type == "code" and _nbgrader(c).get("grade")]


def setup_cell(nb) -> str:
    """The first code cell: the notebook's imports, which the learner's cells rely on."""
    return next(c.source for c in nb.cells if c.cell_type == "code")


def exec_definitions(nb, namespace: dict | None = None) -> dict:
    """Run the set-up cell and every learner (solution) cell; return the resulting namespace."""
    namespace = {"__name__": "__course_notebook__"} if namespace is None else namespace
    for source in [setup_cell(nb), *solution_cells(nb)]:
        exec(compile(source, "<notebook cell>", "exec"), namespace)
    return namespace
