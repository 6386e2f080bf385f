"""Assignment 02: mistakes a learner might make, and correct answers written differently.

The first gradient_descent mutant is pasted into a notebook by the nbgrader end-to-end test, so
it only uses what the notebook's first cell imports (torch).
"""

import math
import warnings

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- gradient_descent


@mutant("gradient_descent", hint="climbs the loss")
def gd_ascent(loss_fn, theta0, lr, steps):
    theta = theta0.detach().clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        (grad,) = torch.autograd.grad(loss, theta)
        losses.append(loss.item())
        theta = (theta + lr * grad).detach()
    return theta, losses


@mutant("gradient_descent", hint="gradients that accumulate")
def gd_never_zeroes_grad(loss_fn, theta0, lr, steps):
    theta = theta0.clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            theta -= lr * theta.grad
    return theta.detach(), losses


@mutant("gradient_descent", hint="after each update", fails=("losses",))
def gd_loss_after_update(loss_fn, theta0, lr, steps):
    theta = theta0.clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        grad = torch.autograd.grad(loss_fn(theta), theta)[0]
        theta = (theta - lr * grad).detach()
        losses.append(loss_fn(theta).item())
    return theta, losses


@mutant("gradient_descent", hint="steps + 1 losses", fails=("losses",))
def gd_one_loss_too_many(loss_fn, theta0, lr, steps):
    theta = theta0.clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        losses.append(loss.item())
        theta = (theta - lr * torch.autograd.grad(loss, theta)[0]).detach()
    losses.append(loss_fn(theta).item())
    return theta, losses


@mutant("gradient_descent", fails=("theta",))
def gd_modifies_theta0(loss_fn, theta0, lr, steps):
    losses = []
    for _ in range(steps):
        theta = theta0.detach().requires_grad_(True)
        loss = loss_fn(theta)
        losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta0 -= lr * grad
    return theta0.clone(), losses


@mutant("gradient_descent", fails=("theta",))
def gd_stops_one_step_early(loss_fn, theta0, lr, steps):
    theta = theta0.clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        losses.append(loss.item())
        if len(losses) < steps:
            theta = (theta - lr * torch.autograd.grad(loss, theta)[0]).detach()
    return theta.detach(), losses


@alternative("gradient_descent")
def gd_with_backward(loss_fn, theta0, lr, steps):
    theta = theta0.clone().detach().requires_grad_(True)
    losses = torch.zeros(steps, dtype=theta0.dtype)
    for t in range(steps):
        theta.grad = None
        loss = loss_fn(theta)
        loss.backward()
        losses[t] = loss.detach()
        with torch.no_grad():
            theta.sub_(lr * theta.grad)
    return theta.detach(), losses


@alternative("gradient_descent")
def gd_with_torch_func(loss_fn, theta0, lr, steps):
    value_and_grad = torch.func.grad_and_value(loss_fn)
    theta, losses = theta0, []
    for _ in range(steps):
        grad, loss = value_and_grad(theta)
        losses.append(float(loss))
        theta = theta - lr * grad
    return theta, losses


# --------------------------------------------------------------------------- minibatches


@mutant("minibatches", hint="with replacement", fails=("partition",))
def mb_with_replacement(n, batch_size, generator):
    idx = torch.randint(0, n, (n,), generator=generator)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]


@mutant("minibatches", hint="dropping the last", fails=("partition",))
def mb_drop_last(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    for i in range(n // batch_size):
        yield perm[i * batch_size:(i + 1) * batch_size]


@mutant("minibatches", hint="without the generator", fails=("order",))
def mb_global_rng(n, batch_size, generator):
    yield from torch.randperm(n).split(batch_size)


@mutant("minibatches", hint="not shuffled", fails=("order",))
def mb_in_order(n, batch_size, generator):
    yield from torch.arange(n).split(batch_size)


@mutant("minibatches", fails=("order",))
def mb_shuffled_another_way(n, batch_size, generator):
    perm = torch.rand(n, generator=generator).argsort()
    return list(perm.split(batch_size))


@mutant("minibatches", fails=("order",))
def mb_same_order_every_epoch(n, batch_size, generator):
    fresh = torch.Generator().manual_seed(generator.initial_seed())
    return torch.randperm(n, generator=fresh).split(batch_size)


@mutant("minibatches", fails=("partition",))
def mb_one_big_batch(n, batch_size, generator):
    return [torch.randperm(n, generator=generator)]


@alternative("minibatches")
def mb_split(n, batch_size, generator):
    return torch.randperm(n, generator=generator).split(batch_size)


@alternative("minibatches")
def mb_tensor_split_with_warning(n, batch_size, generator):
    warnings.warn("a harmless warning from the learner's code")
    perm = torch.randperm(n, generator=generator)
    return iter(perm.tensor_split(list(range(batch_size, n, batch_size))))


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


# --------------------------------------------------------------------------- Adam


def _adam_class(name, *, bias=True, from_zero=False, eps_inside=False, decoupled=False,
                l2=True, global_t=False, decay_after=False, default_wd=0.0, python_floats=False):
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
                    elif l2 and not decoupled:
                        g = g + wd * p
                    s["m"] = b1 * s["m"] + (1 - b1) * g
                    s["v"] = b2 * s["v"] + (1 - b2) * g * g
                    if bias and python_floats:
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


# --------------------------------------------------------------------------- optimizer memory


@mutant("optimizer_state_bytes", hint="step counters", fails=("after_step",))
def state_bytes_without_step(optimizer):
    return sum(t.numel() * t.element_size() for s in optimizer.state.values()
               for k, t in s.items() if k != "step" and torch.is_tensor(t))


@mutant("optimizer_state_bytes", hint="counting elements", fails=("after_step",))
def state_numel(optimizer):
    return sum(t.numel() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t))


@mutant("optimizer_state_bytes", hint="4 bytes per element", fails=("edge_cases",))
def state_assumes_float32(optimizer):
    return sum(4 * t.numel() for s in optimizer.state.values() for t in s.values()
               if torch.is_tensor(t))


@mutant("optimizer_state_bytes", hint="bytes of the parameters themselves")
def state_counts_parameters(optimizer):
    return sum(p.numel() * p.element_size() for g in optimizer.param_groups for p in g["params"])


@alternative("optimizer_state_bytes")
def state_bytes_from_state_dict(optimizer):
    total = 0
    for per_param in optimizer.state_dict()["state"].values():
        total += sum(v.nbytes for v in per_param.values() if isinstance(v, torch.Tensor))
    return total


@alternative("optimizer_state_bytes")
def state_bytes_by_dtype(optimizer):
    tensors = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    bits = sum(v.numel() * torch.finfo(v.dtype).bits if v.is_floating_point()
               else v.numel() * torch.iinfo(v.dtype).bits for v in tensors)
    return bits // 8


@mutant("training_bytes_per_param", hint="without the gradients")
def training_no_grads(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 1, "momentum": 2, "adam": 3, "adamw": 3}[optimizer]


@mutant("training_bytes_per_param", hint="state alone")
def training_state_only(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]


@mutant("training_bytes_per_param", hint="4 bytes per number", fails=("any_precision",))
def training_fixed_float32(optimizer, param_bytes=4):
    return {"sgd": 8, "momentum": 12, "adam": 16, "adamw": 16}[optimizer]


@mutant("training_bytes_per_param")
def training_adamw_three_buffers(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 2, "momentum": 3, "adam": 4, "adamw": 5}[optimizer]


@alternative("training_bytes_per_param")
def training_if_chain(optimizer, param_bytes=4):
    weights_and_grads = 2 * param_bytes
    if optimizer == "sgd":
        return weights_and_grads
    if optimizer == "momentum":
        return weights_and_grads + param_bytes
    return weights_and_grads + 2 * param_bytes


# --------------------------------------------------------------------------- LR schedules
#
# Mutants of the three schedules are built from one parameterised closed form; each has the
# learner-facing signature of its exercise.

_SIGNATURES = {
    "lr_warmup_cosine": "cosine",
    "lr_warmup_linear": "linear",
    "lr_warmup_constant_cooldown": "constant",
}


def _schedule(kind, *, warmup="plus_one", end_shift=0, hold=True, floor_zero=False,
              cosine_shift=0):
    def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
        W, T = warmup_steps, total_steps - end_shift
        floor = 0.0 if floor_zero else min_lr
        if step < W:
            if warmup == "plus_one":
                return max_lr * (step + 1) / W
            if warmup == "from_zero":
                return max_lr * step / W
            return max_lr * (step + 1) / (W + 1)
        if step > T and hold:
            return floor
        if kind == "cosine":
            p = (step - W + cosine_shift) / (T - W)
            return floor + (max_lr - floor) * 0.5 * (1 + math.cos(math.pi * p))
        start = W if kind == "linear" else T - cooldown_steps
        if step <= start:
            return max_lr
        return max_lr - (max_lr - floor) * (step - start) / (T - start)
    return lr


def _register_schedule_mutants():
    for exercise, kind in _SIGNATURES.items():
        variants = [
            ("warmup_from_zero", "starts at 0", ("warmup",), dict(warmup="from_zero")),
            ("warmup_over_w_plus_one", None, ("warmup",), dict(warmup="w_plus_one")),
            ("ends_one_step_early", "one step early", ("decay",), dict(end_shift=1)),
            ("does_not_hold_min", "stay at min_lr", ("decay",), dict(hold=False)),
            ("decays_to_zero", "decaying to 0", ("decay",), dict(floor_zero=True)),
        ]
        if kind == "cosine":
            variants.append(("cosine_shifted", None, ("decay",), dict(cosine_shift=1)))
        for name, hint, fails, options in variants:
            fn = _schedule(kind, **options)
            fn.__name__ = f"{exercise}_{name}"
            mutant(exercise, hint=hint, fails=fails)(fn)


_register_schedule_mutants()


@alternative("lr_warmup_cosine")
def cosine_clamped(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if warmup_steps and step < warmup_steps:
        return (step + 1) * max_lr / warmup_steps
    t = min(step, total_steps) - warmup_steps
    span = total_steps - warmup_steps
    return 0.5 * (max_lr + min_lr) + 0.5 * (max_lr - min_lr) * math.cos(math.pi * t / span)


@alternative("lr_warmup_cosine")
def cosine_as_tensor(step, *, max_lr, min_lr, warmup_steps, total_steps):
    """Returns 0-dimensional float64 tensors instead of Python floats."""
    if step < warmup_steps:
        return torch.tensor((step + 1) / warmup_steps * max_lr, dtype=torch.float64)
    p = torch.tensor(min(step, total_steps) - warmup_steps, dtype=torch.float64)
    p = p / (total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * (1 + torch.cos(math.pi * p)) / 2


@alternative("lr_warmup_linear")
def linear_interpolated(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    frac = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return (1 - frac) * max_lr + frac * min_lr


@alternative("lr_warmup_constant_cooldown")
def constant_cooldown_with_min(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    remaining = max(total_steps - step, 0)  # steps left until the end of the run
    if remaining >= cooldown_steps:
        return max_lr
    return min_lr + (max_lr - min_lr) * remaining / cooldown_steps
