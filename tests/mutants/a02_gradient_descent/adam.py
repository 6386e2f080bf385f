"""Assignment 02, Adam and AdamW: mistakes a learner might make, and correct answers written
differently. Most mutants are made by _adam_class, one parameterised Adam/AdamW."""

import math

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- Adam


def _adam_class(name, *, bias=True, from_zero=False, eps_inside=False, decoupled=False,
                l2=True, global_t=False, decay_after=False, default_wd=0.0, python_floats=False,
                m_only=False, paper_eps=False, abs_v=False, grad_inplace=False, decay_twice=False):
    """Build an Adam/AdamW variant (used for the mutants below; not pasted into notebooks)."""

    class Variant(torch.optim.Optimizer):
        def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=default_wd):
            super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
            self.t = 0

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    s = self.state[p]
                    if not s:
                        s["t"], s["m"], s["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                    if global_t:
                        self.t += 1
                        t = self.t
                    elif from_zero:
                        t = s["t"]
                        s["t"] += 1
                    else:
                        s["t"] += 1
                        t = s["t"]
                    g = p.grad
                    if decoupled and not decay_after:
                        p.mul_(1 - lr * wd)
                    elif grad_inplace:
                        g += wd * p
                    elif l2 and not decoupled:
                        g = g + wd * p
                    if decay_twice:
                        g = g + wd * p
                    s["m"] = b1 * s["m"] + (1 - b1) * g
                    s["v"] = b2 * s["v"] + (1 - b2) * (g.abs() if abs_v else g * g)
                    if paper_eps:
                        step_size = lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                        update = step_size * s["m"] / (s["v"].sqrt() + eps)
                    elif m_only:
                        update = lr * (s["m"] / (1 - b1 ** t)) / (s["v"].sqrt() + eps)
                    elif bias and python_floats:
                        c1, c2 = 1 - b1 ** t, 1 - b2 ** t
                        step_size = lr / c1  # ZeroDivisionError when t = 0
                        update = step_size * s["m"] / ((s["v"] / c2).sqrt() + eps)
                    else:
                        m_hat = s["m"] / (1 - b1 ** t) if bias else s["m"]
                        v_hat = s["v"] / (1 - b2 ** t) if bias else s["v"]
                        denom = (v_hat + eps).sqrt() if eps_inside else v_hat.sqrt() + eps
                        update = lr * m_hat / denom
                    p.sub_(update)
                    if decoupled and decay_after:
                        p.mul_(1 - lr * wd)

    Variant.__name__ = Variant.__qualname__ = name
    return Variant


mutant("Adam", hint="without bias correction", fails=("first_step",))(
    _adam_class("AdamNoBiasCorrection", bias=False))
mutant("Adam", hint="t = 0 at the first step", fails=("first_step",))(
    _adam_class("AdamBiasFromStepZero", from_zero=True))
mutant("Adam", fails=("first_step", "trajectory"))(
    _adam_class("AdamBiasFromStepZeroFloats", from_zero=True, python_floats=True))
mutant("Adam", hint="inside the square root", fails=("trajectory",))(
    _adam_class("AdamEpsInsideSqrt", eps_inside=True))
mutant("Adam", hint="decoupled decay", fails=("weight_decay",))(
    _adam_class("AdamDecoupledDecay", decoupled=True))
mutant("Adam", hint="one step counter shared", fails=("trajectory",))(
    _adam_class("AdamGlobalStepCounter", global_t=True))
mutant("Adam", fails=("weight_decay",))(_adam_class("AdamIgnoresDecay", l2=False))


@mutant("Adam", fails=("trajectory",))
class AdamAbsNotSquare(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state.setdefault(p, {})
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                s["t"] += 1
                g = p.grad + group["weight_decay"] * p
                s["m"].mul_(b1).add_((1 - b1) * g)
                s["v"].mul_(b2).add_((1 - b2) * g.abs())
                m_hat, v_hat = s["m"] / (1 - b1 ** s["t"]), s["v"] / (1 - b2 ** s["t"])
                p.sub_(group["lr"] * m_hat / (v_hat + group["eps"]))


@alternative("Adam")
class AdamTorchStyle(torch.optim.Optimizer):
    """torch's own arrangement: lerp_, addcmul_, bias corrections folded into addcdiv_."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                step = state["step"].item()
                grad = p.grad.add(p, alpha=group["weight_decay"]) if group["weight_decay"] else p.grad
                state["exp_avg"].lerp_(grad, 1 - beta1)
                state["exp_avg_sq"].mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
                denom = (state["exp_avg_sq"].sqrt() / bias_correction2_sqrt).add_(group["eps"])
                p.addcdiv_(state["exp_avg"], denom, value=-group["lr"] / bias_correction1)


@alternative("Adam")
class AdamOnePerStep(torch.optim.Optimizer):
    """One step counter for the whole optimizer, advanced once per step(): also correct."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.steps_taken = 0

    def step(self):
        self.steps_taken += 1
        t = self.steps_taken
        with torch.no_grad():
            for group in self.param_groups:
                b1, b2 = group["betas"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    g = p.grad + group["weight_decay"] * p
                    m = self.state[p].get("m", torch.zeros_like(p))
                    v = self.state[p].get("v", torch.zeros_like(p))
                    m = b1 * m + (1 - b1) * g
                    v = b2 * v + (1 - b2) * g ** 2
                    self.state[p]["m"], self.state[p]["v"] = m, v
                    p -= group["lr"] * (m / (1 - b1 ** t)) / ((v / (1 - b2 ** t)).sqrt() + group["eps"])


# --------------------------------------------------------------------------- AdamW


mutant("AdamW", hint="routing the decay through the gradient", fails=("decoupled_decay",))(
    _adam_class("AdamWDecayThroughGradient", default_wd=0.01))
mutant("AdamW", hint="without bias correction", fails=("trajectory",))(
    _adam_class("AdamWNoBiasCorrection", bias=False, decoupled=True, default_wd=0.01))
mutant("AdamW", fails=("trajectory",))(
    _adam_class("AdamWDecayAfterUpdate", decoupled=True, decay_after=True, default_wd=0.01))
mutant("AdamW", fails=("trajectory", "decoupled_decay"))(
    _adam_class("AdamWDefaultDecayZero", decoupled=True, default_wd=0.0))
mutant("AdamW", hint="inside the square root", fails=("trajectory",))(
    _adam_class("AdamWEpsInsideSqrt", eps_inside=True, decoupled=True, default_wd=0.01))


@mutant("AdamW", hint="p ← p·(1 − wd)", fails=("decoupled_decay",))
class AdamWDecayWithoutLR(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if not s:
                    s.update(t=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                s["t"] += 1
                p.mul_(1 - group["weight_decay"])
                s["m"].mul_(b1).add_(p.grad, alpha=1 - b1)
                s["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat, v_hat = s["m"] / (1 - b1 ** s["t"]), s["v"] / (1 - b2 ** s["t"])
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))


@alternative("AdamW")
class AdamWSubtractDecay(torch.optim.Optimizer):
    """Decay written as p − lr·wd·p, and the update with addcdiv_."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, wd, eps = group["lr"], group["weight_decay"], group["eps"]
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if "step" not in st:
                    st["step"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["step"] += 1
                p.add_(p, alpha=-lr * wd)
                st["m"].mul_(b1).add_(p.grad * (1 - b1))
                st["v"].mul_(b2).add_(p.grad.square() * (1 - b2))
                denom = (st["v"] / (1 - b2 ** st["step"])).sqrt().add_(eps)
                p.addcdiv_(st["m"], denom, value=-lr / (1 - b1 ** st["step"]))


@alternative("AdamW")
class AdamWOneUpdate(torch.optim.Optimizer):
    """The whole update in one expression from θ_{t−1}: θ − lr·(m̂/(√v̂+ε) + wd·θ)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                t = st["t"] = st.get("t", 0) + 1
                st["m"] = b1 * st.get("m", 0) + (1 - b1) * p.grad
                st["v"] = b2 * st.get("v", 0) + (1 - b2) * p.grad * p.grad
                m_hat, v_hat = st["m"] / (1 - b1 ** t), st["v"] / (1 - b2 ** t)
                p.copy_(p - group["lr"] * (m_hat / (v_hat.sqrt() + group["eps"])
                                           + group["weight_decay"] * p))


# --------------------------------------------------------------------------- added with the hints
# of the one-hint rule (appended: the end-to-end tests take an exercise's first mutant that fails
# every check).

mutant("Adam", hint="ignoring weight_decay", fails=("weight_decay",))(
    _adam_class("AdamWithoutWeightDecay", l2=False))
mutant("Adam", hint="bias-correcting m only", fails=("first_step", "trajectory"))(
    _adam_class("AdamCorrectsOnlyM", m_only=True))
mutant("Adam", hint="paper's shortcut", fails=("trajectory",))(
    _adam_class("AdamPaperShortcut", paper_eps=True))
mutant("Adam", hint="averaging |g| in v", fails=("first_step", "trajectory"))(
    _adam_class("AdamAveragesAbsGrad", abs_v=True))
mutant("Adam", hint="into p.grad in place", fails=("grad_untouched",))(
    _adam_class("AdamDecayIntoGrad", grad_inplace=True))

mutant("AdamW", hint="decaying after the Adam update", fails=("trajectory",))(
    _adam_class("AdamWDecaysAfterTheUpdate", decoupled=True, decay_after=True, default_wd=0.01))
mutant("AdamW", hint="decaying twice", fails=("trajectory",))(
    _adam_class("AdamWDecaysTwice", decoupled=True, decay_twice=True, default_wd=0.01))
mutant("AdamW", hint="t = 0 at the first step", fails=("trajectory",))(
    _adam_class("AdamWBiasFromStepZero", decoupled=True, from_zero=True, default_wd=0.01))
mutant("AdamW", hint="bias-correcting m only", fails=("trajectory",))(
    _adam_class("AdamWCorrectsOnlyM", decoupled=True, m_only=True, default_wd=0.01))
mutant("AdamW", hint="paper's shortcut", fails=("trajectory",))(
    _adam_class("AdamWPaperShortcut", decoupled=True, paper_eps=True, default_wd=0.01))
mutant("AdamW", hint="averaging |g| in v", fails=("trajectory",))(
    _adam_class("AdamWAveragesAbsGrad", decoupled=True, abs_v=True, default_wd=0.01))


@alternative("AdamW")
class AdamWLerp(torch.optim.Optimizer):
    """lerp_ for m, addcmul_ for v, a float tensor step count, one addcdiv_."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                s = self.state[p]
                if len(s) == 0:
                    s["step"] = torch.tensor(0.0)
                    s["exp_avg"] = torch.zeros_like(p)
                    s["exp_avg_sq"] = torch.zeros_like(p)
                s["step"] += 1
                t = s["step"].item()
                p.add_(p, alpha=-group["lr"] * group["weight_decay"])
                s["exp_avg"].lerp_(p.grad, 1 - b1)
                s["exp_avg_sq"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                denom = (s["exp_avg_sq"] / (1 - b2 ** t)).sqrt_().add_(group["eps"])
                p.addcdiv_(s["exp_avg"], denom, value=-group["lr"] / (1 - b1 ** t))


# --------------------------------------------------------------------------- added with the hints
# for no square root, no (1 − β), swapped betas, moments never stored, a fixed AdamW decay
# (blind testers' answers, ported).


class _TesterAdam(torch.optim.Optimizer):
    sqrt, one_minus, swap, keep, adamw, fixed_wd = True, True, False, True, False, None

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=None):
        if weight_decay is None:
            weight_decay = 0.01 if self.adamw else 0.0
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = reversed(group["betas"]) if self.swap else group["betas"]
            wd = group["weight_decay"] if self.fixed_wd is None else self.fixed_wd
            for p in group["params"]:
                if p.grad is None:
                    continue
                st = self.state[p]
                if not st:
                    st["step"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["step"] += 1
                t = st["step"]
                if self.adamw:
                    p.mul_(1 - group["lr"] * wd)
                    g = p.grad
                else:
                    g = p.grad + wd * p
                c1, c2 = (1 - b1, 1 - b2) if self.one_minus else (1, 1)
                m = b1 * st["m"] + c1 * g
                v = b2 * st["v"] + c2 * g * g
                if self.keep:
                    st["m"], st["v"] = m, v
                mh, vh = m / (1 - b1 ** t), v / (1 - b2 ** t)
                p.sub_(group["lr"] * mh / ((vh.sqrt() if self.sqrt else vh) + group["eps"]))


def _tester(name, exercise, hint, fails, **flags):
    cls = type(name, (_TesterAdam,), dict(flags, adamw=exercise == "AdamW"))
    return mutant(exercise, hint=hint, fails=fails)(cls)


AdamNoSqrt = _tester("AdamNoSqrt", "Adam", "without the square root", ("first_step",), sqrt=False)
AdamNoOneMinus = _tester("AdamNoOneMinus", "Adam", "without the (1 − β) factors", ("first_step",),
                         one_minus=False)
AdamBetasSwapped = _tester("AdamBetasSwapped", "Adam", "β1 and β2 swapped", ("first_step",),
                           swap=True)
AdamMomentsNeverStored = _tester("AdamMomentsNeverStored", "Adam", "never kept", ("first_step",),
                                 keep=False)
AdamWDecayFixed = _tester("AdamWDecayFixed", "AdamW", "fixed at 0.01", ("trajectory",),
                          fixed_wd=0.01)


@mutant("Adam", hint="does not skip parameters whose p.grad is None", fails=("first_step",))
class AdamNoNoneCheck(torch.optim.Optimizer):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                st = self.state[p]
                if not st:
                    st.update(step=0, m=torch.zeros_like(p), v=torch.zeros_like(p))
                st["step"] += 1
                st["m"].lerp_(p.grad, 1 - b1)
                st["v"].mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
                m_hat = st["m"] / (1 - b1 ** st["step"])
                v_hat = st["v"] / (1 - b2 ** st["step"])
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))



@alternative("AdamW")
class AdamWDecayThenAdam(_TesterAdam):
    """The decay first, then the parent's Adam step with weight_decay set to 0 for it."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)

    @torch.no_grad()
    def step(self):
        saved = [group["weight_decay"] for group in self.param_groups]
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"])
            group["weight_decay"] = 0.0
        try:
            super().step()
        finally:
            for group, wd in zip(self.param_groups, saved):
                group["weight_decay"] = wd
