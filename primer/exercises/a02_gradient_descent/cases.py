"""What several exercises' cases are made of: random draws from the case generator (minibatch
sizes, hyperparameters, schedules, layer widths), and the seeded training problem on which SGD,
Adam and AdamW are run next to torch's optimizers (the problem, the run, and the hint shared by
all three: an optimizer that never changes the parameters)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seeded
from primer.grading import Case, Hint


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _log_uniform(gen: torch.Generator, low: float, high: float) -> float:
    return math.exp(_uniform(gen, math.log(low), math.log(high)))


def _int(gen: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=gen))


def _rounded(x: float) -> float:
    return float(f"{x:.2g}")


# --------------------------------------------------------------------------- optimizers
#
# One seeded problem: a small MLP, 64 examples, MSE, minibatches of 16 in a fixed order. The
# learner's class and torch's optimizer take the same steps from the same start; `run` returns
# every parameter after every step, shape (steps, N). Most cases are float64: correct formulas
# written in another order (m̂/(√v̂+ε) vs torch's addcdiv_) then agree to ~1e-15, far inside the
# float64 tolerance. One float32 case with a small lr is kept: measured, alternatives stay within
# ~1e-7 of torch there, 100× inside float32's tolerance. Larger float32 learning rates were not
# used because they bring that margin down to ~4×.

STEPS = 50


class _Net(nn.Module):
    """MLP 4→16→3 plus two extra parameters: `unused` (never in the loss: .grad stays None) and
    `idle` (in the loss times 0: its gradient is exactly zero)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 3))
        self.unused = nn.Parameter(torch.randn(3))
        self.idle = nn.Parameter(torch.randn(5))

    def forward(self, x):
        return self.body(x) + 0.0 * self.idle.sum()


def _problem(seed: int, dtype):
    with seeded(seed):
        net = _Net().to(dtype)
        X = torch.randn(64, 4, dtype=dtype)
        Y = torch.sin(X @ torch.randn(4, 3, dtype=dtype)) + 0.1 * torch.randn(64, 3, dtype=dtype)
    return net, X, Y


def _param_groups(net, layout, lr):
    if layout == "model":
        return net.parameters()
    if layout == "groups":  # the first layer gets its own learning rate
        return [{"params": net.body[0].parameters(), "lr": 3 * lr},
                {"params": [*net.body[2].parameters(), net.unused, net.idle]}]
    raise ValueError(layout)


def _flat_parameters(net):
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


def _flat_gradients(net):
    return torch.cat([torch.zeros_like(p).reshape(-1) if p.grad is None else
                      p.grad.detach().reshape(-1).clone() for p in net.parameters()])


def _train(cls, case, record=_flat_parameters, set_to_none=True, grad_changes=False):
    """Returns (net, record(net) after each step, record(net) before); by default record(net) is
    the flat vector of every parameter. With `grad_changes`, each step records instead how much
    step() changed the gradients (p.grad after step() − p.grad before it, flat)."""
    seed, dtype, layout, steps = case.args
    net, X, Y = _problem(seed, dtype)
    start = record(net)
    optimizer = cls(_param_groups(net, layout, case.kwargs.get("lr", 1e-3)), **case.kwargs)
    trajectory = []
    for step in range(steps):
        rows = slice(16 * (step % 4), 16 * (step % 4) + 16)
        optimizer.zero_grad(set_to_none=set_to_none)
        F.mse_loss(net(X[rows]), Y[rows]).backward()
        before = _flat_gradients(net) if grad_changes else None
        optimizer.step()
        trajectory.append(_flat_gradients(net) - before if grad_changes else record(net))
    return net, trajectory, start


def _run_grad_changes(cls, case):
    """How much each step() changed p.grad (all zeros when it leaves the gradients as autograd
    made them), one row per step. zero_grad(set_to_none=False) zeroes the same .grad tensors in
    place between steps, as gradient accumulation loops do, so a buffer that *is* p.grad shows."""
    _, trajectory, _ = _train(cls, case, set_to_none=False, grad_changes=True)
    return torch.stack(trajectory)


def _run_trajectory(cls, case):
    _, trajectory, _ = _train(cls, case)
    return torch.stack(trajectory)


def _run_first_update(cls, case):
    """The update made by each step, θ_t − θ_{t−1} (one row per step)."""
    _, trajectory, start = _train(cls, case)
    return torch.diff(torch.stack([start, *trajectory]), dim=0)


def _opt_case(gen, label, dtype=torch.float64, layout="model", steps=STEPS, **hyper):
    seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
    name = ", ".join(f"{k}={v}" for k, v in hyper.items()) or "default hyperparameters"
    return Case(f"{label}: {name}, {steps} step{'s' * (steps != 1)}", (seed, dtype, layout, steps),
                hyper)


class _NoUpdate(torch.optim.Optimizer):
    """The mistake: `p = p - lr * p.grad` rebinds a local name; the parameters never change."""

    def __init__(self, params, lr=1e-3, **kwargs):
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        pass


_NO_UPDATE = Hint(_NoUpdate, "your optimizer never changed the parameters. `p = p - ...` "
                  "only rebinds a name; update in place: p.sub_(...), p.add_(...) or p -= ... "
                  "(under torch.no_grad()).")


class _NoneGradStep(torch.optim.Optimizer):
    """The mistake: a step that uses p.grad without skipping the parameters whose .grad is None
    (`unused` in _Net). `use(p, g)` is the first thing the step does with it."""

    def __init__(self, params, lr=1e-3, **hyperparameters):
        super().__init__(params, dict(lr=lr))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                self.use(p, p.grad)


# The learner's error is matched by its first line, which says how the None was used: one
# mistake per common first use (g + wd·p, lr·g, g·lr, p.add_(g, ...), p.sub_(g, ...), g.clone(),
# g ** 2, g * g, m.lerp_(g, ...), v.addcmul_(g, g, ...)).
_NONE_GRAD_USES = (
    lambda p, g: g + 0.0 * p, lambda p, g: 0.1 * g, lambda p, g: g * 0.1,
    lambda p, g: p.add_(g, alpha=-0.1), lambda p, g: p.sub_(g, alpha=0.1), lambda p, g: g.clone(),
    lambda p, g: g ** 2, lambda p, g: g * g, lambda p, g: p.lerp_(g, 0.1),
    lambda p, g: p.addcmul_(g, g, value=0.1),
)
_NONE_GRAD = ("this matches a step that does not skip parameters whose p.grad is None (a "
              "parameter that the loss does not use has no gradient); skip them: "
              "`if p.grad is None: continue`.")
_NONE_GRAD_HINTS = tuple(
    Hint(type(f"_NoneGrad{i}", (_NoneGradStep,), {"use": staticmethod(use)}), _NONE_GRAD)
    for i, use in enumerate(_NONE_GRAD_USES))
