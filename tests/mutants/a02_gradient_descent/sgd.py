"""Assignment 02, SGD: mistakes a learner might make, and correct answers written differently."""

import warnings

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- SGD


@mutant("SGD", hint="only rebinds a name")
class SGDRebinds(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p = p - group["lr"] * (p.grad + group["weight_decay"] * p)  # noqa: PLW2901


@mutant("SGD", hint="one lr for every parameter group")
class SGDConstructorLR(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + self.weight_decay * p
                if self.momentum:
                    buf = self.state[p].get("buf")
                    buf = g.clone() if buf is None else buf.mul_(self.momentum).add_(g)
                    self.state[p]["buf"] = buf
                    g = buf
                p.sub_(self.lr * g)


@mutant("SGD", hint="dampening", fails=("momentum",))
class SGDDampened(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            mu = group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                if mu:
                    state = self.state[p]
                    state["buf"] = g.clone() if "buf" not in state else mu * state["buf"] + (1 - mu) * g
                    g = state["buf"]
                p.sub_(group["lr"] * g)


@mutant("SGD", hint="after the momentum buffer", fails=("weight_decay",))
class SGDDecayAfterMomentum(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            mu, wd = group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if mu:
                    state = self.state[p]
                    state["buf"] = g.clone() if "buf" not in state else mu * state["buf"] + g
                    g = state["buf"]
                p.sub_(group["lr"] * (g + wd * p))


@mutant("SGD", fails=("weight_decay",))
class SGDDecaySignFlipped(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad - group["weight_decay"] * p
                if group["momentum"]:
                    state = self.state[p]
                    state["buf"] = g.clone() if "buf" not in state else group["momentum"] * state["buf"] + g
                    g = state["buf"]
                p.sub_(group["lr"] * g)


@mutant("SGD")
class SGDForgetsNoneGrads(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * p.grad)


@alternative("SGD")
class SGDZeroInitBuffer(torch.optim.Optimizer):
    """The buffer starts at zero: m·0 + g = g at the first step, the same as torch's clone."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad.add(p, alpha=group["weight_decay"])
                if group["momentum"] > 0:
                    buf = self.state[p].setdefault("velocity", torch.zeros_like(p))
                    buf.mul_(group["momentum"]).add_(d_p)
                    d_p = buf
                p -= group["lr"] * d_p


@alternative("SGD")
class SGDFlat(torch.optim.Optimizer):
    """Out-of-place arithmetic, a list comprehension of live parameters, and a warning."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})

    def step(self):
        warnings.warn("a harmless warning from the learner's code")
        with torch.no_grad():
            for group in self.param_groups:
                for p in [q for q in group["params"] if q.grad is not None]:
                    g = p.grad + group["weight_decay"] * p
                    if group["momentum"] != 0.0:
                        if "v" in self.state[p]:
                            g = group["momentum"] * self.state[p]["v"] + g
                        self.state[p]["v"] = g
                    p.copy_(p - group["lr"] * g)


# --------------------------------------------------------------------------- added with the hints
# of the one-hint rule (appended: the end-to-end tests take an exercise's first mutant that fails
# every check).


def _sgd_class(name, *, decay=True, ema=False, keep=True, nesterov=False, into_grad=False,
               alias=False):
    """An SGD variant (used for the mutants below)."""

    class Variant(torch.optim.Optimizer):
        def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
            super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

        @torch.no_grad()
        def step(self):
            for group in self.param_groups:
                lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    if into_grad:
                        p.grad += wd * p
                        g = p.grad
                    elif decay:
                        g = p.grad if alias and wd == 0 else p.grad + wd * p
                    else:
                        g = p.grad
                    if mu:
                        state = self.state[p] if keep else {}
                        if ema:
                            buf = state.setdefault("b", torch.zeros_like(p))
                            buf.mul_(mu).add_((1 - mu) * g)
                        elif "b" not in state:
                            buf = state["b"] = g if alias else g.clone()
                        else:
                            buf = state["b"]
                            buf.mul_(mu).add_(g)
                        g = g + mu * buf if nesterov else buf
                    p.sub_(lr * g)

    Variant.__name__ = Variant.__qualname__ = name
    return Variant


mutant("SGD", hint="ignoring weight_decay", fails=("weight_decay",))(
    _sgd_class("SGDIgnoresWeightDecay", decay=False))
mutant("SGD", hint="exponential moving average from 0", fails=("momentum",))(
    _sgd_class("SGDMomentumAsEMA", ema=True))
mutant("SGD", hint="momentum that has no effect", fails=("momentum",))(
    _sgd_class("SGDForgetsTheBuffer", keep=False))
mutant("SGD", hint="Nesterov", fails=("momentum",))(_sgd_class("SGDNesterov", nesterov=True))
mutant("SGD", hint="into p.grad in place", fails=("grad_untouched",))(
    _sgd_class("SGDDecayIntoGrad", into_grad=True))
mutant("SGD", hint="p.grad itself as the momentum buffer", fails=("grad_untouched",))(
    _sgd_class("SGDBufferIsTheGrad", alias=True))


@mutant("SGD", fails=("plain",))
class SGDDoesNotSkipNone(torch.optim.Optimizer):
    """Does not skip a parameter whose .grad is None (TypeError)."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p.sub_(group["lr"] * (p.grad + group["weight_decay"] * p))


@alternative("SGD")
class SGDCloneThenInPlace(torch.optim.Optimizer):
    """A copy of the gradient, decay added to the copy in place, torch's buffer name."""

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad.clone()
                if wd:
                    d += wd * p
                if mu:
                    state = self.state[p]
                    if "momentum_buffer" not in state:
                        state["momentum_buffer"] = torch.zeros_like(p)
                    state["momentum_buffer"].mul_(mu).add_(d)
                    d = state["momentum_buffer"]
                p -= lr * d


# --------------------------------------------------------------------------- added with the hints
# for a missing None check, a subtracted decay and a buffer from 0 (blind testers' answers, ported).


class _SGDBase(torch.optim.Optimizer):
    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))


@mutant("SGD", hint="does not skip parameters whose p.grad is None", fails=("plain",))
class SGDNoNoneCheckWithMomentum(_SGDBase):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                g = p.grad + group["weight_decay"] * p
                if group["momentum"]:
                    st = self.state[p]
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = g.clone()
                    else:
                        st["momentum_buffer"].mul_(group["momentum"]).add_(g)
                    g = st["momentum_buffer"]
                p.add_(g, alpha=-group["lr"])


@mutant("SGD", hint="does not skip parameters whose p.grad is None", fails=("plain",))
class SGDNoNoneCheckPlain(_SGDBase):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                p -= group["lr"] * p.grad


@mutant("SGD", hint="subtracting the weight decay", fails=("weight_decay",))
class SGDDecaySubtracted(_SGDBase):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.clone()
                g.sub_(p, alpha=group["weight_decay"])
                if group["momentum"]:
                    buf = self.state[p].get("momentum_buffer")
                    if buf is None:
                        buf = self.state[p]["momentum_buffer"] = g.clone()
                    else:
                        buf.mul_(group["momentum"]).add_(g)
                    g = buf
                p.sub_(group["lr"] * g)


@mutant("SGD", hint="buffer that starts at 0", fails=("momentum",))
class SGDBufferZeroAtFirstStep(_SGDBase):
    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad + group["weight_decay"] * p
                if group["momentum"]:
                    st = self.state[p]
                    if "momentum_buffer" not in st:
                        st["momentum_buffer"] = torch.zeros_like(p)
                    else:
                        st["momentum_buffer"].mul_(group["momentum"]).add_(g)
                    g = st["momentum_buffer"]
                p.add_(g, alpha=-group["lr"])


@alternative("SGD")
class SGDOnData(_SGDBase):
    """p.data arithmetic without torch.no_grad(), the buffer replaced by a new tensor each step."""

    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data + group["weight_decay"] * p.data
                state = self.state[p]
                if group["momentum"] > 0:
                    state["buf"] = g.clone() if "buf" not in state else group["momentum"] * state["buf"] + g
                    g = state["buf"]
                p.data -= group["lr"] * g
