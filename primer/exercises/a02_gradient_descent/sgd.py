"""SGD: plain, with momentum, with weight decay, run next to torch.optim.SGD on the problem
of cases.py."""

from __future__ import annotations

import torch

from primer.exercises.a02_gradient_descent.cases import (
    _NO_UPDATE,
    _log_uniform,
    _opt_case,
    _rounded,
    _run_trajectory,
    _uniform,
)
from primer.grading import Check, Hint, register

# ---- SGD


class _SGDWithDefaultsLR(torch.optim.SGD):
    """The mistake: every group uses the constructor's lr instead of its own group['lr']."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["lr_saved"], group["lr"] = group["lr"], self.defaults["lr"]
        super().step()
        for group in self.param_groups:
            group["lr"] = group.pop("lr_saved")


class _SGDDampened(torch.optim.SGD):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         dampening=momentum)


class _SGDDecayAfterMomentum(torch.optim.Optimizer):
    """The mistake: weight decay added after the momentum buffer, so it skips the buffer."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad
                if group["momentum"]:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    buf = d.clone() if buf is None else buf.mul_(group["momentum"]).add_(d)
                    state["momentum_buffer"] = buf
                    d = buf
                p.sub_(group["lr"] * (d + group["weight_decay"] * p))


_SGD_HINTS = (
    _NO_UPDATE,
    Hint(_SGDWithDefaultsLR, "this matches using one lr for every parameter group; read lr "
         "(and the other hyperparameters) from each group: `for group in self.param_groups: "
         "lr = group['lr']`."),
    Hint(_SGDDampened, "this matches a buffer updated as m·buf + (1 − m)·g (dampening); "
         "torch.optim.SGD uses buf ← m·buf + g."),
    Hint(_SGDDecayAfterMomentum, "this matches adding weight decay after the momentum buffer; "
         "add wd·p to the gradient first (g ← g + wd·p), then update the buffer with it."),
)


def _sgd_plain_cases(gen):
    return [
        _opt_case(gen, "float64", lr=_rounded(_log_uniform(gen, 0.02, 0.2))),
        _opt_case(gen, "float32", dtype=torch.float32, lr=0.05),
        _opt_case(gen, "two parameter groups (the first with 3×lr)", layout="groups", lr=0.05),
    ]


def _sgd_momentum_cases(gen):
    return [
        _opt_case(gen, "float64", lr=0.05, momentum=0.9),
        _opt_case(gen, "float64", lr=_rounded(_log_uniform(gen, 0.01, 0.1)),
                  momentum=_rounded(_uniform(gen, 0.3, 0.8))),
        _opt_case(gen, "float32", dtype=torch.float32, lr=0.02, momentum=0.9),
    ]


def _sgd_decay_cases(gen):
    return [
        _opt_case(gen, "float64", lr=0.1, weight_decay=0.1),
        _opt_case(gen, "float64", lr=0.05, momentum=0.9, weight_decay=_rounded(_uniform(gen, 0.05, 0.3))),
        _opt_case(gen, "two parameter groups", layout="groups", lr=0.02, momentum=0.5,
                  weight_decay=0.2),
    ]


register(
    Check("SGD", "plain", "takes the same 50 steps as torch.optim.SGD (no momentum, no decay)",
          _sgd_plain_cases, torch.optim.SGD, run=_run_trajectory, hints=_SGD_HINTS),
    Check("SGD", "momentum", "takes the same 50 steps as torch.optim.SGD with momentum",
          _sgd_momentum_cases, torch.optim.SGD, run=_run_trajectory, hints=_SGD_HINTS),
    Check("SGD", "weight_decay", "takes the same 50 steps as torch.optim.SGD with weight decay "
          "(with and without momentum)", _sgd_decay_cases, torch.optim.SGD, run=_run_trajectory,
          hints=_SGD_HINTS),
)
