"""Assignment 03: the Value graders' generated programs have the properties the checks rely on."""

from dataclasses import replace

import pytest
import torch

from primer.exercises.a03_backpropagation import value as spec_value
from primer.exercises.a03_backpropagation import value_programs as spec_programs
from primer.grading import Case, evaluate, get_check

SEEDS = [0, 1, 2024, 777]


def _gen(seed):
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_graphs_use_every_op_and_reuse_inner_nodes(seed):
    for case in spec_value._value_shared_cases(_gen(seed))[5:] + spec_value._value_forward_cases(_gen(seed)):
        leaves, program = case.args
        assert {op for op, *_ in program} == set(spec_programs.ALL_OPS), case.label
        uses = spec_programs._uses(program, len(leaves))
        assert max(uses[len(leaves):]) >= 2, f"no inner node is used twice: {case.label}"
        assert all(u >= 1 for u in uses[:-1]), "every node but the output must feed another"


@pytest.mark.parametrize("seed", SEEDS)
def test_deep_chain_is_deep_and_its_gradients_neither_vanish_nor_explode(seed):
    (case,) = spec_value._value_deep_cases(_gen(seed))
    leaves, program = case.args
    assert len(program) == 5000
    assert {op for op, *_ in program} == set(spec_programs.ALL_OPS)
    for k, (op, *args) in enumerate(program):  # each step takes the previous node
        prev = len(leaves) + k - 1
        assert prev in (args[:2] if op in spec_programs._BINARY else args[:1])
    grads = spec_value._run_leaf_grads(spec_value._TorchValue, case)
    assert torch.isfinite(grads).all()
    # Far above the 1e-7 tolerance, so that a wrong accumulation cannot hide below it.
    assert (grads.abs() > 1e-2).all(), grads


def test_deep_chain_reports_recursion_error_clearly():
    class Recursive:
        def __init__(self, data, children=()):
            self.data, self.grad, self.children = float(data), 0.0, children

        def __add__(self, other):
            other = other if isinstance(other, Recursive) else Recursive(other)
            return Recursive(self.data + other.data, (self, other))

        def backward(self):
            def visit(node):
                for c in node.children:
                    visit(c)
            visit(self)

    spec = get_check("Value.deep_chain")
    leaves = [1.0, 2.0]
    program = [("add", 1, 0)] + [("add", 2 + k, 0) for k in range(4999)]
    result = evaluate(replace(spec, cases=lambda gen: [Case("5,000 additions", (leaves, program))]),
                      Recursive)
    assert not result.passed
    assert "RecursionError" in result.message and "iterative" in result.message, result.message


def test_a_log_of_exactly_one_is_labelled_not_a_division_by_zero():
    """Seed 1052882748 draws a program that takes the log of a node equal to 1.0. Labelling the
    nodes builds the plain-Python Value with no mistake, whose log also evaluated the mistake
    1 / log(x): a ZeroDivisionError in the grader, and that student could not be graded."""
    from primer.exercises.a03_backpropagation.value_mistakes import _scalar_value_class

    assert _scalar_value_class(None)(1.0).log().data == 0.0
    check = get_check("Value.forward")
    assert evaluate(check, check.reference, 1052882748).passed
