"""numerical_gradient and gradient_check: known mistakes, for the hints of gradient_checking.py.

The relative error's mistakes take the check's (f, x) and use, like the reference, the true
gradient (autograd of the correct function f.exact) in place of the central-difference estimate.
"""

from __future__ import annotations

import torch

from primer.grading import Hint


def _gradient_pair(f, x):
    x1 = x.detach().clone().requires_grad_(True)
    (a,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (n,) = torch.autograd.grad(f.exact(x2), x2)
    return a, n


def _gradcheck_no_floor(f, x):
    a, n = _gradient_pair(f, x)
    return float(((a - n).abs() / torch.maximum(a.abs(), n.abs())).max())


def _gradcheck_sum_denominator(f, x):
    a, n = _gradient_pair(f, x)
    return float(((a - n).abs() / (a.abs() + n.abs()).clamp_min(1e-12)).max())


def _gradcheck_over_analytic(f, x):
    a, n = _gradient_pair(f, x)
    return float(((a - n).abs() / a.abs().clamp_min(1e-12)).max())


def _gradcheck_over_numeric(f, x):
    a, n = _gradient_pair(f, x)
    return float(((a - n).abs() / n.abs().clamp_min(1e-12)).max())


def _gradcheck_norms(f, x):
    a, n = _gradient_pair(f, x)
    return float((a - n).norm() / max(float(a.norm()), float(n.norm()), 1e-12))


def _central(f, x, eps):
    """Central differences on a copy (the right way, with a step that may be wrong)."""
    copy, g = x.detach().clone(), torch.zeros_like(x)
    flat = copy.view(-1)
    for i in range(x.numel()):
        saved = flat[i].item()
        flat[i] = saved + eps
        plus = float(f(copy))
        flat[i] = saved - eps
        minus = float(f(copy))
        flat[i] = saved
        g.view(-1)[i] = (plus - minus) / (2 * eps)
    return g


def _gradcheck_step(eps):
    def gradient_check(f, x):
        x1 = x.detach().clone().requires_grad_(True)
        (a,) = torch.autograd.grad(f(x1), x1)
        n = _central(f, x, eps)
        return float(((a - n).abs() / torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)).max())
    return gradient_check


def _gradcheck_float32(f, x):
    x32 = x.detach().float().requires_grad_(True)
    (a,) = torch.autograd.grad(f(x32), x32)  # the case's f refuses a float32 x
    return float(a.max())


def _gradcheck_caller_requires_grad(f, x):
    x.requires_grad_(True)
    (a,) = torch.autograd.grad(f(x), x)
    return float(a.max())


_STEP = ("this matches a step much larger than 1e-6 (eps = 1e-2 or 1e-3) in the numerical "
         "gradient: its truncation error, about eps²·f'''/6, then shows in the relative error. "
         "Use numerical_gradient's default eps = 1e-6.")
GRADCHECK_HINTS = (
    *(Hint(_gradcheck_step(eps), _STEP) for eps in (1e-2, 1e-3)),
    Hint(_gradcheck_float32, "this matches converting x to float32 (x.float()): in float32 central "
         "differences are mostly rounding error. Keep x's dtype, float64, for both gradients."),
)
INPUT_HINTS = (
    Hint(_gradcheck_caller_requires_grad, "this matches calling x.requires_grad_(True) on the "
         "caller's x: gradient_check must not change its argument. Differentiate a copy, "
         "xr = x.detach().clone().requires_grad_(True)."),
)


# --------------------------------------------------------------------------- numerical_gradient


def _numgrad_never_restored(f, x, eps=1e-6):
    g, flat = torch.zeros_like(x), x.view(-1)
    for i in range(x.numel()):
        flat[i] += eps
        plus = float(f(x))
        flat[i] -= 2 * eps
        minus = float(f(x))  # entry i is left at x_i - eps
        g.view(-1)[i] = (plus - minus) / (2 * eps)
    return g


def _numgrad_minus_at_x(f, x, eps=1e-6):
    copy, g = x.clone(), torch.zeros_like(x)
    flat = copy.view(-1)
    for i in range(x.numel()):
        saved = flat[i].item()
        flat[i] = saved + eps
        plus = float(f(copy))
        flat[i] = saved
        g.view(-1)[i] = (plus - float(f(copy))) / (2 * eps)
    return g


NUMGRAD_HINTS = (
    Hint(_numgrad_never_restored, "this matches perturbing x itself and never putting the "
         "entries back: each entry stays at x_i - eps, so the later entries are differentiated "
         "at a shifted point (and your function changes x). Work on a copy (x.clone()) and "
         "restore each entry's saved value after its two calls."),
    Hint(_numgrad_minus_at_x, "this matches (f(x + eps) - f(x)) / (2·eps): the second call "
         "saw x itself, not x - eps, which gives half a forward difference. Set the entry to "
         "saved - eps before calling f the second time."),
)
