"""Shared paths and helpers for the test suite."""

from __future__ import annotations

import functools
import re
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


# What a solution cell may not show (conftest.py checks it on the outputs nbval collected).
FIGURE_AS_TEXT = re.compile(r"<Figure size .* with \d+ Axes>")


def solution_output_problem(outputs) -> str | None:
    for out in outputs or []:
        if out.get("output_type") == "stream" and out.get("name") == "stderr":
            return f"the cell wrote to stderr: {out.get('text', '')[:500]}"
        data = out.get("data") or {}
        if FIGURE_AS_TEXT.search(data.get("text/plain", "")) and "image/png" not in data:
            return f"a figure shown as text, not as an image: {data['text/plain'][:100]}"
    return None
