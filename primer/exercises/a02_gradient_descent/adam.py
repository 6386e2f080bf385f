"""Adam and AdamW: the first update, the trajectory, the weight decay (L2 for Adam, decoupled
for AdamW), run next to torch.optim.Adam/AdamW on the problem of cases.py."""

from __future__ import annotations

import torch

from primer.exercises.a02_gradient_descent.cases import (
    _NO_UPDATE,
    _NONE_GRAD_HINTS,
    _log_uniform,
    _opt_case,
    _rounded,
    _run_first_update,
    _run_grad_changes,
    _run_trajectory,
    _train,
    _uniform,
)
from primer.grading import Check, Hint, register


def _idle_history(cls, case):
    """The trajectory of `idle`, the parameter whose gradient is exactly zero."""
    _, history, _ = _train(cls, case, record=lambda net: net.idle.detach().clone())
    return torch.stack(history)


# ---- Adam and AdamW


class _AdamLike(torch.optim.Optimizer):
    """Adam written plainly, with switches for the known mistakes (used as hints)."""

    no_bias_correction = False
    bias_from_zero = False
    decoupled = False  # AdamW's decay
    decay_through_gradient = True  # Adam's L2 decay
    eps_inside_sqrt = False
    global_step = False  # one step counter shared by (and advanced for) every parameter
    decay_after_update = False  # AdamW's decay applied after the Adam update (CS336's order)
    correct_m_only = False  # bias correction of m only
    paper_eps = False  # Kingma & Ba's "efficient" form: lr·√(1−β2^t)/(1−β1^t) · m/(√v + ε)
    abs_v = False  # v averages |g| instead of g²
    decay_into_grad = False  # g = p.grad.add_(p, alpha=wd): the learner's p.grad is changed
    decay_twice = False  # with `decoupled`: also wd·p added to the gradient
    no_sqrt = False  # divides by v̂ + ε, not √v̂ + ε
    no_one_minus = False  # m ← β1·m + g, v ← β2·v + g² (no (1 − β) factors)
    betas_swapped = False  # β1 used for v and β2 for m
    moments_not_stored = False  # m and v computed as new tensors, never written to the state
    fixed_decay = None  # AdamW's decay with this weight_decay, not the group's

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            if self.betas_swapped:
                b1, b2 = b2, b1
            if self.fixed_decay is not None:
                wd = self.fixed_decay
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                if self.global_step:
                    self.t += 1
                    t = self.t
                else:
                    state["t"] += 1
                    t = state["t"]
                g = p.grad
                if self.decoupled:
                    p.mul_(1 - lr * wd)
                if self.decay_into_grad:
                    g = g.add_(p, alpha=wd)
                elif self.decay_through_gradient and (self.decay_twice or not self.decoupled):
                    g = g + wd * p
                a1, a2 = (1.0, 1.0) if self.no_one_minus else (1 - b1, 1 - b2)
                m = b1 * state["m"] + a1 * g
                v = b2 * state["v"] + a2 * (g.abs() if self.abs_v else g * g)
                if not self.moments_not_stored:
                    state["m"].copy_(m)
                    state["v"].copy_(v)
                if self.no_bias_correction:
                    m_hat, v_hat = m, v
                else:
                    k = t - 1 if self.bias_from_zero else t
                    m_hat, v_hat = m / (1 - b1 ** k), v / (1 - b2 ** k)
                    if self.correct_m_only:
                        v_hat = v
                if self.paper_eps:
                    p.sub_(lr * (1 - b2 ** t) ** 0.5 / (1 - b1 ** t) * m / (v.sqrt() + eps))
                else:
                    denom = (v_hat + eps).sqrt() if self.eps_inside_sqrt else v_hat.sqrt() + eps
                    if self.no_sqrt:
                        denom = v_hat + eps
                    p.sub_(lr * m_hat / denom)
                if self.decay_after_update:
                    p.mul_(1 - lr * wd)


def _adam_variant(name, base=_AdamLike, default_wd=0.0, **flags):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=default_wd):
        base.__init__(self, params, lr, betas, eps, weight_decay)

    return type(name, (base,), {"__init__": __init__, **flags})


_AdamNoBias = _adam_variant("_AdamNoBias", no_bias_correction=True)
_AdamBiasFromZero = _adam_variant("_AdamBiasFromZero", bias_from_zero=True)
_AdamDecoupled = _adam_variant("_AdamDecoupled", decoupled=True)
_AdamEpsInside = _adam_variant("_AdamEpsInside", eps_inside_sqrt=True)
_AdamGlobalStep = _adam_variant("_AdamGlobalStep", global_step=True)

_AdamNoSqrt = _adam_variant("_AdamNoSqrt", no_sqrt=True)
_AdamNoOneMinus = _adam_variant("_AdamNoOneMinus", no_one_minus=True)
_AdamBetasSwapped = _adam_variant("_AdamBetasSwapped", betas_swapped=True)
_AdamMomentsNotStored = _adam_variant("_AdamMomentsNotStored", moments_not_stored=True)

_AdamWThroughGradient = _adam_variant("_AdamWThroughGradient", default_wd=0.01)
_AdamNoDecay = _adam_variant("_AdamNoDecay", decay_through_gradient=False)
_AdamCorrectMOnly = _adam_variant("_AdamCorrectMOnly", correct_m_only=True)
_AdamPaperEps = _adam_variant("_AdamPaperEps", paper_eps=True)
_AdamAbsV = _adam_variant("_AdamAbsV", abs_v=True)
_AdamDecayIntoGrad = _adam_variant("_AdamDecayIntoGrad", decay_into_grad=True)

_AdamWDecayAfter = _adam_variant("_AdamWDecayAfter", default_wd=0.01,
                                 decay_through_gradient=False, decay_after_update=True)
_AdamWDecayTwice = _adam_variant("_AdamWDecayTwice", default_wd=0.01, decoupled=True,
                                 decay_twice=True)
_AdamWBiasFromZero = _adam_variant("_AdamWBiasFromZero", default_wd=0.01, decoupled=True,
                                   decay_through_gradient=False, bias_from_zero=True)
_AdamWCorrectMOnly = _adam_variant("_AdamWCorrectMOnly", default_wd=0.01, decoupled=True,
                                   decay_through_gradient=False, correct_m_only=True)
_AdamWPaperEps = _adam_variant("_AdamWPaperEps", default_wd=0.01, decoupled=True,
                               decay_through_gradient=False, paper_eps=True)
_AdamWAbsV = _adam_variant("_AdamWAbsV", default_wd=0.01, decoupled=True,
                           decay_through_gradient=False, abs_v=True)
_AdamWNoBias = _adam_variant("_AdamWNoBias", default_wd=0.01, decoupled=True,
                             no_bias_correction=True)
_AdamWEpsInside = _adam_variant("_AdamWEpsInside", default_wd=0.01, decoupled=True,
                                eps_inside_sqrt=True)
_AdamWGlobalStep = _adam_variant("_AdamWGlobalStep", default_wd=0.01, decoupled=True,
                                 global_step=True)


_ADAMW = dict(default_wd=0.01, decoupled=True, decay_through_gradient=False)
_AdamWFixedDecay = _adam_variant("_AdamWFixedDecay", fixed_decay=0.01, **_ADAMW)
_AdamWNoSqrt = _adam_variant("_AdamWNoSqrt", no_sqrt=True, **_ADAMW)
_AdamWNoOneMinus = _adam_variant("_AdamWNoOneMinus", no_one_minus=True, **_ADAMW)
_AdamWBetasSwapped = _adam_variant("_AdamWBetasSwapped", betas_swapped=True, **_ADAMW)
_AdamWMomentsNotStored = _adam_variant("_AdamWMomentsNotStored", moments_not_stored=True,
                                       **_ADAMW)


class _AdamWDecayWithoutLR(torch.optim.AdamW):
    """The mistake: p ← p·(1 − wd) instead of p·(1 − lr·wd)."""

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            group["weight_decay_saved"] = group["weight_decay"]
            group["weight_decay"] = group["weight_decay"] / group["lr"]
        super().step()
        for group in self.param_groups:
            group["weight_decay"] = group.pop("weight_decay_saved")


_BIAS_HINTS = (
    Hint(_AdamNoBias, "this matches Adam without bias correction. m and v start at 0, so early "
         "on they are too small; divide by (1 − β1^t) and (1 − β2^t), with t = 1 at the first "
         "step."),
    Hint(_AdamBiasFromZero, "this matches bias correction with t = 0 at the first step "
         "(1 − β^0 = 0 divides by zero); count steps from 1."),
    Hint(_AdamEpsInside, "this matches ε inside the square root, √(v̂ + ε); torch uses √v̂ + ε."),
)

_MOMENT_HINTS = (
    Hint(_AdamCorrectMOnly, "this matches bias-correcting m only; divide v by (1 − β2^t) too: "
         "v̂ = v / (1 − β2^t)."),
    Hint(_AdamPaperEps, "this matches the paper's shortcut lr·√(1 − β2^t)/(1 − β1^t) · m/(√v + ε), "
         "where ε is not bias-corrected; use m̂/(√v̂ + ε), adding ε after the square root of the "
         "corrected v̂."),
    Hint(_AdamAbsV, "this matches averaging |g| in v; v is the average of the elementwise "
         "square g² (g * g), and the update divides by its square root."),
)

_NO_SQRT = ("this matches dividing by v̂ + ε without the square root; the update is "
            "lr·m̂/(√v̂ + ε): v̂ averages g², and √v̂ brings it back to the scale of g.")
_NO_ONE_MINUS = ("this matches moments without the (1 − β) factors (m ← β1·m + g); they are "
                 "averages: m ← β1·m + (1 − β1)·g and v ← β2·v + (1 − β2)·g².")
_BETAS_SWAPPED = ("this matches β1 and β2 swapped; betas = (β1, β2): β1 (0.9 by default) "
                  "averages the gradient in m, β2 (0.999) its square in v, and the bias "
                  "corrections use the same β as their moment.")
_NOT_STORED = ("this matches m and v that are never kept: `m = β1·state['m'] + ...` makes a new "
               "tensor and leaves the state at 0, so every step starts the averages again. "
               "Write them back (state['m'] = m) or update in place (state['m'].mul_(β1).add_(...)).")
_STATE_HINTS = (
    Hint(_AdamNoSqrt, _NO_SQRT),
    Hint(_AdamNoOneMinus, _NO_ONE_MINUS),
    Hint(_AdamBetasSwapped, _BETAS_SWAPPED),
    Hint(_AdamMomentsNotStored, _NOT_STORED),
)

_ADAM_HINTS = (
    _NO_UPDATE,
    *_BIAS_HINTS,
    Hint(_AdamGlobalStep, "this matches one step counter shared by all parameters and advanced "
         "once per parameter; t counts optimizer steps: keep it per parameter (in "
         "self.state[p]) or advance it once per step()."),
    Hint(_AdamDecoupled, "this matches decoupled decay (AdamW's p ← p(1 − lr·wd)); Adam adds "
         "wd·p to the gradient before the moments."),
    Hint(_AdamNoDecay, "this matches ignoring weight_decay; Adam adds weight_decay·p to the "
         "gradient (g ← p.grad + wd·p) before updating m and v."),
    *_MOMENT_HINTS,
    *_STATE_HINTS,
    *_NONE_GRAD_HINTS,
)

_AdamWNoDecay = _adam_variant("_AdamWNoDecay", default_wd=0.01, decay_through_gradient=False)

_ADAMW_NO_DECAY = Hint(_AdamWNoDecay, "this matches no weight decay at all. AdamW shrinks every "
                       "parameter by (1 − lr·wd) each step, even one whose gradient is zero; the "
                       "default weight_decay is 0.01.")

_ADAMW_HINTS = (
    _NO_UPDATE,
    _ADAMW_NO_DECAY,
    Hint(_AdamWThroughGradient, "this matches routing the decay through the gradient "
         "(g + wd·p, Adam's L2 penalty). AdamW decays the weights directly, p ← p·(1 − lr·wd), "
         "and the moments see only the gradient."),
    Hint(_AdamWDecayWithoutLR, "this matches p ← p·(1 − wd); AdamW multiplies by (1 − lr·wd)."),
    Hint(_AdamWNoBias, "this matches AdamW without bias correction: divide m and v by "
         "(1 − β1^t) and (1 − β2^t), t = 1 at the first step."),
    Hint(_AdamWEpsInside, "this matches ε inside the square root, √(v̂ + ε); torch uses √v̂ + ε."),
    Hint(_AdamWGlobalStep, "this matches one step counter shared by all parameters and "
         "advanced once per parameter; keep t per parameter (in self.state[p])."),
    Hint(_AdamWDecayAfter, "this matches decaying after the Adam update (p ← p − lr·m̂/(√v̂+ε), "
         "then p ← p·(1 − lr·wd)); torch.optim.AdamW shrinks p first, then makes the update."),
    Hint(_AdamWDecayTwice, "this matches decaying twice: p ← p·(1 − lr·wd) and also wd·p in the "
         "gradient. In AdamW the moments see only the loss gradient."),
    Hint(_AdamWBiasFromZero, "this matches bias correction with t = 0 at the first step "
         "(1 − β^0 = 0 divides by zero); count steps from 1."),
    Hint(_AdamWCorrectMOnly, "this matches bias-correcting m only; divide v by (1 − β2^t) too: "
         "v̂ = v / (1 − β2^t)."),
    Hint(_AdamWPaperEps, "this matches the paper's shortcut lr·√(1 − β2^t)/(1 − β1^t) · "
         "m/(√v + ε), where ε is not bias-corrected; use m̂/(√v̂ + ε), adding ε after the square "
         "root of the corrected v̂."),
    Hint(_AdamWAbsV, "this matches averaging |g| in v; v is the average of the elementwise "
         "square g² (g * g), and the update divides by its square root."),
    Hint(_AdamWFixedDecay, "this matches a weight decay fixed at 0.01 (the default) whatever "
         "weight_decay is given; read it from each group: wd = group['weight_decay']."),
    Hint(_AdamWNoSqrt, _NO_SQRT),
    Hint(_AdamWNoOneMinus, _NO_ONE_MINUS),
    Hint(_AdamWBetasSwapped, _BETAS_SWAPPED),
    Hint(_AdamWMomentsNotStored, _NOT_STORED),
    *_NONE_GRAD_HINTS,
)


def _adam_first_cases(gen):
    return [
        _opt_case(gen, "float64", steps=1, lr=0.01),
        _opt_case(gen, "float64", steps=1, lr=0.05, betas=(0.8, 0.99)),
        _opt_case(gen, "float64, the first two updates", steps=2, lr=0.01),
    ]


def _adam_trajectory_cases(gen):
    return [
        _opt_case(gen, "float64"),
        _opt_case(gen, "float64", lr=_rounded(_log_uniform(gen, 3e-3, 3e-2))),
        _opt_case(gen, "float64", lr=0.02, betas=(0.5, 0.9)),
        _opt_case(gen, "float64, large eps", lr=0.01, eps=1e-3),
        _opt_case(gen, "float32", dtype=torch.float32, lr=0.01),
        _opt_case(gen, "two parameter groups", layout="groups", lr=0.01),
    ]


def _adam_grad_cases(gen):
    return [_opt_case(gen, "float64", steps=10, lr=0.01,
                      weight_decay=_rounded(_uniform(gen, 0.1, 0.5)))]


def _adam_decay_cases(gen):
    return [
        _opt_case(gen, "float64", lr=0.01, weight_decay=0.1),
        _opt_case(gen, "float64", lr=_rounded(_log_uniform(gen, 3e-3, 3e-2)),
                  weight_decay=_rounded(_uniform(gen, 0.2, 1.0))),
    ]


def _adamw_trajectory_cases(gen):
    return [
        _opt_case(gen, "float64"),
        _opt_case(gen, "float64", lr=0.01, weight_decay=0.1),
        _opt_case(gen, "float64", lr=_rounded(_log_uniform(gen, 3e-3, 3e-2)), betas=(0.8, 0.95),
                  weight_decay=_rounded(_uniform(gen, 0.05, 0.5))),
        _opt_case(gen, "float64, large eps", lr=0.01, eps=1e-3, weight_decay=0.1),
        _opt_case(gen, "float32", dtype=torch.float32, lr=0.01, weight_decay=0.1),
        _opt_case(gen, "two parameter groups", layout="groups", lr=0.01, weight_decay=0.1),
    ]


def _adamw_idle_cases(gen):
    return [
        _opt_case(gen, "parameter with zero gradient", lr=0.01, weight_decay=0.1),
        _opt_case(gen, "parameter with zero gradient", lr=_rounded(_log_uniform(gen, 0.01, 0.1)),
                  weight_decay=_rounded(_uniform(gen, 0.1, 0.9))),
        _opt_case(gen, "parameter with zero gradient"),
    ]


_AXES = ("step", "parameter element")

register(
    Check("Adam", "first_step", "makes the same first update as torch.optim.Adam (bias "
          "correction from step 1)", _adam_first_cases, torch.optim.Adam,
          run=_run_first_update, hints=_ADAM_HINTS, axes=_AXES),
    Check("Adam", "trajectory", "takes the same 50 steps as torch.optim.Adam",
          _adam_trajectory_cases, torch.optim.Adam, run=_run_trajectory, hints=_ADAM_HINTS, points=2,
          axes=_AXES),
    Check("Adam", "weight_decay", "adds weight_decay·p to the gradient, like torch.optim.Adam",
          _adam_decay_cases, torch.optim.Adam, run=_run_trajectory, hints=_ADAM_HINTS, axes=_AXES),
    Check("Adam", "grad_untouched", "leaves p.grad as autograd made it (step() changes it by 0, "
          "also with weight decay)", _adam_grad_cases, torch.optim.Adam, run=_run_grad_changes,
          hints=(Hint(_AdamDecayIntoGrad, "this matches adding the weight decay into p.grad in "
                      "place (p.grad.add_(...) or p.grad += ...): the optimizer must not change "
                      "the gradients. Compute g = p.grad + wd·p as a new tensor."),),
          axes=_AXES),
    Check("AdamW", "trajectory", "takes the same 50 steps as torch.optim.AdamW",
          _adamw_trajectory_cases, torch.optim.AdamW, run=_run_trajectory, hints=_ADAMW_HINTS, points=2,
          axes=_AXES),
    Check("AdamW", "decoupled_decay",
          "multiplies a parameter whose gradient is zero by (1 − lr·wd) every step",
          _adamw_idle_cases, torch.optim.AdamW, run=_idle_history, hints=_ADAMW_HINTS[1:],
          axes=("step", "element of the zero-gradient parameter")),
)
