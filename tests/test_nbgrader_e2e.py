"""Every assignment graded the trusted way: the solution gets full marks, the solution with one
exercise replaced by a known mutant loses exactly that exercise's points.

06 (processes started inside the sandbox) goes end to end through `autograder/grade.py`: two
sandboxed workers, nbgrader's gradebook and feedback. 02–05 and 07 (07: gloo ranks in the
sandbox, as 06) are verified directly (primer.grader.verify: the same sandbox, warm as a grading
worker's, and judge; nbgrader's part is the same for every assignment). Assignment
01 is graded end to end by tests/test_classrun.py (a class, the release included),
test_adversarial.py (attacks), test_postgres.py and test_zip_collect.py.
"""

from __future__ import annotations

import sys

from primer import notebooks
from primer.exercises import sandbox_preload
from primer.grader import zygote
from primer.grader.sandbox import Sandbox
from primer.grader.verify import verify
from tests.grading_course import (
    export,
    make_course,
    points_of,
    run,
    solution,
    submit,
    total_points,
    wrong_submission,
)
from tests.helpers import ASSIGNMENTS, release_notebook, solution_notebook


def grade_class(course, assignment: str) -> str:
    out = run([sys.executable, "autograder/grade.py", assignment, "--workers", "2", "--no-progress",
               "--cell-timeout", "20"], course, timeout=900)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


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


class TestAutograde06:
    def test_solution_full_one_wrong_through_the_class_run(self, tmp_path):
        check_solution_release_and_one_wrong("06_data_parallel", tmp_path)


def check_verified_scores(assignment: str) -> None:
    sol, rel = notebooks.read(solution_notebook(assignment)), notebooks.read(release_notebook(assignment))
    wrong_exercise, wrong = wrong_submission(assignment, sol)
    sandbox = Sandbox()
    uid = sandbox.uid_base + 40 + ASSIGNMENTS.index(assignment)  # not a class-run worker's
    # as a grading worker does: one zygote for both notebooks, where one can serve (as root)
    box = zygote.WarmSandbox(sandbox, uid, sandbox_preload(assignment)) if zygote.usable() else sandbox
    full = total_points(sol)
    try:
        for nb, expected in ((sol, full), (wrong, full - points_of(sol, wrong_exercise))):
            result = verify(nb, rel, seed=4321, sandbox=box, uid=uid, preload=sandbox_preload(assignment),
                            notebook_dir=solution_notebook(assignment).parent)
            failed = [c.message for c in result.cells if not c.passed]
            assert result.score == expected, (result.problem, failed)
            assert not result.problem and not result.notes
    finally:
        if box is not sandbox:
            box.remove()


# One class per assignment: pytest-xdist's --dist loadscope sends each class to its own worker.
for _assignment in ("02_gradient_descent", "03_backpropagation", "04_layers", "05_mixed_precision",
                    "07_model_parallel"):
    def _test(self, _a=_assignment):
        check_verified_scores(_a)
    _name = f"TestVerified{_assignment.split('_')[0]}"
    globals()[_name] = type(_name, (), {"test_solution_full_one_wrong_loses_its_points": _test})
