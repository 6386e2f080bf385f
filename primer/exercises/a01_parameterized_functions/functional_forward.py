"""functional_forward: f_θ(x) evaluated with the parameters taken from a flat vector θ."""

from __future__ import annotations

import torch
from torch import nn

from primer.exercises._common import mlp, randn
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- functional_forward


def _reference_functional_forward(model: nn.Module, theta: torch.Tensor, x: torch.Tensor):
    """f_θ(x): θ is split in the order of model.parameters(), then torch.func evaluates it."""
    params, offset = {}, 0
    for name, p in model.named_parameters():
        params[name] = theta[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return torch.func.functional_call(model, params, (x,))


def _functional_cases(gen):
    cases = []
    for widths, batch in [((3, 1), 5), ((4, 8, 2), 6), ((10, 16, 16, 3), 4)]:
        model = mlp(gen, *widths)
        n = sum(p.numel() for p in model.parameters())
        theta = randn(gen, n)
        x = randn(gen, batch, widths[0])
        cases.append(Case(f"MLP {'→'.join(map(str, widths))}, N={n}", (model, theta, x)))
    return cases


def _run_values(fn, case):
    model, theta, x = case.args
    return fn(model, theta, x)


def _run_model_unchanged(fn, case):
    model, theta, x = case.args
    before = [p.detach().clone() for p in model.parameters()]
    fn(model, theta, x)
    return all(torch.equal(b, p.detach()) for b, p in zip(before, model.parameters()))


def _run_gradient(fn, case):
    """d/dθ of sum(f_θ(x)): θ must stay in the autograd graph."""
    model, theta, x = case.args
    theta = theta.clone().requires_grad_(True)
    out = fn(model, theta, x)
    if not isinstance(out, torch.Tensor) or not out.requires_grad:
        return None
    (grad,) = torch.autograd.grad(out.sum(), theta, allow_unused=True)
    return grad


def _functional_by_copy(model, theta, x):
    """The mistake: write θ into the model's own parameters."""
    torch.nn.utils.vector_to_parameters(theta.detach(), model.parameters())
    return model(x)


register(
    Check("functional_forward", "values", "evaluates f_θ(x) with the parameters taken from θ",
          _functional_cases, _reference_functional_forward, run=_run_values, points=2),
    Check("functional_forward", "model_unchanged", "leaves the model's own parameters unchanged",
          _functional_cases, _reference_functional_forward, run=_run_model_unchanged,
          hints=(Hint(_functional_by_copy, "this matches copying θ into the model's parameters "
                      "(vector_to_parameters or .data); evaluate with θ without overwriting "
                      "them, e.g. torch.func.functional_call."),)),
    Check("functional_forward", "gradient", "lets gradients flow back to θ",
          _functional_cases, _reference_functional_forward, run=_run_gradient,
          hints=(Hint(_functional_by_copy, "the output does not depend on θ in the autograd "
                      "graph: copying θ into the parameters cuts the graph."),)),
)
