"""nbgrader end to end through the course's class grader, on a temporary course per assignment.

Students: the solution (full marks) and the solution with one exercise replaced by a known mutant
(loses exactly that exercise's points). `autograder/grade.py` verifies them in the sandbox with two
workers, then nbgrader records the grades and writes the feedback. Assignment 01 is graded end to
end by tests/test_classrun.py (a class, the release included), test_adversarial.py (attacks),
test_postgres.py and test_zip_collect.py, so it is not repeated here.
"""

from __future__ import annotations

import inspect
import re
import sys

from primer import notebooks
from primer.grading import checks_for, evaluate
from tests.grading_course import (
    edited,
    export,
    make_course,
    points_of,
    run,
    solution,
    solution_cell_id,
    submit,
    total_points,
)
from tests.helpers import ASSIGNMENTS, exercises_in, spec_module
from tests.mutants import load_all


def grade_class(course, assignment: str) -> str:
    out = run([sys.executable, "autograder/grade.py", assignment, "--workers", "2", "--no-progress",
               "--cell-timeout", "20"], course, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def mutant_source(obj, exercise: str) -> str:
    """The mutant's source, renamed to the exercise's name, as a learner's cell would hold it."""
    source = inspect.cleandoc(inspect.getsource(obj))
    source = "\n".join(line for line in source.splitlines() if not line.startswith("@"))
    return re.sub(rf"^(def|class) {obj.__name__}\b", rf"\1 {exercise}", source, count=1, flags=re.M)


def wrong_submission(assignment: str, sol):
    """The solution with one exercise replaced by a mutant that fails all of its checks."""
    module = spec_module(assignment)
    for exercise in exercises_in(assignment):
        for v in load_all():
            if v.assignment == module and v.exercise == exercise and not v.correct:
                results = [evaluate(s, v.obj, seed) for s in checks_for(exercise) for seed in (0, 1, 2)]
                if not any(r.passed for r in results):
                    cell = solution_cell_id(sol, exercise)
                    return exercise, edited(sol, cell, mutant_source(v.obj, exercise))
    raise AssertionError(f"no mutant in tests/mutants/{module}.py fails every check of an exercise")


def check_solution_release_and_one_wrong(assignment, tmp_path):
    course = make_course(tmp_path, assignment)
    sol = solution(course, assignment)
    total = total_points(sol)
    wrong_exercise, wrong = wrong_submission(assignment, sol)
    submit(course, "solution", assignment, sol)
    submit(course, "one_wrong", assignment, wrong)
    report = grade_class(course, assignment)

    scores = export(course)
    assert scores == {"solution": total, "one_wrong": total - points_of(sol, wrong_exercise)}, report
    graded = notebooks.read(course / "autograded" / "solution" / assignment / f"{assignment}.ipynb")
    for cell in graded.cells:  # the solution's every test cell shows the verified pass
        if cell.metadata.get("nbgrader", {}).get("grade"):
            assert [o.output_type for o in cell.outputs] == ["stream"], cell.source
            assert "✓" in cell.outputs[0].text and "verified" in cell.outputs[0].text
    feedback = (course / "feedback" / "one_wrong" / assignment / f"{assignment}.html").read_text()
    assert "BEGIN HIDDEN TESTS" not in feedback and "hidden=True" not in feedback
    assert f"{wrong_exercise}:" in feedback  # the contents list names the exercise, not "Test cell"


# One class per assignment: pytest-xdist's --dist loadscope sends each class to its own worker.
for _assignment in [a for a in ASSIGNMENTS if a != "01_parameterized_functions"]:
    def _test(self, tmp_path, _a=_assignment):
        check_solution_release_and_one_wrong(_a, tmp_path)
    _name = f"TestAutograde{_assignment.split('_')[0]}"
    globals()[_name] = type(_name, (), {"test_solution_full_release_zero_one_wrong": _test})
