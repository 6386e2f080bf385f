"""nbgrader end to end, on a temporary copy of the course, per assignment.

Students: the solution (full marks), the untouched release (0, every graded cell saying "not
implemented yet"), and one exercise replaced by a known mutant (loses exactly that exercise's
points). This is also where the released notebooks are executed top to bottom.
"""

from __future__ import annotations

import csv
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from primer import notebooks
from primer.grading import checks_for, evaluate, grading_seed
from tests.helpers import ASSIGNMENTS, REPO, exercises_in, spec_module
from tests.mutants import load_all
from tests.mutants.a01_parameterized_functions import mse_with_pow_and_warning

GRADING_SEED = "777"


def run(cmd: list[str], cwd: Path, **kw) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PRIMER_GRADING_SEED=GRADING_SEED)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, **kw)


def make_course(tmp: Path, assignment: str) -> Path:
    shutil.copytree(REPO / "solutions" / assignment, tmp / "solutions" / assignment)
    (tmp / "autograder").mkdir()
    for name in ("nbgrader_config.py", "grade.py"):
        shutil.copy(REPO / "autograder" / name, tmp / "autograder" / name)
    out = run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
              tmp / "autograder")
    assert out.returncode == 0, out.stderr
    return tmp


def submit(course: Path, student: str, assignment: str, nb) -> None:
    folder = course / "submitted" / student / assignment
    folder.mkdir(parents=True)
    if isinstance(nb, (str, bytes)):
        (folder / f"{assignment}.ipynb").write_text(nb if isinstance(nb, str) else nb.decode())
    else:
        nbformat.write(nb, str(folder / f"{assignment}.ipynb"))


def autograde(course: Path, assignment: str, *extra: str) -> str:
    out = run([sys.executable, "autograder/grade.py", assignment, *extra], course, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    for cmd in (["generate_feedback", assignment], ["export", "--to", "../grades.csv"]):
        done = run([sys.executable, "-m", "nbgrader", *cmd], course / "autograder")
        assert done.returncode == 0, done.stderr
    return out.stdout


def grades(course: Path) -> dict[str, float]:
    with open(course / "grades.csv") as f:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}


def cell_scores(course: Path, assignment: str, student: str) -> dict[str, float]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gb:
        nb = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: g.score for g in nb.grades}


def with_cell_replaced(nb, grade_id: str, source: str):
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    cell.source = source
    return nb


def mutant_source(obj, exercise: str) -> str:
    """The mutant's source, renamed to the exercise's name, as a learner's cell would hold it."""
    source = inspect.cleandoc(inspect.getsource(obj))
    source = "\n".join(line for line in source.splitlines() if not line.startswith("@"))
    return re.sub(rf"^(def|class) {obj.__name__}\b", rf"\1 {exercise}", source, count=1, flags=re.M)


def wrong_submission(assignment: str, solution):
    """The solution with one exercise replaced by a mutant that fails all of its checks."""
    module = spec_module(assignment)
    for exercise in exercises_in(assignment):
        for v in load_all():
            if v.assignment == module and v.exercise == exercise and not v.correct:
                results = [evaluate(s, v.obj, grading_seed()) for s in checks_for(exercise)]
                results += [evaluate(s, v.obj) for s in checks_for(exercise)]
                if not any(r.passed for r in results):
                    grade_id = _solution_cell_id(solution, exercise)
                    return exercise, with_cell_replaced(solution, grade_id, mutant_source(v.obj, exercise))
    raise AssertionError(f"no mutant in tests/mutants/{module}.py fails every check of an exercise")


def _solution_cell_id(nb, exercise: str) -> str:
    for c in nb.cells:
        meta = c.metadata.get("nbgrader", {})
        if meta.get("solution") and re.search(rf"^(def|class) {exercise}\b", c.source, re.M):
            return meta["grade_id"]
    raise AssertionError(f"no solution cell defines {exercise}")


def points_of(nb, exercise: str) -> float:
    return sum(c.points for c in notebooks.graded_cells(nb)
               if any(k.split(".")[0] == exercise for k in c.check_keys))


def outputs(nb_path: Path):
    """(cell, error text, stderr text) for every code cell of an autograded notebook."""
    nb = notebooks.read(nb_path)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")
        stderr = "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stderr")
        yield cell, errors, stderr


def check_solution_release_and_one_wrong(assignment, tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMER_GRADING_SEED", GRADING_SEED)
    course = make_course(tmp_path, assignment)
    solution = notebooks.read(course / "solutions" / assignment / f"{assignment}.ipynb")
    release = notebooks.read(course / "notebooks" / assignment / f"{assignment}.ipynb")
    total = sum(c.points for c in notebooks.graded_cells(solution))
    wrong_exercise, wrong = wrong_submission(assignment, solution)

    submit(course, "solution", assignment, solution)
    submit(course, "untouched", assignment, release)
    submit(course, "one_wrong", assignment, wrong)
    report = autograde(course, assignment)

    scores = grades(course)
    assert scores["solution"] == total, (report, cell_scores(course, assignment, "solution"))
    assert scores["untouched"] == 0
    assert scores["one_wrong"] == total - points_of(solution, wrong_exercise), \
        cell_scores(course, assignment, "one_wrong")
    for student in ("solution", "untouched", "one_wrong"):
        assert (course / "feedback" / student / assignment / f"{assignment}.html").exists()

    graded = course / "autograded"
    for cell, errors, stderr in outputs(graded / "solution" / assignment / f"{assignment}.ipynb"):
        assert not errors and not stderr, f"solution cell {cell.source[:80]!r}: {errors}{stderr}"
    # The released notebook runs to the end; every graded cell says the exercise is not done.
    for cell, errors, _ in outputs(graded / "untouched" / assignment / f"{assignment}.ipynb"):
        if cell.metadata.get("nbgrader", {}).get("grade"):
            assert "CheckFailed" in errors and "not implemented yet" in errors, errors
        else:
            assert not errors, f"release cell {cell.source[:80]!r} raised {errors}"


# One class per assignment: pytest-xdist's --dist loadscope sends each class to its own worker,
# so the assignments' autograde runs proceed in parallel.
for _assignment in ASSIGNMENTS:
    def _test(self, tmp_path, monkeypatch, _a=_assignment):
        check_solution_release_and_one_wrong(_a, tmp_path, monkeypatch)
    _name = f"TestAutograde{_assignment.split('_')[0]}"
    globals()[_name] = type(_name, (), {"test_solution_full_release_zero_one_wrong": _test})


def test_bad_submissions_cost_only_their_own_points(tmp_path, monkeypatch):
    """Issue #2 "bad input", on assignment 01: every other exercise and student is still graded."""
    assignment = "01_parameterized_functions"
    monkeypatch.setenv("PRIMER_GRADING_SEED", GRADING_SEED)
    course = make_course(tmp_path, assignment)
    solution = notebooks.read(course / "solutions" / assignment / f"{assignment}.ipynb")
    total = sum(c.points for c in notebooks.graded_cells(solution))
    text = (course / "solutions" / assignment / f"{assignment}.ipynb").read_text()

    submit(course, "solution", assignment, solution)
    submit(course, "broken_json", assignment, text[: len(text) // 2])
    renamed = course / "submitted" / "renamed" / assignment
    renamed.mkdir(parents=True)
    nbformat.write(solution, str(renamed / "my copy.ipynb"))
    submit(course, "loops_forever", assignment, with_cell_replaced(
        solution, _solution_cell_id(solution, "next_token_loss"), "while True:\n    pass"))
    submit(course, "wrong_shape", assignment, with_cell_replaced(
        solution, _solution_cell_id(solution, "mse_loss"),
        "def mse_loss(pred, target, reduction='mean'):\n    return ((pred - target) ** 2).mean(0)"))
    submit(course, "warns", assignment, with_cell_replaced(  # correct, but noisy on stderr
        solution, _solution_cell_id(solution, "mse_loss"),
        "import warnings\nwarnings.warn('defined with a warning')\n\n"
        + mutant_source(mse_with_pow_and_warning, "mse_loss")))
    submit(course, "kernel_dies", assignment, with_cell_replaced(
        solution, _solution_cell_id(solution, "dataset_loss"), "import os\nos._exit(1)"))

    report = autograde(course, assignment, "--timeout", "10")
    lines = {line.split()[0]: line for line in report.splitlines()[1:] if line.strip()}
    scores = grades(course)
    assert scores["solution"] == total
    assert scores["warns"] == total, cell_scores(course, assignment, "warns")
    assert scores["loops_forever"] == total - points_of(solution, "next_token_loss")
    assert scores["wrong_shape"] == total - points_of(solution, "mse_loss")
    assert scores["broken_json"] == 0 and "not valid JSON" in lines["broken_json"]
    assert scores.get("renamed", 0) == 0 and "my copy.ipynb" in lines["renamed"]
    assert scores.get("kernel_dies", 0) == 0 and "kernel died" in lines["kernel_dies"]

    feedback = (course / "feedback" / "wrong_shape" / assignment / f"{assignment}.html").read_text()
    assert "wrong shape" in feedback
