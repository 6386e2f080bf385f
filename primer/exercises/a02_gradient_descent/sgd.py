"""SGD: plain, with momentum, with weight decay, run next to torch.optim.SGD on the problem
of cases.py."""

from __future__ import annotations

import torch

from primer.exercises.a02_gradient_descent.cases import (
    _NO_UPDATE,
    _NONE_GRAD_HINTS,
    _log_uniform,
    _opt_case,
    _rounded,
    _run_grad_changes,
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


class _SGDPlain(torch.optim.Optimizer):
    """SGD written plainly, with switches for the known mistakes (used as hints)."""

    decay = True  # add wd·p to the gradient
    ema_from_zero = False  # buf ← m·buf + (1 − m)·g, buf starting at 0
    keep_buffer = True  # False: the buffer is not kept between steps (momentum has no effect)
    nesterov = False
    decay_into_grad = False  # p.grad.add_(p, alpha=wd): the learner's p.grad is changed
    buffer_is_grad = False  # first step: buf = p.grad itself, not a copy
    decay_sign = 1  # -1: g ← p.grad − wd·p
    zero_first = False  # the buffer starts at 0 and stays there at the first step (no move)

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if self.decay_into_grad:
                    g = p.grad.add_(p, alpha=wd)
                elif self.decay and wd:
                    g = p.grad + self.decay_sign * wd * p
                else:
                    g = p.grad
                if mu:
                    state = self.state[p] if self.keep_buffer else {}
                    buf = state.get("momentum_buffer")
                    if self.ema_from_zero:
                        buf = torch.zeros_like(p) if buf is None else buf
                        buf.mul_(mu).add_(g, alpha=1 - mu)
                    elif buf is None and self.zero_first:
                        buf = torch.zeros_like(p)
                    elif buf is None:
                        buf = g if self.buffer_is_grad else g.clone()
                    else:
                        buf.mul_(mu).add_(g)
                    state["momentum_buffer"] = buf
                    g = g + mu * buf if self.nesterov else buf
                p.sub_(lr * g)


def _sgd_variant(name, **flags):
    return type(name, (_SGDPlain,), flags)


_SGD_HINTS = (
    _NO_UPDATE,
    Hint(_SGDWithDefaultsLR, "this matches using one lr for every parameter group; read lr "
         "(and the other hyperparameters) from each group: `for group in self.param_groups: "
         "lr = group['lr']`."),
    Hint(_SGDDampened, "this matches a buffer updated as m·buf + (1 − m)·g (dampening); "
         "torch.optim.SGD uses buf ← m·buf + g."),
    Hint(_SGDDecayAfterMomentum, "this matches adding weight decay after the momentum buffer; "
         "add wd·p to the gradient first (g ← g + wd·p), then update the buffer with it."),
    Hint(_sgd_variant("_SGDNoDecay", decay=False), "this matches ignoring weight_decay; add "
         "weight_decay·p to the gradient (g ← p.grad + wd·p) before the momentum buffer."),
    Hint(_sgd_variant("_SGDMomentumEMA", ema_from_zero=True), "this matches momentum as an "
         "exponential moving average from 0, buf ← m·buf + (1 − m)·g (the form of Adam's m); "
         "torch.optim.SGD sums instead, buf ← m·buf + g, with buf = g at the first step."),
    Hint(_sgd_variant("_SGDBufferNotKept", keep_buffer=False), "this matches momentum that has "
         "no effect: each step used only the current gradient. Keep the buffer in "
         "self.state[p]['momentum_buffer'] so that it carries over to the next step."),
    Hint(_sgd_variant("_SGDNesterov", nesterov=True), "this matches Nesterov momentum "
         "(θ ← θ − lr·(g + m·buf)); this exercise steps by the buffer itself, θ ← θ − lr·buf."),
    Hint(_sgd_variant("_SGDDecaySubtracted", decay_sign=-1), "this matches subtracting the "
         "weight decay (g ← p.grad − wd·p), which pushes the weights away from 0; add it: "
         "g ← p.grad + wd·p."),
    Hint(_sgd_variant("_SGDBufferFromZero", zero_first=True), "this matches a momentum buffer "
         "that starts at 0, so the first step does not move the parameters; at the first step "
         "buf = g (a copy of the gradient), then buf ← m·buf + g."),
    *_NONE_GRAD_HINTS,
)

_SGD_GRAD_HINTS = (
    Hint(_sgd_variant("_SGDDecayIntoGrad", decay_into_grad=True), "this matches adding the "
         "weight decay into p.grad in place (p.grad.add_(...) or p.grad += ...): the optimizer "
         "must not change the gradients. Compute g = p.grad + wd·p as a new tensor."),
    Hint(_sgd_variant("_SGDBufferIsGrad", buffer_is_grad=True), "this matches keeping p.grad "
         "itself as the momentum buffer at the first step; zero_grad() and backward() then "
         "overwrite it, and your buf.mul_() changes p.grad. Store a copy: p.grad.clone()."),
)


def _sgd_grad_cases(gen):
    return [
        _opt_case(gen, "float64", steps=10, lr=0.1, weight_decay=_rounded(_uniform(gen, 0.05, 0.3))),
        _opt_case(gen, "float64", steps=10, lr=0.05, momentum=0.9),
        _opt_case(gen, "float64", steps=10, lr=0.05, momentum=0.9, weight_decay=0.1),
    ]


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


_AXES = ("step", "parameter element")

register(
    Check("SGD", "plain", "takes the same 50 steps as torch.optim.SGD (no momentum, no decay)",
          _sgd_plain_cases, torch.optim.SGD, run=_run_trajectory, hints=_SGD_HINTS, axes=_AXES),
    Check("SGD", "momentum", "takes the same 50 steps as torch.optim.SGD with momentum",
          _sgd_momentum_cases, torch.optim.SGD, run=_run_trajectory, hints=_SGD_HINTS, axes=_AXES),
    Check("SGD", "weight_decay", "takes the same 50 steps as torch.optim.SGD with weight decay "
          "(with and without momentum)", _sgd_decay_cases, torch.optim.SGD, run=_run_trajectory,
          hints=_SGD_HINTS, axes=_AXES),
    Check("SGD", "grad_untouched", "leaves p.grad as autograd made it (step() changes it by 0; "
          "zero_grad(set_to_none=False) between steps)", _sgd_grad_cases, torch.optim.SGD,
          run=_run_grad_changes, hints=_SGD_GRAD_HINTS, axes=_AXES),
)
