"""Every exercise's checks, in process: the solution passes, the
released stub fails saying it is not implemented, every mutant fails (naming its mistake when
it is a known one), every alternative correct implementation passes; on visible and hidden seeds.
"""

import os
import sys

import pytest

from primer import notebooks
from primer.grading import REGISTRY, checks_for, evaluate, get_check
from tests.helpers import (
    ASSIGNMENTS,
    exercises_in,
    release_namespace,
    solution_namespace,
    solution_notebook,
    spec_module,
)
from tests.mutants import load_all

SEEDS = [0, 1, 2024]  # the visible seed and two stand-ins for grading seeds
# (evaluate(..., reuse=True): each reference and hint output is computed once per check, seed and
# case for all the objects judged on it, as the grader does for a class on the visible seed)
VARIANTS = load_all()
EXERCISES = [(a, e) for a in ASSIGNMENTS for e in exercises_in(a)]


def _ids(pairs):
    return [f"{a[:2]}-{e}" for a, e in pairs]


@pytest.mark.parametrize("assignment,exercise", EXERCISES, ids=_ids(EXERCISES))
@pytest.mark.parametrize("seed", SEEDS)
def test_solution_passes(assignment, exercise, seed):
    solution = solution_namespace(assignment)[exercise]
    for spec in checks_for(exercise):
        result = evaluate(spec, solution, seed, reuse=True)
        assert result.passed, result.message


@pytest.mark.parametrize("assignment,exercise", EXERCISES, ids=_ids(EXERCISES))
def test_released_stub_says_not_implemented(assignment, exercise):
    stub = release_namespace(assignment)[exercise]
    for spec in checks_for(exercise):
        result = evaluate(spec, stub, reuse=True)
        assert not result.passed
        assert "not implemented yet" in result.message.splitlines()[0], result.message


MUTANTS = [v for v in VARIANTS if not v.correct]
ALTERNATIVES = [v for v in VARIANTS if v.correct]


# The process group's timeout for a mutant that deadlocks (Variant.deadlocks), instead of the
# checks' 4 s: its ranks wait forever at any timeout, and what they do before (forking, joining
# the group, a few tiny messages) takes milliseconds. The three such mutants: 34 s -> 14 s.
DEADLOCK_TIMEOUT = 1.5


def _shorten_launch_timeouts(monkeypatch) -> None:
    """LAUNCH_TIMEOUT, in every exercise module that launches ranks (each reads it when it
    launches)."""
    for name, module in list(sys.modules.items()):
        if name.startswith("primer.exercises.") and hasattr(module, "LAUNCH_TIMEOUT"):
            monkeypatch.setattr(module, "LAUNCH_TIMEOUT", DEADLOCK_TIMEOUT)


@pytest.mark.parametrize("variant", MUTANTS, ids=[v.id for v in MUTANTS])
def test_mutant_fails(variant, monkeypatch):
    if variant.deadlocks:
        _shorten_launch_timeouts(monkeypatch)
    # The checks run in order until what this test asserts is settled: one has failed, every check
    # in `fails` has run, and the hint (if any) is in a failure. The rest could not change the
    # verdict, and a deadlocking mutant costs the launch's deadline in every check it runs.
    failed, ran = {}, set()
    for spec in checks_for(variant.exercise):
        result = evaluate(spec, variant.obj, reuse=True)
        ran.add(spec.name)
        if not result.passed:
            failed[spec.name] = result
        messages = "\n".join(r.message for r in failed.values())
        if failed and all(name in ran for name in variant.fails) and \
                (not variant.hint or variant.hint in messages):
            break
    assert failed, f"mutant {variant.id} passes every check of {variant.exercise}"
    for name in variant.fails:
        assert name in failed, f"mutant {variant.id} should fail {variant.exercise}.{name}"
    if variant.hint:
        messages = "\n".join(r.message for r in failed.values())
        assert variant.hint in messages, f"expected the hint {variant.hint!r} in:\n{messages}"


@pytest.fixture
def mutant_modules_are_cells(monkeypatch):
    """The tripwires of forbid() count calls from learner cells only; here the variants' modules count
    as cells too, so that an alternative calling a function its exercise forbids fails as it would
    in a notebook (where it would score 0)."""
    from primer import rules

    is_cell, variants = rules._is_learner_file, os.path.join("", "tests", "mutants", "")
    monkeypatch.setattr(rules, "_is_learner_file", lambda filename: is_cell(filename) or variants in filename)


@pytest.mark.parametrize("variant", ALTERNATIVES, ids=[v.id for v in ALTERNATIVES])
@pytest.mark.parametrize("seed", SEEDS)
def test_alternative_passes(variant, seed, mutant_modules_are_cells):
    for spec in checks_for(variant.exercise):
        result = evaluate(spec, variant.obj, seed, reuse=True)
        assert result.passed, result.message


@pytest.mark.parametrize("assignment,exercise", EXERCISES, ids=_ids(EXERCISES))
def test_every_exercise_has_a_mutant_and_an_alternative(assignment, exercise):
    mine = [v for v in VARIANTS if v.exercise == exercise and v.assignment == spec_module(assignment)]
    assert any(not v.correct for v in mine), f"no mutant for {exercise} in tests/mutants"
    assert any(v.correct for v in mine), f"no alternative implementation for {exercise}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebook_uses_every_registered_check(assignment):
    cells = notebooks.graded_cells(notebooks.read(solution_notebook(assignment)))
    used = {k for c in cells for k in c.check_keys}
    for key in used:
        get_check(key)  # raises for a typo
    registered = {k for k, spec in REGISTRY.items() if spec.exercise in exercises_in(assignment)}
    assert registered == used, f"registered but not in a graded cell: {registered - used}"
    for cell in cells:
        assert "hidden=True" in cell.source, f"{cell.grade_id} has no hidden test"
        assert cell.points > 0


def test_every_exercise_module_imports():
    from primer.exercises import IMPORT_ERRORS

    assert not IMPORT_ERRORS, "\n".join(IMPORT_ERRORS.values())
