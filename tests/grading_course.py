"""A temporary nbgrader course for grading tests: make it, submit notebooks, grade, read scores."""

from __future__ import annotations

import copy
import csv
import inspect
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from primer import notebooks
from primer.grading import checks_for, evaluate
from tests.helpers import REPO, exercises_in, solution_namespace, spec_module
from tests.mutants import load_all

# Short deadlines: the tests' endless loops are stopped quickly (a correct cell takes < 1 s).
FAST = ["--VerifiedExecute.cell_seconds=8", "--VerifiedExecute.check_seconds=30"]


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("PRIMER_GRADING_SEED", None)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)


def make_course(tmp: Path, assignment: str) -> Path:
    shutil.copytree(REPO / "solutions" / assignment, tmp / "solutions" / assignment)
    shutil.copytree(REPO / "autograder", tmp / "autograder",
                    ignore=shutil.ignore_patterns("gradebook.db", ".grading_*", "verified", "class-report",
                                                  "*.log", "__pycache__", ".grading-*"))
    out = run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
              tmp / "autograder")
    assert out.returncode == 0, out.stderr
    return tmp


def solution(course: Path, assignment: str):
    return notebooks.read(course / "solutions" / assignment / f"{assignment}.ipynb")


def release(course: Path, assignment: str):
    return notebooks.read(course / "notebooks" / assignment / f"{assignment}.ipynb")


def submit(course: Path, student: str, assignment: str, nb, name: str | None = None) -> Path:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{assignment}.ipynb")
    if isinstance(nb, str):
        path.write_text(nb)
    else:
        nbformat.write(nb, str(path))
    return path


def nbgrader_autograde(course: Path, assignment: str, *extra: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "nbgrader", "autograde", assignment, "--create", *FAST, *extra],
               course / "autograder", timeout=1200)


def export(course: Path) -> dict[str, float]:
    out = run([sys.executable, "-m", "nbgrader", "export", "--to", "../grades.csv"], course / "autograder")
    assert out.returncode == 0, out.stderr
    with open(course / "grades.csv") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


def cell_of(nb, grade_id: str):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def edited(nb, grade_id: str, source: str | None = None, *, append: str = ""):
    """A copy of `nb` with one cell's source replaced and/or code appended to it."""
    nb = copy.deepcopy(nb)
    cell = cell_of(nb, grade_id)
    cell.source = (cell.source if source is None else source) + (f"\n{append}" if append else "")
    return nb


def points_of(nb, exercise: str) -> float:
    return sum(c.points for c in notebooks.graded_cells(nb)
               if any(k.split(".")[0] == exercise for k in c.check_keys))


def total_points(nb) -> float:
    return sum(c.points for c in notebooks.graded_cells(nb))


def solution_cell_id(nb, exercise: str) -> str:
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and re.search(rf"^(def|class) {exercise}\b", c.source, re.M):
            return meta["grade_id"]
    raise AssertionError(f"no solution cell defines {exercise}")


def mutant_source(obj, exercise: str) -> str:
    """The mutant's source, renamed to the exercise's name, as a learner's cell would hold it."""
    source = inspect.cleandoc(inspect.getsource(obj))
    start = re.search(rf"^(def|class) {obj.__name__}\b", source, flags=re.M)  # (after its decorators)
    return re.sub(rf"^(def|class) {obj.__name__}\b", rf"\1 {exercise}", source[start.start():], count=1)


def _fails_everywhere(obj, exercise: str) -> bool:
    """Every check fails on seeds 0, 1, 2, and not for a name the cell lacks (stops at the first
    check that passes: most candidates are rejected after one)."""
    for spec in checks_for(exercise):
        for seed in (0, 1, 2):
            result = evaluate(spec, obj, seed)
            if result.passed or "is not defined" in result.message:
                return False
    return True


def standalone_mutants(assignment: str, exercise: str):
    """(mutant, its source as a cell, the object that cell defines) for each mutant of `exercise`
    that stands as a cell of its own after the solution's cells (a mutant built on helpers of its
    module, or made by a factory, cannot stand in a notebook)."""
    solved = solution_namespace(assignment)
    for v in load_all():
        if v.assignment == spec_module(assignment) and v.exercise == exercise and not v.correct:
            try:
                source = mutant_source(v.obj, exercise)
                namespace = dict(solved)
                exec(compile(source, "<cell mutant>", "exec"), namespace)
            except Exception:
                continue
            yield v, source, namespace[exercise]


def wrong_submission(assignment: str, sol):
    """The solution with one exercise replaced by a mutant that fails all of its checks, as a cell of
    its own would."""
    module = spec_module(assignment)
    for exercise in exercises_in(assignment):
        for _, source, obj in standalone_mutants(assignment, exercise):
            if _fails_everywhere(obj, exercise):
                return exercise, edited(sol, solution_cell_id(sol, exercise), source)
    raise AssertionError(f"no mutant in tests/mutants/{module} fails every check of an exercise")
