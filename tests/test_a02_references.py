"""Assignment 02: the references that the checks compare with agree with their derivations.

The checks grade against torch (torch.optim.*, torch.optim.lr_scheduler); these tests make sure
that what torch computes is what the notebook says, so a learner following the notebook's
formulas can pass.
"""

import math

import pytest
import torch

from primer.exercises.a02_gradient_descent import adam as spec_adam
from primer.exercises.a02_gradient_descent import cases as spec_cases
from primer.exercises.a02_gradient_descent import gradient_descent as spec_gradient_descent
from primer.exercises.a02_gradient_descent import minibatches as spec_minibatches
from primer.exercises.a02_gradient_descent import optimizer_memory as spec_optimizer_memory
from primer.exercises.a02_gradient_descent import schedules as spec_schedules
from primer.exercises.a02_gradient_descent import sgd as spec_sgd


def closed_form(kind, step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
    """The convention stated in the notebook, written out."""
    W, T, C = warmup_steps, total_steps, cooldown_steps
    if step < W:
        return max_lr * (step + 1) / W
    if step >= T:
        return min_lr
    if kind == "cosine":
        return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * (step - W) / (T - W))) / 2
    start = W if kind == "linear" else T - C
    if step <= start:
        return max_lr
    return max_lr + (min_lr - max_lr) * (step - start) / (T - start)


@pytest.mark.parametrize("kind", ["cosine", "linear", "constant_cooldown"])
def test_torch_schedules_follow_the_stated_convention(kind):
    gen = torch.Generator().manual_seed(3)
    configs = [spec_schedules._random_schedule(gen, kind == "constant_cooldown") for _ in range(40)]
    configs += spec_schedules._fixed_schedules(kind == "constant_cooldown")
    for i, h in enumerate(configs):
        if i % 4 == 0:
            h["warmup_steps"] = 0
        if i % 5 == 0:
            h["min_lr"] = 0.0
        if kind == "constant_cooldown" and i % 3 == 0:  # no constant phase at all
            h["cooldown_steps"] = h["total_steps"] - h["warmup_steps"]
        if kind == "constant_cooldown" and i % 7 == 1:  # no cooldown: the drop comes at T
            h["cooldown_steps"] = 0
        reference = spec_schedules._torch_lr(kind)
        for s in range(h["total_steps"] + 4):
            expected = closed_form(kind, s, **h)
            got = reference(s, **h)
            assert math.isclose(got, expected, rel_tol=1e-12, abs_tol=1e-18), (h, s, got, expected)


def test_adamw_decays_a_zero_gradient_parameter_by_exactly_one_minus_lr_wd():
    gen = torch.Generator().manual_seed(0)
    for case in spec_adam._adamw_idle_cases(gen):
        history = spec_adam._idle_history(torch.optim.AdamW, case)
        lr = case.kwargs.get("lr", 1e-3)
        wd = case.kwargs.get("weight_decay", 1e-2)
        seed, dtype, _, steps = case.args
        p = spec_cases._problem(seed, dtype)[0].idle.detach().clone()
        for t in range(steps):
            p = p * (1 - lr * wd)
            assert torch.equal(history[t], p), (case.label, t)


def test_training_bytes_reference_is_two_three_four_times_param_bytes():
    for name, copies in [("sgd", 2), ("momentum", 3), ("adam", 4), ("adamw", 4)]:
        for param_bytes in (2, 4, 8):
            assert spec_optimizer_memory._reference_training_bytes(name, param_bytes) == copies * param_bytes


def test_adam_step_counters_are_counted_in_state_bytes():
    (case,) = [c for c in spec_optimizer_memory._state_cases(torch.Generator().manual_seed(0))
               if c.label.startswith("Adam,")]
    optimizer = case.args[0]
    n = sum(p.numel() for g in optimizer.param_groups for p in g["params"])
    assert spec_optimizer_memory._reference_state_bytes(optimizer) == 2 * 4 * n + 4 * len(optimizer.state)


def test_gradient_descent_reference_converges_to_lstsq():
    for case in spec_gradient_descent._gd_lstsq_cases(torch.Generator().manual_seed(0)):
        theta, _ = spec_gradient_descent._reference_gradient_descent(*case.args)
        solution, _ = spec_gradient_descent._reference_lstsq(*case.args)
        torch.testing.assert_close(theta, solution, rtol=1e-10, atol=1e-12)


def test_minibatch_reference_partitions_every_case():
    for case in spec_minibatches._minibatch_cases(torch.Generator().manual_seed(0)):
        out = spec_minibatches._run_minibatch_properties(spec_minibatches._reference_minibatches, case)
        n, b, _ = case.args
        for e in (1, 2):
            assert out[f"epoch {e}: every index 0..n-1 exactly once"]
            sizes = out[f"epoch {e}: batch sizes"]
            assert sum(sizes) == n and all(s == b for s in sizes[:-1]) and 0 < sizes[-1] <= b


@pytest.mark.parametrize("optimizer, cases", [
    (torch.optim.SGD, spec_sgd._sgd_grad_cases), (torch.optim.Adam, spec_adam._adam_grad_cases)])
def test_torch_optimizers_leave_the_gradients_untouched(optimizer, cases):
    """The reference of the grad_untouched checks: torch's step() changes p.grad by exactly 0,
    and the mistake of adding the decay into p.grad in place does not."""
    for case in cases(torch.Generator().manual_seed(0)):
        assert torch.count_nonzero(spec_cases._run_grad_changes(optimizer, case)) == 0, case.label
    decay_case = cases(torch.Generator().manual_seed(0))[0]
    mistake = spec_sgd._SGD_GRAD_HINTS[0].mistake if optimizer is torch.optim.SGD else \
        spec_adam._AdamDecayIntoGrad
    assert torch.count_nonzero(spec_cases._run_grad_changes(mistake, decay_case)) > 0
