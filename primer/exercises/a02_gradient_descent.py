"""Assignment 02, primer §3.2: gradient descent, minibatches, SGD/Adam/AdamW, optimizer memory,
learning-rate schedules.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). Mutants used to test these checks:
tests/mutants/a02_gradient_descent.py.

Stateful exercises (optimizers, schedules) are graded through their own `run`: it builds the
same seeded model and data for the reference (`torch.optim.SGD/Adam/AdamW`, schedulers from
`torch.optim.lr_scheduler`) and for the learner's object, and returns the whole trajectory.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torch.optim import lr_scheduler

from primer.exercises._common import randn, seeded
from primer.grading import Case, Check, Hint, register


def _uniform(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def _log_uniform(gen: torch.Generator, low: float, high: float) -> float:
    return math.exp(_uniform(gen, math.log(low), math.log(high)))


def _int(gen: torch.Generator, low: int, high: int) -> int:
    """An integer in [low, high]."""
    return int(torch.randint(low, high + 1, (), generator=gen))


# Imported once by the grading sandbox before it forks a run per submission: optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

# --------------------------------------------------------------------------- gradient_descent
#
# Contract (stated in the notebook): theta0 is not modified; `steps` updates
# θ_{t+1} = θ_t − lr ∇L(θ_t); losses[t] = L(θ_t) for t = 0 .. steps−1 (before each update);
# returns (θ_steps, losses). The cases are float64 (one float32) so that θ − lr·g and torch's
# add_(g, alpha=−lr) cannot drift apart by rounding over many steps.


class LeastSquares:
    """L(θ) = mean((Aθ − b)²), a loss the reference can also solve in closed form."""

    def __init__(self, A: torch.Tensor, b: torch.Tensor):
        self.A, self.b = A, b

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return ((self.A @ theta - self.b) ** 2).mean()

    def smoothness(self) -> float:
        """L: the largest eigenvalue of the Hessian (2/n) AᵀA."""
        return float(torch.linalg.eigvalsh(2 * self.A.T @ self.A / len(self.A)).max())


class Quadratic:
    """L(θ) = ½ θᵀHθ − cᵀθ with H symmetric positive definite."""

    def __init__(self, H: torch.Tensor, c: torch.Tensor):
        self.H, self.c = H, c

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        return 0.5 * theta @ self.H @ theta - self.c @ theta


class Logistic:
    """Mean logistic loss of a linear classifier, labels in {0, 1}."""

    def __init__(self, X: torch.Tensor, y: torch.Tensor):
        self.X, self.y = X, y

    def __call__(self, theta: torch.Tensor) -> torch.Tensor:
        z = self.X @ theta  # log(1 + e^z) − y·z (F.binary_cross_entropy_with_logits is slow here)
        return (F.softplus(z) - self.y * z).mean()


def rosenbrock(theta: torch.Tensor) -> torch.Tensor:
    return (1 - theta[0]) ** 2 + 100 * (theta[1] - theta[0] ** 2) ** 2


def _spd(gen, d, dtype, low=0.5, high=4.0):
    q, _ = torch.linalg.qr(randn(gen, d, d, dtype=torch.float64))
    eig = torch.linspace(low, high, d, dtype=torch.float64)
    return ((q * eig) @ q.T).to(dtype)


def _least_squares(gen, n, d, dtype=torch.float64):
    A = randn(gen, n, d, dtype=dtype)
    return LeastSquares(A, A @ randn(gen, d, dtype=dtype) + 0.3 * randn(gen, n, dtype=dtype))


def _reference_gradient_descent(loss_fn, theta0, lr, steps):
    """Full-batch gradient descent done by torch.optim.SGD on a copy of θ0."""
    theta = theta0.detach().clone().requires_grad_(True)
    optimizer = torch.optim.SGD([theta], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(theta)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return theta.detach(), losses


def _gd_cases(gen):
    quad = Quadratic(_spd(gen, 3, torch.float64), randn(gen, 3, dtype=torch.float64))
    lsq = _least_squares(gen, 40, 4)
    X = randn(gen, 60, 3, dtype=torch.float64)
    logistic = Logistic(X, (X @ randn(gen, 3, dtype=torch.float64) > 0).double())
    quad32 = Quadratic(_spd(gen, 4, torch.float32), randn(gen, 4))
    return [
        Case("quadratic in 3-D, lr=0.2, 30 steps",
             (quad, randn(gen, 3, dtype=torch.float64), 0.2, 30)),
        Case("least squares (40×4), lr=0.5/L, 50 steps",
             (lsq, randn(gen, 4, dtype=torch.float64), 0.5 / lsq.smoothness(), 50)),
        Case("logistic regression, lr=1.0, 40 steps",
             (logistic, torch.zeros(3, dtype=torch.float64), 1.0, 40)),
        Case("Rosenbrock from (-1, 1), lr=1e-3, 100 steps",
             (rosenbrock, torch.tensor([-1.0, 1.0], dtype=torch.float64), 1e-3, 100)),
        Case("quadratic, float32, lr=0.1, 20 steps", (quad32, randn(gen, 4), 0.1, 20)),
        Case("quadratic with lr above 2/L (it diverges), 15 steps",
             (quad, randn(gen, 3, dtype=torch.float64), 0.6, 15)),
        Case("steps=0", (quad, randn(gen, 3, dtype=torch.float64), 0.1, 0)),
    ]


def _gd_outputs(fn, case):
    loss_fn, theta0, lr, steps = case.args
    before = theta0.clone()
    out = fn(loss_fn, theta0, lr, steps)
    if not isinstance(out, (tuple, list)) or len(out) != 2:
        return out
    return out, bool(torch.equal(before, theta0))


def _run_gd_theta(fn, case):
    result = _gd_outputs(fn, case)
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], bool):
        return result  # not a (theta, losses) pair: compare() explains
    (theta, _), unchanged = result
    return {"theta": theta, "theta0 left unchanged": unchanged}


def _as_loss_tensor(losses, dtype):
    """Losses as a 1-D tensor of θ's dtype, whether given as a tensor or a list of numbers."""
    if isinstance(losses, torch.Tensor):
        return losses.detach().to(dtype).reshape(-1) if losses.dim() <= 1 else losses.detach()
    try:
        return torch.tensor([float(v) for v in losses], dtype=dtype)
    except (TypeError, ValueError):
        return losses


def _run_gd_losses(fn, case):
    result = _gd_outputs(fn, case)
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], bool):
        return result
    (_, losses), _ = result
    return _as_loss_tensor(losses, case.args[1].dtype)


def _gd_lstsq_cases(gen):
    out = []
    for n, d in [(50, 3), (80, 6)]:
        problem = _least_squares(gen, n, d)
        out.append(Case(f"least squares {n}×{d}, lr=1/L, 400 steps",
                        (problem, torch.zeros(d, dtype=torch.float64), 1.0 / problem.smoothness(), 400)))
    return out


def _reference_lstsq(loss_fn, theta0, lr, steps):
    """The minimum in closed form: torch.linalg.lstsq (no iterations)."""
    return torch.linalg.lstsq(loss_fn.A, loss_fn.b.unsqueeze(1)).solution.squeeze(1), None


def _run_gd_final(fn, case):
    out = fn(*case.args)
    return out[0] if isinstance(out, (tuple, list)) and len(out) == 2 else out


def _gd_ascent(loss_fn, theta0, lr, steps):
    theta, losses = theta0.detach().clone(), []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        (grad,) = torch.autograd.grad(loss, theta)
        losses.append(loss.item())
        theta = (theta + lr * grad).detach()
    return theta, losses


def _gd_accumulating(loss_fn, theta0, lr, steps):
    """The mistake: .grad is never reset, so each step uses the sum of all gradients so far."""
    theta, losses = theta0.detach().clone().requires_grad_(True), []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            theta -= lr * theta.grad
    return theta.detach(), losses


def _gd_losses_after_update(loss_fn, theta0, lr, steps):
    theta, losses = theta0.detach().clone(), []
    for _ in range(steps):
        theta.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_fn(theta), theta)
        theta = (theta - lr * grad).detach()
        losses.append(loss_fn(theta).item())
    return theta, losses


def _gd_one_loss_too_many(loss_fn, theta0, lr, steps):
    theta, losses = _reference_gradient_descent(loss_fn, theta0, lr, steps)
    return theta, [*losses, loss_fn(theta).item()]


_GD_HINTS = (
    Hint(_gd_ascent, "this matches θ + lr·∇L: that climbs the loss. Step against the gradient."),
    Hint(_gd_accumulating, "this matches gradients that accumulate: backward() adds into "
         "θ.grad, so reset it (θ.grad = None or θ.grad.zero_()) every step, or use "
         "torch.autograd.grad."),
    Hint(_gd_losses_after_update, "this matches recording the loss after each update; "
         "losses[t] is L(θ_t), the loss before update t (losses[0] = L(θ0))."),
    Hint(_gd_one_loss_too_many, "this matches recording steps + 1 losses; record exactly one "
         "loss per update, before the update."),
)

register(
    Check("gradient_descent", "theta", "returns θ after `steps` updates θ ← θ − lr·∇L(θ) "
          "and leaves θ0 unchanged", _gd_cases, _reference_gradient_descent, run=_run_gd_theta,
          hints=_GD_HINTS, points=2),
    Check("gradient_descent", "losses", "records losses[t] = L(θ_t) before each update",
          _gd_cases, _reference_gradient_descent, run=_run_gd_losses, hints=_GD_HINTS),
    Check("gradient_descent", "least_squares",
          "reaches the torch.linalg.lstsq solution of a least-squares problem",
          _gd_lstsq_cases, _reference_lstsq, run=_run_gd_final, hints=_GD_HINTS[:2]),
)

# --------------------------------------------------------------------------- minibatches
#
# Contract: one call is one epoch. perm = torch.randperm(n, generator=generator), then the
# batches are perm[0:b], perm[b:2b], ... (the last one holds what is left). Properties are graded
# separately from the exact order, so a learner who shuffles another way is told which part holds.


def _reference_minibatches(n, batch_size, generator):
    return torch.randperm(n, generator=generator).split(batch_size)


def _minibatch_cases(gen):
    sizes = [(10, 3), (12, 4), (7, 10), (1, 1), (_int(gen, 20, 200), _int(gen, 2, 32))]
    return [Case(f"n={n}, batch_size={b}", (n, b, _int(gen, 0, 2**31 - 1))) for n, b in sizes]


def _epochs(fn, case, count=2):
    """`count` epochs drawn from one generator; the global RNG is fixed too, for the hints."""
    n, batch_size, seed = case.args
    generator = torch.Generator().manual_seed(seed)
    with seeded(seed + 1):
        return [list(fn(n, batch_size, generator)) for _ in range(count)]


def _run_minibatch_properties(fn, case):
    n = case.args[0]
    epochs = _epochs(fn, case)
    out = {}
    for e, batches in enumerate(epochs, 1):
        batches = [torch.as_tensor(b) for b in batches]
        flat = torch.cat([b.reshape(-1) for b in batches]) if batches else torch.zeros(0)
        out[f"epoch {e}: batch sizes"] = [int(b.numel()) for b in batches]
        out[f"epoch {e}: every index 0..n-1 exactly once"] = bool(
            flat.numel() == n and torch.equal(flat.sort().values.long(), torch.arange(n)))
    return out


def _run_minibatch_order(fn, case):
    epochs = _epochs(fn, case)
    return {f"epoch {e}": [torch.as_tensor(b) for b in batches]
            for e, batches in enumerate(epochs, 1)}


def _minibatch_order_cases(gen):
    return [Case(f"{c.label}: expected torch.randperm(n, generator=generator) cut into "
                 "consecutive batches", c.args) for c in _minibatch_cases(gen) if c.args[0] > 1]


def _mb_with_replacement(n, batch_size, generator):
    return torch.randint(0, n, (n,), generator=generator).split(batch_size)


def _mb_drop_last(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    return [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def _mb_global_rng(n, batch_size, generator):
    return torch.randperm(n).split(batch_size)


def _mb_not_shuffled(n, batch_size, generator):
    return torch.arange(n).split(batch_size)


_MB_HINTS = (
    Hint(_mb_with_replacement, "this matches drawing indices with replacement "
         "(torch.randint): some examples repeat and others are never seen in the epoch. Shuffle "
         "a permutation instead."),
    Hint(_mb_drop_last, "this matches dropping the last, smaller batch; keep it."),
    Hint(_mb_global_rng, "this matches torch.randperm(n) without the generator; pass "
         "generator=generator so that the shuffle is reproducible."),
    Hint(_mb_not_shuffled, "the indices are not shuffled: 0, 1, 2, ... in order."),
)

register(
    Check("minibatches", "partition",
          "yields every index exactly once per epoch, in batches of batch_size (the last may "
          "be smaller)", _minibatch_cases, _reference_minibatches,
          run=_run_minibatch_properties, hints=_MB_HINTS),
    Check("minibatches", "order",
          "shuffles with torch.randperm(n, generator=generator), cut into consecutive batches",
          _minibatch_order_cases, _reference_minibatches, run=_run_minibatch_order, exact=True,
          hints=_MB_HINTS),
)

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


def _train(cls, case):
    """Returns (net, list of flat parameter vectors after each step, parameters before)."""
    seed, dtype, layout, steps = case.args
    net, X, Y = _problem(seed, dtype)
    start = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    optimizer = cls(_param_groups(net, layout, case.kwargs.get("lr", 1e-3)), **case.kwargs)
    trajectory = []
    for step in range(steps):
        rows = slice(16 * (step % 4), 16 * (step % 4) + 16)
        optimizer.zero_grad()
        F.mse_loss(net(X[rows]), Y[rows]).backward()
        optimizer.step()
        trajectory.append(torch.cat([p.detach().reshape(-1) for p in net.parameters()]))
    return net, trajectory, start


def _run_trajectory(cls, case):
    _, trajectory, _ = _train(cls, case)
    return torch.stack(trajectory)


def _run_first_update(cls, case):
    """The update made by each step, θ_t − θ_{t−1} (one row per step)."""
    _, trajectory, start = _train(cls, case)
    return torch.diff(torch.stack([start, *trajectory]), dim=0)


def _idle_history(cls, case):
    """The trajectory of `idle`, the parameter whose gradient is exactly zero."""
    seed, dtype, layout, steps = case.args
    net, X, Y = _problem(seed, dtype)
    optimizer = cls(_param_groups(net, layout, case.kwargs.get("lr", 1e-3)), **case.kwargs)
    history = []
    for step in range(steps):
        rows = slice(16 * (step % 4), 16 * (step % 4) + 16)
        optimizer.zero_grad()
        F.mse_loss(net(X[rows]), Y[rows]).backward()
        optimizer.step()
        history.append(net.idle.detach().clone())
    return torch.stack(history)


def _opt_case(gen, label, dtype=torch.float64, layout="model", steps=STEPS, **hyper):
    seed = int(torch.randint(0, 2**31 - 1, (), generator=gen))
    name = ", ".join(f"{k}={v}" for k, v in hyper.items()) or "default hyperparameters"
    return Case(f"{label}: {name}, {steps} step{'s' * (steps != 1)}", (seed, dtype, layout, steps),
                hyper)


def _rounded(x: float) -> float:
    return float(f"{x:.2g}")


class _NoUpdate(torch.optim.Optimizer):
    """The mistake: `p = p - lr * p.grad` rebinds a local name; the parameters never change."""

    def __init__(self, params, lr=1e-3, **kwargs):
        super().__init__(params, dict(lr=lr))

    def step(self, closure=None):
        pass


_NO_UPDATE = Hint(_NoUpdate, "your optimizer never changed the parameters. `p = p - ...` "
                  "only rebinds a name; update in place: p.sub_(...), p.add_(...) or p -= ... "
                  "(under torch.no_grad()).")


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

# ---- Adam and AdamW


class _AdamLike(torch.optim.Optimizer):
    """Adam written plainly, with switches for the known mistakes (used as hints)."""

    no_bias_correction = False
    bias_from_zero = False
    decoupled = False  # AdamW's decay
    decay_through_gradient = True  # Adam's L2 decay
    eps_inside_sqrt = False
    global_step = False  # one step counter shared by (and advanced for) every parameter

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
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
                elif self.decay_through_gradient:
                    g = g + wd * p
                state["m"].mul_(b1).add_((1 - b1) * g)
                state["v"].mul_(b2).add_((1 - b2) * g * g)
                if self.no_bias_correction:
                    m_hat, v_hat = state["m"], state["v"]
                else:
                    k = t - 1 if self.bias_from_zero else t
                    m_hat, v_hat = state["m"] / (1 - b1 ** k), state["v"] / (1 - b2 ** k)
                denom = (v_hat + eps).sqrt() if self.eps_inside_sqrt else v_hat.sqrt() + eps
                p.sub_(lr * m_hat / denom)


def _adam_variant(name, base=_AdamLike, default_wd=0.0, **flags):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=default_wd):
        base.__init__(self, params, lr, betas, eps, weight_decay)

    return type(name, (base,), {"__init__": __init__, **flags})


_AdamNoBias = _adam_variant("_AdamNoBias", no_bias_correction=True)
_AdamBiasFromZero = _adam_variant("_AdamBiasFromZero", bias_from_zero=True)
_AdamDecoupled = _adam_variant("_AdamDecoupled", decoupled=True)
_AdamEpsInside = _adam_variant("_AdamEpsInside", eps_inside_sqrt=True)
_AdamGlobalStep = _adam_variant("_AdamGlobalStep", global_step=True)

_AdamWThroughGradient = _adam_variant("_AdamWThroughGradient", default_wd=0.01)
_AdamWNoBias = _adam_variant("_AdamWNoBias", default_wd=0.01, decoupled=True,
                             no_bias_correction=True)
_AdamWEpsInside = _adam_variant("_AdamWEpsInside", default_wd=0.01, decoupled=True,
                                eps_inside_sqrt=True)
_AdamWGlobalStep = _adam_variant("_AdamWGlobalStep", default_wd=0.01, decoupled=True,
                                 global_step=True)


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

_ADAM_HINTS = (
    _NO_UPDATE,
    *_BIAS_HINTS,
    Hint(_AdamGlobalStep, "this matches one step counter shared by all parameters and advanced "
         "once per parameter; t counts optimizer steps: keep it per parameter (in "
         "self.state[p]) or advance it once per step()."),
    Hint(_AdamDecoupled, "this matches decoupled decay (AdamW's p ← p(1 − lr·wd)); Adam adds "
         "wd·p to the gradient before the moments."),
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


register(
    Check("Adam", "first_step", "makes the same first update as torch.optim.Adam (bias "
          "correction from step 1)", _adam_first_cases, torch.optim.Adam,
          run=_run_first_update, hints=_ADAM_HINTS),
    Check("Adam", "trajectory", "takes the same 50 steps as torch.optim.Adam",
          _adam_trajectory_cases, torch.optim.Adam, run=_run_trajectory, hints=_ADAM_HINTS, points=2),
    Check("Adam", "weight_decay", "adds weight_decay·p to the gradient, like torch.optim.Adam",
          _adam_decay_cases, torch.optim.Adam, run=_run_trajectory, hints=_ADAM_HINTS),
    Check("AdamW", "trajectory", "takes the same 50 steps as torch.optim.AdamW",
          _adamw_trajectory_cases, torch.optim.AdamW, run=_run_trajectory, hints=_ADAMW_HINTS, points=2),
    Check("AdamW", "decoupled_decay",
          "multiplies a parameter whose gradient is zero by (1 − lr·wd) every step",
          _adamw_idle_cases, torch.optim.AdamW, run=_idle_history, hints=_ADAMW_HINTS[1:]),
)

# --------------------------------------------------------------------------- optimizer memory


def _reference_state_bytes(optimizer) -> int:
    """Bytes of every tensor in the optimizer's per-parameter state (the step counters too)."""
    return sum(t.nbytes for state in optimizer.state_dict()["state"].values()
               for t in state.values() if isinstance(t, torch.Tensor))


def _stepped(gen, make, dtype=torch.float32, widths=(8, 32, 4), freeze_first=False, steps=1):
    with seeded(gen):
        model = nn.Sequential(nn.Linear(widths[0], widths[1]), nn.Tanh(),
                              nn.Linear(widths[1], widths[2])).to(dtype)
        x = torch.randn(5, widths[0], dtype=dtype)
    if freeze_first:
        model[0].requires_grad_(False)
    optimizer = make(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    return optimizer


def _state_cases(gen):
    w = (8, _int(gen, 16, 64), 4)
    return [
        Case(f"SGD(momentum=0.9), MLP {w}, float32",
             (_stepped(gen, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), widths=w),)),
        Case(f"Adam, MLP {w}, float32", (_stepped(gen, torch.optim.Adam, widths=w),)),
        Case("AdamW(amsgrad=True), float32, 3 steps",
             (_stepped(gen, lambda ps: torch.optim.AdamW(ps, amsgrad=True), steps=3),)),
        Case("RMSprop(momentum=0.9, centered=True), float32",
             (_stepped(gen, lambda ps: torch.optim.RMSprop(ps, momentum=0.9, centered=True)),)),
    ]


def _state_edge_cases(gen):
    return [
        Case("Adam before its first step (state is created lazily)",
             (_stepped(gen, torch.optim.Adam, steps=0),)),
        Case("SGD without momentum (keeps no state)",
             (_stepped(gen, lambda ps: torch.optim.SGD(ps, lr=0.1)),)),
        Case("Adam on a float64 model", (_stepped(gen, torch.optim.Adam, dtype=torch.float64),)),
        Case("Adam on a bfloat16 model", (_stepped(gen, torch.optim.Adam, dtype=torch.bfloat16),)),
        Case("Adam with the first layer frozen (no gradient, so no state)",
             (_stepped(gen, torch.optim.Adam, freeze_first=True),)),
    ]


def _state_bytes_without_step(optimizer):
    return sum(t.nbytes for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor) and t.dim() > 0)


def _state_numel(optimizer):
    return sum(t.numel() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def _state_four_bytes(optimizer):
    return sum(4 * t.numel() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def _state_parameter_bytes(optimizer):
    return sum(p.nbytes for g in optimizer.param_groups for p in g["params"])


_STATE_HINTS = (
    Hint(_state_bytes_without_step, "this matches leaving out the step counters: torch keeps "
         "state['step'] as a 0-dimensional tensor (4 bytes per parameter tensor); count every "
         "tensor in the state."),
    Hint(_state_numel, "this matches counting elements; bytes = numel() × element_size()."),
    Hint(_state_four_bytes, "this matches assuming 4 bytes per element; use each tensor's own "
         "element_size() (8 for float64, 2 for bfloat16)."),
    Hint(_state_parameter_bytes, "this matches the bytes of the parameters themselves; the "
         "optimizer's state is in optimizer.state[p], a dict of tensors per parameter."),
)


_DTYPE_OF_BYTES = {2: torch.bfloat16, 4: torch.float32, 8: torch.float64}
_OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps),
    "adamw": lambda ps: torch.optim.AdamW(ps),
}


def _reference_training_bytes(optimizer, param_bytes=4):
    """Measured: a Linear(8, 8) in the matching dtype takes one step with torch's optimizer;
    weights + gradients + per-element state, divided by the number of parameters. The step
    counters (one scalar per tensor, not per parameter) are left out."""
    dtype = _DTYPE_OF_BYTES[param_bytes]
    model = nn.Linear(8, 8).to(dtype)
    opt = _OPTIMIZERS[optimizer](model.parameters())
    model(torch.ones(2, 8, dtype=dtype)).sum().backward()
    opt.step()
    params = list(model.parameters())
    total = sum(p.nbytes + p.grad.nbytes for p in params)
    total += sum(t.nbytes for s in opt.state.values() for t in s.values()
                 if isinstance(t, torch.Tensor) and t.dim() > 0)
    n = sum(p.numel() for p in params)
    assert total % n == 0
    return total // n


def _training_cases(gen):
    return [Case(f"{name!r}, default param_bytes", (name,)) for name in _OPTIMIZERS]


def _training_precision_cases(gen):
    return [Case(f"{name!r}, param_bytes={b}", (name,), {"param_bytes": b})
            for b in (2, 8) for name in _OPTIMIZERS]


_STATE_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def _training_no_grad(optimizer, param_bytes=4):
    return param_bytes * (1 + _STATE_SLOTS[optimizer])


def _training_state_only(optimizer, param_bytes=4):
    return param_bytes * _STATE_SLOTS[optimizer]


def _training_fixed_4(optimizer, param_bytes=4):
    return 4 * (2 + _STATE_SLOTS[optimizer])


_TRAINING_HINTS = (
    Hint(_training_no_grad, "this matches weights + state without the gradients; during "
         "training every parameter also has a gradient of the same size."),
    Hint(_training_state_only, "this matches the optimizer state alone; add the weights and "
         "the gradients."),
    Hint(_training_fixed_4, "this matches 4 bytes per number whatever param_bytes is; every "
         "tensor here has param_bytes per element."),
)

register(
    Check("optimizer_state_bytes", "after_step", "counts the bytes of every state tensor of "
          "torch's optimizers after a step", _state_cases, _reference_state_bytes,
          hints=_STATE_HINTS),
    Check("optimizer_state_bytes", "edge_cases", "handles no step yet, no state, frozen "
          "layers, float64 and bfloat16", _state_edge_cases, _reference_state_bytes,
          hints=_STATE_HINTS),
    Check("training_bytes_per_param", "float32",
          "weights + gradients + state per parameter, as measured on torch's optimizers",
          _training_cases, _reference_training_bytes, hints=_TRAINING_HINTS),
    Check("training_bytes_per_param", "any_precision",
          "the same for 2- and 8-byte parameters", _training_precision_cases,
          _reference_training_bytes, hints=_TRAINING_HINTS),
)

# --------------------------------------------------------------------------- LR schedules
#
# The convention (stated in the notebook). `step` s = number of optimizer steps already taken,
# so lr(s) is the learning rate of update s (s = 0 is the first). W = warmup_steps,
# T = total_steps, C = cooldown_steps.
#   warmup, 0 ≤ s < W:   lr = max_lr·(s+1)/W          (lr(0) = max_lr/W, lr(W−1) = max_lr)
#   cosine, W ≤ s ≤ T:   lr = min_lr + (max_lr−min_lr)·(1 + cos(π(s−W)/(T−W)))/2
#   linear, W ≤ s ≤ T:   lr = max_lr + (min_lr−max_lr)·(s−W)/(T−W)
#   constant+cooldown:   lr = max_lr for W ≤ s ≤ T−C, then linear to min_lr at s = T
#   after the run, s > T: lr = min_lr
# The reference is torch.optim.lr_scheduler: LinearLR (warmup), then CosineAnnealingLR /
# LinearLR / ConstantLR+LinearLR, then ConstantLR(min_lr/max_lr), chained by SequentialLR and
# stepped on a dummy SGD optimizer; lr(s) is read from the optimizer after s scheduler steps.
# Torch's schedulers update the lr recursively in float64: measured against the closed form
# they agree to ≤ 1.1e-14 relative for T ≤ 1000. The tolerance rtol=1e-9 is far inside the
# smallest error of the mistakes graded here (≥ 1e-4 relative), and far outside rounding.

_SCHEDULE_RTOL, _SCHEDULE_ATOL = 1e-9, 1e-15


@functools.lru_cache(maxsize=64)
def _torch_schedule(kind, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps, length):
    W, T, C = warmup_steps, total_steps, cooldown_steps
    dummy = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=max_lr)
    schedulers, milestones = [], []
    if W > 0:
        schedulers.append(lr_scheduler.LinearLR(dummy, start_factor=1 / W, end_factor=1.0,
                                                total_iters=W - 1))
        milestones.append(W)
    end = min_lr / max_lr
    if kind == "cosine":
        schedulers.append(lr_scheduler.CosineAnnealingLR(dummy, T_max=T - W, eta_min=min_lr))
        milestones.append(T)
        schedulers.append(lr_scheduler.ConstantLR(dummy, factor=end, total_iters=length + 1))
    elif kind == "linear":
        schedulers.append(lr_scheduler.LinearLR(dummy, start_factor=1.0, end_factor=end,
                                                total_iters=T - W))
    elif kind == "constant_cooldown":
        schedulers.append(lr_scheduler.ConstantLR(dummy, factor=1.0, total_iters=0))
        milestones.append(T - C)
        schedulers.append(lr_scheduler.LinearLR(dummy, start_factor=1.0, end_factor=end,
                                                total_iters=C))
    else:
        raise ValueError(kind)
    schedule = (lr_scheduler.SequentialLR(dummy, schedulers, milestones=milestones)
                if len(schedulers) > 1 else schedulers[0])
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for _ in range(length):
            lrs.append(dummy.param_groups[0]["lr"])
            schedule.step()
    return tuple(lrs)


def _torch_lr(kind):
    def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
        length = max(step, total_steps) + 8
        return _torch_schedule(kind, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps,
                               length)[step]
    lr.__name__ = f"torch_lr_{kind}"
    return lr


def _schedule_case(gen, label, steps, **hyper):
    return Case(label, (tuple(steps),), hyper)


def _run_schedule(fn, case):
    (steps,) = case.args
    return {f"step {s}": fn(s, **case.kwargs) for s in steps}


def _random_schedule(gen, cooldown=False):
    W = _int(gen, 2, 30)
    T = W + _int(gen, 20, 300)
    max_lr = _rounded(_log_uniform(gen, 1e-4, 1.0))
    hyper = dict(max_lr=max_lr, min_lr=_rounded(max_lr * _uniform(gen, 0.01, 0.2)),
                 warmup_steps=W, total_steps=T)
    if cooldown:
        hyper["cooldown_steps"] = _int(gen, 1, T - W)
    return hyper


def _fixed_schedules(cooldown=False):
    extra = (lambda c: {"cooldown_steps": c}) if cooldown else (lambda c: {})
    return [
        dict(max_lr=1.0, min_lr=0.1, warmup_steps=5, total_steps=20, **extra(6)),
        dict(max_lr=3e-4, min_lr=3e-5, warmup_steps=100, total_steps=1000, **extra(200)),
        dict(max_lr=0.5, min_lr=0.0, warmup_steps=1, total_steps=10, **extra(9)),
    ]


def _hyper_label(h):
    return ", ".join(f"{k}={v}" for k, v in h.items())


def _warmup_cases(cooldown=False):
    def cases(gen):
        out = []
        for h in [*_fixed_schedules(cooldown), _random_schedule(gen, cooldown)]:
            W = h["warmup_steps"]
            out.append(_schedule_case(gen, f"{_hyper_label(h)}; steps 0..{W}", range(W + 1), **h))
        return out
    return cases


def _decay_cases(cooldown=False):
    def cases(gen):
        out = []
        schedules = [*_fixed_schedules(cooldown), _random_schedule(gen, cooldown)]
        no_warmup = dict(max_lr=0.1, min_lr=0.01, warmup_steps=0, total_steps=12)
        if cooldown:
            no_warmup["cooldown_steps"] = 4
        for h in [*schedules, no_warmup]:
            W, T = h["warmup_steps"], h["total_steps"]
            out.append(_schedule_case(gen, f"{_hyper_label(h)}; steps {W}..{T + 2}",
                                      range(W, T + 3), **h))
        return out
    return cases


def _closed_form(warmup="plus_one", decay_end=0, hold=True, use_min=True):
    """Closed-form schedules with switches for the known mistakes (used as hints)."""
    def shape(kind):
        def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
            W, T = warmup_steps, total_steps - decay_end
            floor = min_lr if use_min else 0.0
            if step < W:
                return max_lr * ((step + 1) / W if warmup == "plus_one" else step / W)
            if step > T and hold:
                return floor
            if kind == "cosine":
                return floor + (max_lr - floor) * (1 + math.cos(math.pi * (step - W) / (T - W))) / 2
            start = W if kind == "linear" else T - cooldown_steps
            if step <= start:
                return max_lr
            return max_lr + (floor - max_lr) * (step - start) / (T - start)
        return lr
    return shape


def _schedule_hints(kind):
    early = "reaches min_lr" if kind != "constant_cooldown" else "ends its cooldown"
    return (
        Hint(_closed_form(warmup="from_zero")(kind), "this matches a warmup that starts at 0, "
             "lr = max_lr·s/W. In this notebook's convention update 0 already gets max_lr/W: "
             "lr = max_lr·(s+1)/W, reaching max_lr at s = W−1."),
        Hint(_closed_form(decay_end=1)(kind), f"this matches a schedule that {early} one step "
             "early, at s = T−1; it should reach min_lr exactly at s = total_steps."),
        Hint(_closed_form(hold=False)(kind), "after total_steps the learning rate should stay "
             "at min_lr."),
        Hint(_closed_form(use_min=False)(kind), "this matches decaying to 0 instead of min_lr."),
    )


_SCHEDULE_WHAT = {
    "cosine": "linear warmup then cosine decay to min_lr at total_steps",
    "linear": "linear warmup then linear decay to min_lr at total_steps",
    "constant_cooldown": "linear warmup, constant max_lr, then a linear cooldown to min_lr "
                         "at total_steps",
}

for _kind, _name in [("cosine", "lr_warmup_cosine"), ("linear", "lr_warmup_linear"),
                     ("constant_cooldown", "lr_warmup_constant_cooldown")]:
    _cool = _kind == "constant_cooldown"
    register(
        Check(_name, "warmup", "warmup lr(s) = max_lr·(s+1)/warmup_steps, as torch's LinearLR "
              "gives (steps 0 to warmup_steps)", _warmup_cases(_cool), _torch_lr(_kind),
              run=_run_schedule, rtol=_SCHEDULE_RTOL, atol=_SCHEDULE_ATOL,
              hints=_schedule_hints(_kind)),
        Check(_name, "decay", f"{_SCHEDULE_WHAT[_kind]}, as torch.optim.lr_scheduler gives "
              "(from warmup_steps to past total_steps)", _decay_cases(_cool), _torch_lr(_kind),
              run=_run_schedule, rtol=_SCHEDULE_RTOL, atol=_SCHEDULE_ATOL,
              hints=_schedule_hints(_kind)),
    )
