"""The committed notebooks/ are exactly what `nbgrader generate_assignment` makes from solutions/."""

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.helpers import ASSIGNMENTS, REPO, release_notebook


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    """`nbgrader generate_assignment --force` for every assignment, through nbgrader's API in this
    process (one start-up for all six), on a copy of solutions/ and the course's config."""
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from primer.grader.classrun import load_config

    course = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO / "solutions", course / "solutions")
    (course / "autograder").mkdir()
    shutil.copy(REPO / "autograder" / "nbgrader_config.py", course / "autograder")
    config = load_config(course)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{path}"  # nbgrader runs `alembic`
    try:
        api = NbGraderAPI(coursedir=CourseDirectory(config=config), config=config)
        for assignment in ASSIGNMENTS:
            result = api.generate_assignment(assignment, force=True)
            assert result["success"], result.get("error") or result.get("log")
    finally:
        os.environ["PATH"] = path
    return course


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_up_to_date(regenerated, assignment):
    fresh = regenerated / "notebooks" / assignment / f"{assignment}.ipynb"
    committed = release_notebook(assignment)
    assert committed.exists(), f"{committed} is missing: run `make release ASSIGNMENT={assignment}`"
    assert json.loads(committed.read_text()) == json.loads(fresh.read_text()), (
        f"notebooks/{assignment} is out of date: run `make release ASSIGNMENT={assignment}`")


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(assignment):
    text = release_notebook(assignment).read_text()
    for marker in ("BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "hidden=True"):
        assert marker not in text, f"{marker} leaked into the released notebook"


@pytest.mark.parametrize("folder", ["solutions", "notebooks"])
def test_committed_notebooks_have_no_outputs(folder):
    for path in (REPO / folder).glob("*/*.ipynb"):
        nb = json.loads(path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell.get("outputs") and cell.get("execution_count") is None, path
