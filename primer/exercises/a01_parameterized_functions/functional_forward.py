"""functional_forward: f_θ(x) evaluated with the parameters taken from a flat vector θ."""

from __future__ import annotations

import torch
from torch import nn

from primer.exercises._common import mlp, randn, seeded
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
    # θ holds every parameter, frozen ones too (the notebook says so): count_parameters differs.
    frozen = mlp(gen, 5, 6, 2)
    frozen[0].requires_grad_(False)
    n = sum(p.numel() for p in frozen.parameters())
    cases.append(Case(f"MLP 5→6→2, first layer frozen, N={n}", (frozen, randn(gen, n), randn(gen, 3, 5))))
    # BatchNorm's running statistics are buffers, not parameters: θ does not hold them. In float64:
    # normalizing over a batch of 5 amplifies rounding (a channel of small variance), so that in
    # float32 two correct evaluations can differ by more than float32's tolerance.
    with seeded(gen):
        normed = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Tanh(), nn.Linear(6, 2)).double()
    n = sum(p.numel() for p in normed.parameters())
    cases.append(Case(f"Linear 4→6, BatchNorm1d(6) (its buffers are not parameters), Tanh, "
                      f"Linear 6→2, float64, N={n}",
                      (normed, randn(gen, n, dtype=torch.float64), randn(gen, 5, 4, dtype=torch.float64))))
    return cases


def _run_values(fn, case):
    model, theta, x = case.args
    return fn(model, theta, x)


def _run_model_parameters(fn, case):
    """The model's parameters after the call, laid end to end: they must not have changed."""
    model, theta, x = case.args
    fn(model, theta, x)
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def _run_gradient(fn, case):
    """d/dθ of sum(f_θ(x)): θ must stay in the autograd graph. An output that is a tensor not
    connected to θ has no gradient: zeros, which the hint below names (not "returned None")."""
    model, theta, x = case.args
    theta = theta.clone().requires_grad_(True)
    out = fn(model, theta, x)
    if not isinstance(out, torch.Tensor):
        return out
    if not out.requires_grad:
        return torch.zeros_like(theta)
    (grad,) = torch.autograd.grad(out.sum(), theta, allow_unused=True)
    return torch.zeros_like(theta) if grad is None else grad


def _split(model, theta, named):
    params, offset = {}, 0
    for name, p in named:
        params[name] = theta[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return params


def _functional_by_copy(model, theta, x):
    """The mistake: write θ into the model's own parameters."""
    torch.nn.utils.vector_to_parameters(theta.detach(), model.parameters())
    return model(x)


def _functional_detached(model, theta, x):
    """The mistake: the output is computed from a copy of θ outside the autograd graph."""
    return _reference_functional_forward(model, theta.detach(), x)


def _functional_trainable_only(model, theta, x):
    """The mistake: θ read for the trainable parameters only (Exercise 1's rule)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return torch.func.functional_call(model, _split(model, theta, named), (x,))


def _functional_no_offset(model, theta, x):
    """The mistake: every parameter read from the start of θ."""
    params = {n: theta[:p.numel()].view_as(p) for n, p in model.named_parameters()}
    return torch.func.functional_call(model, params, (x,))


def _functional_transposed(model, theta, x):
    """The mistake: a weight's slice read column by column (reshaped to the transposed shape)."""
    params, offset = {}, 0
    for name, p in model.named_parameters():
        chunk = theta[offset:offset + p.numel()]
        params[name] = chunk.reshape(p.shape[::-1]).T if p.dim() == 2 else chunk.view_as(p)
        offset += p.numel()
    return torch.func.functional_call(model, params, (x,))


def _functional_sorted_names(model, theta, x):
    """The mistake: parameters taken in alphabetical order of their names (bias before weight)."""
    named = sorted(model.named_parameters(), key=lambda item: item[0])
    return torch.func.functional_call(model, _split(model, theta, named), (x,))


def _functional_state_dict(model, theta, x):
    """The mistake: θ cut into the entries of model.state_dict(), buffers included."""
    return torch.func.functional_call(model, _split(model, theta, model.state_dict().items()), (x,))


_VALUES_HINTS = (
    Hint(_functional_trainable_only, "this matches taking θ apart for the trainable parameters "
         "only: θ holds every parameter of model.parameters(), frozen ones (requires_grad=False) "
         "included."),
    Hint(_functional_no_offset, "this matches reading every parameter from the start of θ: "
         "advance an offset by p.numel() after each parameter."),
    Hint(_functional_transposed, "this matches reading a weight's slice column by column: "
         "reshape each slice straight to p.shape (row-major, like torch.reshape)."),
    Hint(_functional_sorted_names, "this matches taking the parameters in alphabetical order of "
         "their names: use the order of model.parameters() (each weight before its bias)."),
    Hint(_functional_state_dict, "this matches cutting θ into the entries of model.state_dict(): "
         "it also holds buffers (BatchNorm's running statistics), which are not parameters and "
         "have no slice in θ. Use model.named_parameters()."),
)

_GRAPH_CUT = ("the output does not depend on θ in the autograd graph, so no gradient reaches θ: "
              "copying θ into the parameters, .detach() or torch.no_grad() cuts the graph. Build "
              "the parameters from slices of θ itself, e.g. with torch.func.functional_call.")

register(
    Check("functional_forward", "values", "evaluates f_θ(x) with the parameters taken from θ",
          _functional_cases, _reference_functional_forward, run=_run_values, points=2,
          hints=_VALUES_HINTS),
    Check("functional_forward", "model_unchanged", "leaves the model's own parameters unchanged",
          _functional_cases, _reference_functional_forward, run=_run_model_parameters,
          axes=("parameter element",),
          hints=(Hint(_functional_by_copy, "this matches copying θ into the model's parameters "
                      "(vector_to_parameters, .copy_ or .data): the model's parameters must stay "
                      "as they were; evaluate with θ without overwriting them, e.g. "
                      "torch.func.functional_call."),)),
    Check("functional_forward", "gradient", "lets gradients flow back to θ",
          _functional_cases, _reference_functional_forward, run=_run_gradient,
          axes=("parameter element",),
          hints=(Hint(_functional_by_copy, _GRAPH_CUT), Hint(_functional_detached, _GRAPH_CUT))),
)
