"""The committed notebooks/ are exactly what `nbgrader generate_assignment` makes from solutions/."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ASSIGNMENTS, REPO, release_notebook


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory) -> Path:
    course = tmp_path_factory.mktemp("course")
    shutil.copytree(REPO / "solutions", course / "solutions")
    (course / "autograder").mkdir()
    shutil.copy(REPO / "autograder" / "nbgrader_config.py", course / "autograder")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for assignment in ASSIGNMENTS:
        out = subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment,
                              "--force"], cwd=course / "autograder", capture_output=True, text=True,
                             env=env)
        assert out.returncode == 0, out.stderr
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
