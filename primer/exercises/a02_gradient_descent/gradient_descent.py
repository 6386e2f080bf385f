"""gradient_descent: θ after `steps` updates, the losses on the way, and the least-squares
minimum it reaches."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register

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


class _Watched:
    """loss_fn, noting whether each θ it is given carries autograd history (a grad_fn): it does
    when an earlier update θ − lr·g was recorded, and then every step's graph hangs on the last."""

    def __init__(self, loss_fn):
        self.loss_fn, self.recorded = loss_fn, False

    def __call__(self, theta):
        self.recorded |= getattr(theta, "grad_fn", None) is not None
        return self.loss_fn(theta)


_UNRECORDED = "updates not recorded by autograd (θ given to loss_fn has no grad_fn)"


def _run_gd_theta(fn, case):
    watched = _Watched(case.args[0])
    case = Case(case.label, (watched, *case.args[1:]), case.kwargs)
    result = _gd_outputs(fn, case)
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[1], bool):
        return result  # not a (theta, losses) pair: compare() explains
    (theta, _), unchanged = result
    detached = not (isinstance(theta, torch.Tensor) and theta.requires_grad)
    return {"theta": theta, "theta0 left unchanged": unchanged,
            "theta detached (requires_grad False)": detached, _UNRECORDED: not watched.recorded}


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
    # Python floats as the text asks, or one 1-D tensor without a graph (accepted too); not
    # tensors per step, which (when they require grad) keep every step's graph alive.
    floats = (isinstance(losses, torch.Tensor) and not losses.requires_grad) or (
        isinstance(losses, (list, tuple)) and all(isinstance(v, float) for v in losses))
    return {"losses": _as_loss_tensor(losses, case.args[1].dtype),
            "Python floats (not a tensor per step)": floats}


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


def _gd_in_place(loss_fn, theta0, lr, steps):
    """The mistake: θ0 itself is updated (no copy)."""
    theta, losses = _reference_gradient_descent(loss_fn, theta0, lr, steps)
    with torch.no_grad():
        theta0.copy_(theta)
    return theta0.detach(), losses


def _gd_one_step_short(loss_fn, theta0, lr, steps):
    theta, losses = _reference_gradient_descent(loss_fn, theta0, lr, max(steps - 1, 0))
    return theta, [*losses, loss_fn(theta).item()][:steps]


def _gd_not_detached(loss_fn, theta0, lr, steps):
    theta, losses = _reference_gradient_descent(loss_fn, theta0, lr, steps)
    return theta.requires_grad_(True), losses


def _gd_tensor_losses(loss_fn, theta0, lr, steps):
    theta, losses = _reference_gradient_descent(loss_fn, theta0, lr, steps)
    return theta, [torch.tensor(v, dtype=theta0.dtype) for v in losses]


def _gd_update_recorded(loss_fn, theta0, lr, steps, detach=False):
    """The mistake: θ ← θ − lr·g on a θ that requires grad, outside torch.no_grad()."""
    theta, losses = theta0.detach().clone().requires_grad_(True), []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss, theta)
        theta = theta - lr * grad
    return (theta.detach() if detach else theta), losses


def _gd_update_recorded_detached(loss_fn, theta0, lr, steps):
    """The same, detached only when returned: the values are right, the graphs still grew."""
    return _gd_update_recorded(loss_fn, theta0, lr, steps, detach=True)


_RECORDED = ("this matches an update recorded by autograd: θ − lr·g on a θ that requires grad "
             "builds a graph that every later step hangs on (it grows with the steps). Do the "
             "update under torch.no_grad() (θ -= lr·g), or on detached tensors "
             "(θ = (θ − lr·g).detach()), so that each step starts from a θ without history.")

_GD_HINTS = (
    Hint(_gd_ascent, "this matches θ + lr·∇L: that climbs the loss. Step against the gradient."),
    Hint(_gd_accumulating, "this matches gradients that accumulate: backward() adds into "
         "θ.grad, so reset it (θ.grad = None or θ.grad.zero_()) every step, or use "
         "torch.autograd.grad."),
    Hint(_gd_losses_after_update, "this matches recording the loss after each update; "
         "losses[t] is L(θ_t), the loss before update t (losses[0] = L(θ0))."),
    Hint(_gd_one_loss_too_many, "this matches recording steps + 1 losses; record exactly one "
         "loss per update, before the update."),
    Hint(_gd_in_place, "this matches updating theta0 itself: the caller's tensor changed. "
         "Start from a copy, theta = theta0.detach().clone(), and update that."),
    Hint(_gd_one_step_short, "this matches one update too few (steps − 1); make exactly "
         "`steps` updates, e.g. `for _ in range(steps):`."),
    Hint(_gd_not_detached, "this matches returning θ that still requires grad; return "
         "theta.detach()."),
    Hint(_gd_update_recorded, _RECORDED),
    Hint(_gd_update_recorded_detached, _RECORDED),
    Hint(_gd_tensor_losses, "this matches losses kept as tensors; append loss.item(), a Python "
         "float (a tensor that requires grad also keeps its whole graph alive)."),
)

register(
    Check("gradient_descent", "theta", "returns θ after `steps` updates θ ← θ − lr·∇L(θ), "
          "not recorded by autograd, and leaves θ0 unchanged", _gd_cases,
          _reference_gradient_descent, run=_run_gd_theta, hints=_GD_HINTS, points=2),
    Check("gradient_descent", "losses", "records losses[t] = L(θ_t) before each update",
          _gd_cases, _reference_gradient_descent, run=_run_gd_losses, hints=_GD_HINTS),
    Check("gradient_descent", "least_squares",
          "reaches the torch.linalg.lstsq solution of a least-squares problem",
          _gd_lstsq_cases, _reference_lstsq, run=_run_gd_final, hints=_GD_HINTS[:2]),
)
