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
