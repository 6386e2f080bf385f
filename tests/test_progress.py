"""The learner's progress report (`make progress`, `python -m primer.progress notebooks`).

On an untouched checkout every exercise is "not started"; after a learner fills in some cells it
says passed / failed (with the check's first line) / not started, with points and a total; it never
modifies a notebook; a notebook that is not JSON, renamed or deleted gets a line saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from primer import notebooks, progress
from tests.helpers import REPO, release_notebook, solution_notebook

RELEASED = sorted(p.parent.name for p in (REPO / "notebooks").glob("*/*.ipynb") if p.stem == p.parent.name)
TARGET_SECONDS = 10.0  # the budget per notebook


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def run_report(folder: Path, *extra: str) -> str:
    out = subprocess.run([sys.executable, "-m", "primer.progress", str(folder), *extra],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert out.stderr == "", out.stderr
    return out.stdout


def learner_cells_of(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")]


def visible_points(path: Path) -> float:
    return sum(c.points for c in notebooks.graded_cells(notebooks.read(path)))


def test_untouched_checkout_is_all_not_started_and_fast():
    assert RELEASED, "no released notebooks found"
    folder = REPO / "notebooks"
    before = snapshot(folder)
    entries = progress.discover(folder)
    progress.run_all(entries)  # the budget is checked on each notebook's own CPU time
    assert snapshot(folder) == before, "the progress report changed files in notebooks/"
    ran = {e.assignment: e for e in entries if not e.problem}
    assert set(RELEASED) <= set(ran)
    for assignment in RELEASED:
        entry = ran[assignment]
        assert entry.cells, f"{assignment}: no graded cells found"
        assert not entry.note, f"{assignment}: {entry.note}"
        for cell in entry.cells:
            assert cell.status == progress.NOT_STARTED, (assignment, cell)
        # CPU time, not wall-clock time: the suite shares 2 cores with other tests (pytest -n 2)
        print(f"{assignment}: {entry.seconds:.1f} s wall, {entry.cpu_seconds:.1f} s CPU")
        assert entry.cpu_seconds <= TARGET_SECONDS, f"{assignment}: {entry.cpu_seconds:.1f} s of CPU"
    text = progress.report(entries, folder)
    possible = sum(visible_points(release_notebook(a)) for a in RELEASED)
    assert f"Total: 0 / {progress._points(possible)} points" in text


def _filled_in(assignment: str) -> tuple[nbformat.NotebookNode, list[str]]:
    """The release with: exercise 1 solved, exercise 2 wrong (returns None), exercise 3 raising an
    error in the learner's code, exercise 4 a syntax error; the others untouched."""
    nb = notebooks.read(release_notebook(assignment))
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source
              for c in notebooks.read(solution_notebook(assignment)).cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    exercises = [r[0] for r in progress.exercise_rows(_entry(release_notebook(assignment)))]
    learner_cells = learner_cells_of(nb)

    def cell_for(exercise):  # the learner's cell that defines it
        return next(c for c in learner_cells
                    if f"def {exercise}(" in c.source or f"class {exercise}" in c.source)

    cell_for(exercises[0]).source = solved[cell_for(exercises[0]).metadata["nbgrader"]["grade_id"]]
    cell_for(exercises[1]).source = f"def {exercises[1]}(*args, **kwargs):\n    return None\n"
    cell_for(exercises[2]).source = (f"def {exercises[2]}(*args, **kwargs):\n"
                                     "    raise ValueError('my own bug')\n")
    cell_for(exercises[3]).source = f"def {exercises[3]}(:\n    pass\n"
    return nb, exercises


def _entry(path: Path) -> progress.Notebook:
    entry = progress.Notebook(path.parent.name, path)
    entry.cells = [progress._cell(c) for c in notebooks.graded_cells(notebooks.read(path))]
    return entry


def test_after_a_learner_fills_in_some_exercises(tmp_path):
    assignment = RELEASED[0]
    nb, exercises = _filled_in(assignment)
    assert len(exercises) >= 5
    path = tmp_path / assignment / f"{assignment}.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, str(path))
    before = snapshot(tmp_path)
    entries = [e for e in progress.discover(tmp_path) if e.assignment == assignment]
    progress.run_all(entries)
    assert snapshot(tmp_path) == before, "the progress report changed the learner's notebook"
    rows = {r[0]: r for r in progress.exercise_rows(entries[0])}
    solved, wrong, raising, broken = (rows[e] for e in exercises[:4])
    assert solved[1:4] == (progress.PASSED, solved[3], solved[3]) and solved[3] > 0
    assert wrong[1] == progress.FAILED and wrong[2] < wrong[3]
    assert wrong[4].startswith(f"✗ {exercises[1]}.") and "returned None" in wrong[4], wrong
    assert raising[1] == progress.FAILED and "ValueError: my own bug" in raising[4], raising
    assert broken[1] == progress.FAILED and "SyntaxError" in broken[4], broken
    for exercise in exercises[4:]:
        assert rows[exercise][1] == progress.NOT_STARTED, rows[exercise]
    text = progress.report(entries, tmp_path)
    print(text)
    total = visible_points(path)
    earned = solved[2] + wrong[2]
    assert f"Total: {progress._points(earned)} / {progress._points(total)} points" in text
    assert len(wrong[4].splitlines()) <= 2  # the explanation's first line (and a hint line, if any)


def test_solutions_pass_every_visible_test():
    """Run on the instructor's solutions/, the report shows every exercise passed (full points)."""
    entries = [e for e in progress.discover(REPO / "solutions") if e.assignment == RELEASED[0]]
    progress.run_all(entries)
    for cell in entries[0].cells:
        assert cell.status == progress.PASSED, cell


def test_bad_notebooks_get_a_line_and_the_others_are_still_reported(tmp_path):
    first = RELEASED[0]
    # not JSON: the course's first notebook, cut in the middle
    (tmp_path / first).mkdir()
    text = release_notebook(first).read_text()
    (tmp_path / first / f"{first}.ipynb").write_text(text[: len(text) // 2])
    # renamed: a copy of it under another assignment's folder, saved under another file name
    (tmp_path / "98_renamed").mkdir()
    shutil.copy(release_notebook(first), tmp_path / "98_renamed" / "98_renamed-Copy1.ipynb")
    # a good one beside them
    (tmp_path / "99_extra").mkdir()
    shutil.copy(release_notebook(first), tmp_path / "99_extra" / "99_extra.ipynb")
    out = run_report(tmp_path)
    assert f"{first}.ipynb is not valid JSON (line" in out
    assert "98_renamed.ipynb not found, but this folder has 98_renamed-Copy1.ipynb: renamed?" in out
    assert "99_extra   0 / " in out and "not started" in out
    deleted = [a for a in progress.course_assignments() if a != first]
    for assignment in deleted:  # the course's other notebooks are not in this folder at all
        assert f"{assignment}.ipynb not found (deleted or moved?)" in out
    unreadable = 2 + len(deleted)
    assert f"({unreadable} notebooks could not be read and are not counted)" in out


def test_a_deleted_notebook_gets_a_line(tmp_path):
    out = run_report(tmp_path / "nothing-here")
    for assignment in progress.course_assignments():
        assert f"{assignment}.ipynb not found (deleted or moved?)" in out
    assert "Total: 0 / 0 points" in out


def test_a_notebook_that_never_finishes_is_stopped(tmp_path):
    assignment = RELEASED[0]
    nb = notebooks.read(release_notebook(assignment))
    learner = learner_cells_of(nb)[0]
    learner.source = "while True:\n    pass\n"
    path = tmp_path / assignment / f"{assignment}.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, str(path))
    entries = [e for e in progress.discover(tmp_path) if e.assignment == assignment]
    progress.run_all(entries, timeout=5)
    assert "stopped after 5 s" in entries[0].note
    assert {c.status for c in entries[0].cells} == {progress.NOT_RUN}
    assert "not run" in progress.report(entries, tmp_path)


def test_what_the_learner_prints_does_not_break_the_report(tmp_path):
    """The worker's results are JSON lines in a file; a learner's print goes elsewhere."""
    assignment = RELEASED[0]
    nb = notebooks.read(release_notebook(assignment))
    nb.cells[[i for i, c in enumerate(nb.cells) if c.cell_type == "code"][0]].source += "\nprint('{not json')"
    path = tmp_path / assignment / f"{assignment}.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, str(path))
    out = run_report(tmp_path)
    assert f"{assignment}   0 / " in out
    assert "Traceback" not in out and "{not json" not in out


@pytest.mark.parametrize("assignment", RELEASED)
def test_every_released_notebook_is_in_the_course_list(assignment):
    """The report knows a deleted notebook from the course's exercise specs (primer/exercises/aNN_name/)."""
    assert assignment in progress.course_assignments()


def test_a_failure_shows_the_first_line_and_the_named_mistake():
    from primer.grading import CheckFailed

    message = ("✗ ce.stable, case 'big': values differ\n  largest error inf at index (0,)\n"
               "  Hint: exp() overflows; subtract the maximum first")
    status, shown = progress._outcome(CheckFailed(message), "ce", "")
    assert status == progress.FAILED
    assert shown.splitlines() == ["✗ ce.stable, case 'big': values differ",
                                  "Hint: exp() overflows; subtract the maximum first"]
    assert progress._outcome(CheckFailed("✗ ce.values: ce is not implemented yet. Replace"), "ce", "") == (
        progress.NOT_STARTED, "")
    missing = progress._outcome(NameError("name 'ce' is not defined"), "ce", "")
    assert missing[1].startswith("`ce` is not defined")
