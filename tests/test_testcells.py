"""primer.testcells: the solution notebooks' test cells and exercise numbers come from the specs."""

from __future__ import annotations

import copy

import pytest

from primer import notebooks, testcells
from primer.grading import checks_for
from tests.helpers import ASSIGNMENTS, solution_notebook

A = "01_parameterized_functions"


def _tests(nb):
    return [c for c in nb.cells if testcells._is_test(c)]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_notebook_is_up_to_date_with_its_specs(assignment):
    nb = notebooks.read(solution_notebook(assignment))
    assert testcells.sync(nb) == nb, (
        f"solutions/{assignment}: test cells or exercise numbers differ from the specs: run "
        f"`make release ASSIGNMENT={assignment}`")


def test_a_missing_or_edited_test_cell_is_made_again_from_the_spec():
    nb = notebooks.read(solution_notebook(A))
    spec = checks_for("cross_entropy")[1]
    broken = copy.deepcopy(nb)
    cell = next(c for c in _tests(broken) if testcells._key(c) == spec.key)
    position = broken.cells.index(cell)
    broken.cells.remove(cell)
    edited = next(c for c in _tests(broken) if testcells._key(c) == checks_for("mse_loss")[0].key)
    edited.source = edited.source.split("### BEGIN HIDDEN")[0]  # the hidden call deleted
    edited.metadata.nbgrader.points = 7
    fresh = testcells.sync(broken)
    made = next(c for c in _tests(fresh) if testcells._key(c) == spec.key)
    assert fresh.cells.index(made) == position, "the new test cell is not next to its exercise's others"
    assert made.metadata.nbgrader.grade_id == f"test_cross_entropy_{spec.name}"
    assert made.metadata.nbgrader.points == spec.points
    assert f'check("{spec.key}", cross_entropy, hidden=True)' in made.source
    restored = next(c for c in _tests(fresh) if c.id == edited.id)  # the same cell, kept in place
    assert "hidden=True" in restored.source
    assert restored.metadata.nbgrader.points == checks_for("mse_loss")[0].points


def test_a_test_cell_of_no_registered_check_is_removed_and_numbers_follow():
    nb = notebooks.read(solution_notebook(A))
    stale = copy.deepcopy(nb)
    extra = copy.deepcopy(_tests(stale)[0])
    extra.source = 'check("mse_loss.gone", mse_loss)'
    extra.metadata.nbgrader.grade_id = "test_mse_loss_gone"
    extra.id = "stale0001"
    stale.cells.insert(3, extra)
    heading = next(c for c in stale.cells if c.cell_type == "markdown" and "### Exercise 2:" in c.source)
    heading.source = heading.source.replace("### Exercise 2:", "### Exercise 9:")
    fresh = testcells.sync(stale)
    assert all(c.id != "stale0001" for c in fresh.cells)
    assert fresh == nb
