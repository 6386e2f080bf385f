"""Shared paths and helpers for the test suite."""

from __future__ import annotations

import functools
from pathlib import Path

from primer import notebooks

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())


def spec_module(assignment: str) -> str:
    """'01_parameterized_functions' -> 'a01_parameterized_functions' (primer/exercises, tests/mutants)."""
    return f"a{assignment}"


def solution_notebook(assignment: str) -> Path:
    return REPO / "solutions" / assignment / f"{assignment}.ipynb"


def release_notebook(assignment: str) -> Path:
    return REPO / "notebooks" / assignment / f"{assignment}.ipynb"


@functools.cache
def solution_namespace(assignment: str) -> dict:
    return notebooks.exec_definitions(notebooks.read(solution_notebook(assignment)))


@functools.cache
def release_namespace(assignment: str) -> dict:
    return notebooks.exec_definitions(notebooks.read(release_notebook(assignment)))


def exercises_in(assignment: str) -> list[str]:
    """Exercise names, in notebook order, from the checks its graded cells call."""
    cells = notebooks.graded_cells(notebooks.read(solution_notebook(assignment)))
    return list(dict.fromkeys(k.split(".")[0] for c in cells for k in c.check_keys))
