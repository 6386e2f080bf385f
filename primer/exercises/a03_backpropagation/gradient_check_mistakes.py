"""gradient_check: known mistakes in the relative error, for the hints of gradient_checking.py.

Each takes the check's (f, x) and uses, like the reference, the true gradient (autograd of the
correct function f.exact) in place of the central-difference estimate.
"""

from __future__ import annotations

import torch


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
