"""numerical_gradient and gradient_check: central differences, and the relative error they check."""

from __future__ import annotations

import math

import torch

from primer.exercises._common import randn
from primer.exercises.a03_backpropagation.gradient_check_mistakes import (
    GRADCHECK_HINTS,
    INPUT_HINTS,
    NUMGRAD_HINTS,
    _central,
    _gradcheck_no_floor,
    _gradcheck_norms,
    _gradcheck_over_analytic,
    _gradcheck_over_numeric,
    _gradcheck_sum_denominator,
)
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

# --------------------------------------------------------------------------- numerical_gradient

# Smooth test functions of a float64 tensor. |f| stays below ~10 and curvature is not small, so
# central differences with eps=1e-6 are within ~1e-9 of the true gradient while forward
# differences are off by ~eps·f''/2 ≈ 1e-6.


class _Fn:
    """A scalar function of a tensor, with a name for messages and, for gradient_check, the
    correct function whose autograd gradient is the true gradient."""

    def __init__(self, name, fn, exact=None, float64=False):
        self.name, self.fn, self.exact, self.float64 = name, fn, exact or fn, float64

    def __call__(self, x):
        if self.float64 and x.dtype != torch.float64:  # gradient_check's: float64 only
            raise TypeError(f"f was called with a {str(x.dtype)[6:]} tensor; gradient checks "
                            "run in float64, x's dtype")
        return self.fn(x)

    def __repr__(self):
        return self.name

    def __deepcopy__(self, memo):
        return self


def _smooth_functions(gen, shape):
    n = math.prod(shape)
    A = randn(gen, n, n, dtype=torch.float64, scale=0.5)
    v = randn(gen, n, dtype=torch.float64)
    return [
        _Fn("f(x) = sum(x**3) / 3", lambda x: (x ** 3).sum() / 3),
        _Fn("f(x) = logsumexp(2x)", lambda x: torch.logsumexp(2 * x.reshape(-1), 0)),
        _Fn("f(x) = v · tanh(A x)", lambda x: v @ torch.tanh(A @ x.reshape(-1))),
        _Fn("f(x) = sum(sin(x) · x)", lambda x: (x.sin() * x).sum()),
    ]


def _away_from_zero(gen, *shape):
    """Values with 0.4 ≤ |x| ≤ 1.4, so that no gradient entry is tiny."""
    magnitude = 0.4 + torch.rand(*shape, generator=gen, dtype=torch.float64)
    sign = torch.randint(0, 2, shape, generator=gen).to(torch.float64) * 2 - 1
    return magnitude * sign


def _numgrad_value_cases(gen):
    out = []
    for f in _smooth_functions(gen, (6,)):
        out.append(Case(f"{f}, x of shape (6,)", (f, _away_from_zero(gen, 6))))
    f = _smooth_functions(gen, (4,))[0]
    out.append(Case(f"{f}, x of shape (4,), eps=1e-5", (f, _away_from_zero(gen, 4)), {"eps": 1e-5}))
    return out


def _numgrad_shape_cases(gen):
    out = []
    for shape in [(3, 4), (2, 3, 2), (1,)]:
        for f in _smooth_functions(gen, shape)[1:3]:
            out.append(Case(f"{f}, x of shape {shape}", (f, _away_from_zero(gen, *shape))))
    # a function that needs x in its own shape (a logsumexp over the first dimension): calling f
    # on a flattened x gives another function
    f = _Fn("f(x) = sum(logsumexp(2x, dim=0))", lambda x: torch.logsumexp(2 * x, 0).sum())
    out.append(Case(f"{f}, x of shape (3, 4)", (f, _away_from_zero(gen, 3, 4))))
    return out


def _reference_numerical_gradient(f, x, eps=1e-6):
    """The exact gradient, by torch.autograd (what central differences approximate)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x)
    return grad


def _run_input_unchanged(fn, case):
    """x after the call (compared bitwise with x before it)."""
    f, x = case.args
    fn(f, x, **case.kwargs)
    return x


def _reference_input_unchanged(f, x, eps=1e-6):
    return x


def _numgrad_forward(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    fx = float(f(x))
    for i in range(x.numel()):
        e = torch.zeros_like(x).reshape(-1)
        e[i] = eps
        g.view(-1)[i] = (float(f(x + e.view_as(x))) - fx) / eps
    return g


def _numgrad_in_place(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(x.numel()):
        flat[i] += eps
        plus = float(f(x))
        flat[i] -= 2 * eps
        minus = float(f(x))
        flat[i] += eps
        g.view(-1)[i] = (plus - minus) / (2 * eps)
    return g


def _numgrad_over_eps(f, x, eps=1e-6):
    return 2 * _reference_numerical_gradient(f, x, eps)


def _numgrad_all_at_once(f, x, eps=1e-6):
    return torch.full_like(x, float((f(x + eps) - f(x - eps)) / (2 * eps)))


def _numgrad_flat(f, x, eps=1e-6):
    return _reference_numerical_gradient(f, x, eps).reshape(-1)


def _numgrad_flat_f(f, x, eps=1e-6):
    flat = x.detach().reshape(-1).clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(flat), flat)
    return grad.view_as(x)


def _numgrad_eps_ignored(f, x, eps=1e-6):
    return _central(f, x, 1e-3)


def _numgrad_float32(f, x, eps=1e-6):
    return _reference_numerical_gradient(f, x, eps).float()


def _numgrad_first_index(f, x, eps=1e-6):
    """Perturbing x[i] (a whole slice when x has several dimensions) for i < x.shape[0]."""
    grad = _reference_numerical_gradient(f, x, eps)
    sums = grad.reshape(x.shape[0], -1).sum(1)
    return sums.reshape(-1, *[1] * (x.dim() - 1)).expand_as(x).clone()


_NUMGRAD_HINTS = (
    Hint(_numgrad_forward, "this matches forward differences (f(x+eps) - f(x)) / eps, whose "
         "error is about eps·f''/2. Central differences (f(x+eps) - f(x-eps)) / (2·eps) are "
         "accurate to about eps²."),
    Hint(_numgrad_over_eps, "this matches twice the gradient: (f(x+eps) - f(x-eps)) / eps. The "
         "two points are 2·eps apart, so divide by 2·eps."),
    Hint(_numgrad_all_at_once, "this matches perturbing every entry at once (f(x + eps) with a "
         "number eps): that is a derivative along the all-ones direction, the same number in "
         "every entry. Perturb one entry at a time, x + eps·e_i."),
    Hint(_numgrad_flat, "this matches a flat gradient: return a tensor of x's shape "
         "(grad.view_as(x) or grad.reshape(x.shape))."),
    Hint(_numgrad_eps_ignored, "this matches a step of 1e-3 whatever eps is: use the eps "
         "argument (its default is 1e-6)."),
    Hint(_numgrad_float32, "this matches a float32 result; return x's dtype (float64), e.g. "
         "torch.zeros_like(x) for the gradient: in float32 the estimate is too coarse."),
    Hint(_numgrad_first_index, "this matches perturbing x[i] for i < x.shape[0]: when x has "
         "several dimensions x[i] is a whole slice. Loop over all x.numel() entries of a flat "
         "view, copy.view(-1)[i]."),
    *NUMGRAD_HINTS,
    Hint(_numgrad_flat_f, "this matches calling f on the flattened x: f takes a tensor shaped "
         "like x. Perturb a flat view of a copy (copy.view(-1)[i]) and call f on the copy "
         "itself."),
)

register(
    Check("numerical_gradient", "values",
          "approximates torch.autograd.grad by central differences",
          _numgrad_value_cases, _reference_numerical_gradient, hints=_NUMGRAD_HINTS, points=2),
    Check("numerical_gradient", "any_shape", "works for x of any shape, same shape out",
          _numgrad_shape_cases, _reference_numerical_gradient, hints=_NUMGRAD_HINTS),
    Check("numerical_gradient", "input_unchanged", "leaves x exactly as it was",
          _numgrad_shape_cases, _reference_input_unchanged, run=_run_input_unchanged, exact=True,
          hints=(Hint(_numgrad_in_place, "this matches perturbing x itself by += eps, -= 2·eps, "
                      "+= eps: your function changed x, because adding and subtracting eps "
                      "leaves a rounding error. Work on a copy (x.clone()) and put back each "
                      "entry's saved value."),)),
)

# --------------------------------------------------------------------------- gradient_check


class _CubeWrong(torch.autograd.Function):
    """x³ with the derivative written as 2x² (should be 3x²)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x ** 2


class _TanhWrong(torch.autograd.Function):
    """tanh with the derivative written as 1 + tanh² (should be 1 - tanh²)."""

    @staticmethod
    def forward(ctx, x):
        t = torch.tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (1 + t * t)


class _MeanSquareMissingN(torch.autograd.Function):
    """mean(x²) whose backward forgets the 1/N."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).mean()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x


class _SquareLastEntryDropped(torch.autograd.Function):
    """x² elementwise whose backward forgets the last entry's gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        grad = g * 2 * x
        grad.view(-1)[-1] = 0.0
        return grad


def _F64(*args):  # gradient_check's functions refuse any dtype but float64, and say so
    return _Fn(*args, float64=True)


def _gradcheck_buggy_cases(gen):
    w = _away_from_zero(gen, 5)
    return [
        Case("x³ with backward 2x²",
             (_F64("sum(x³), backward 2x²", lambda x: _CubeWrong.apply(x).sum(),
                  lambda x: (x ** 3).sum()), _away_from_zero(gen, 5))),
        Case("w · tanh(x) with backward 1 + tanh²",
             (_F64("w · tanh(x), backward 1 + tanh²", lambda x: w @ _TanhWrong.apply(x),
                  lambda x: w @ torch.tanh(x)), _away_from_zero(gen, 5))),
        Case("mean(x²) with backward 2x (1/N missing)",
             (_F64("mean(x²), backward 2x", lambda x: _MeanSquareMissingN.apply(x),
                  lambda x: (x * x).mean()), _away_from_zero(gen, 3, 4))),
        Case("sum(x²) whose backward drops the last entry",
             (_F64("sum(x²), last entry dropped", lambda x: _SquareLastEntryDropped.apply(x).sum(),
                  lambda x: (x * x).sum()), _away_from_zero(gen, 8))),
    ]


def _gradcheck_correct_cases(gen):
    """Correct gradients. The functions act entry by entry and every gradient entry has
    magnitude ≥ 0.1 while |f| ≤ 15, so the rounding noise of central differences (about
    1e-10·|f| / |gradient entry|) stays far below the 1e-7 tolerance."""
    w = _away_from_zero(gen, 6)
    functions = [
        _F64("f(x) = sum(x**3) / 3", lambda x: (x ** 3).sum() / 3),
        _F64("f(x) = sum(sin(x) · x)", lambda x: (x.sin() * x).sum()),
        _F64("f(x) = sum(exp(x)) / 2", lambda x: x.exp().sum() / 2),
        _F64("f(x) = w · tanh(x)", lambda x: (w.view_as(x) * torch.tanh(x)).sum()),
    ]
    out = [Case(f"{f} (a correct gradient), x of shape {shape}", (f, _away_from_zero(gen, *shape)))
           for f in functions for shape in [(6,), (2, 3)]]
    # Gradient entries that are exactly 0 for both: x = 0 in sum(x²)/2, and entries f ignores.
    # Central differences give exactly 0 there too, so the relative error is 0/1e-12 = 0.
    x = _away_from_zero(gen, 6)
    x[1] = x[4] = 0.0
    f = _F64("f(x) = sum(x²) / 2", lambda x: (x * x).sum() / 2)
    out.append(Case(f"{f} (a correct gradient) at x = {[round(v, 3) for v in x.tolist()]} "
                    "(entries 1 and 4 of the gradient are 0)", (f, x)))
    c = torch.tensor([1.5, 0.0, -0.7, 0.0, 2.0], dtype=torch.float64)
    f = _F64("f(x) = c · sin(x), c = [1.5, 0, -0.7, 0, 2]", lambda x: c @ torch.sin(x))
    out.append(Case(f"{f} (a correct gradient; entries 1 and 3 are 0)", (f, _away_from_zero(gen, 5))))
    return out


def _relative_error(a, n):
    return float(((a - n).abs() / torch.maximum(torch.maximum(a.abs(), n.abs()),
                                                 torch.tensor(1e-12, dtype=a.dtype))).max())


def _reference_gradient_check(f, x):
    """max_i |a_i - n_i| / max(|a_i|, |n_i|, 1e-12), with n the *true* gradient (derivation:
    autograd of the correct function) in place of its central-difference estimate."""
    x1 = x.detach().clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (true,) = torch.autograd.grad(f.exact(x2), x2)
    return _relative_error(analytic, true)


def _gradcheck_absolute(f, x):
    x1 = x.detach().clone().requires_grad_(True)
    (a,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (n,) = torch.autograd.grad(f.exact(x2), x2)
    return float((a - n).abs().max())


def _run_python_float(fn, case):
    out = fn(*case.args, **case.kwargs)
    if isinstance(out, float) or out is None:
        return out
    return f"a {type(out).__module__}.{type(out).__name__}, not a Python float"


def _gradcheck_tensor(f, x):
    return torch.tensor(_reference_gradient_check(f, x), dtype=torch.float64)


def _gradcheck_mean(f, x):
    x1 = x.detach().clone().requires_grad_(True)
    (a,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (n,) = torch.autograd.grad(f.exact(x2), x2)
    return float(((a - n).abs() / torch.maximum(a.abs(), n.abs())).mean())


def _run_x_after(fn, case):
    """The caller's x after the call: its values, whether it requires grad, and its grad."""
    f, x = case.args
    fn(f, x)
    return {"x": x.detach().clone(), "x.requires_grad": bool(x.requires_grad),
            "x.grad": "None" if x.grad is None else "a tensor"}


register(
    Check("gradient_check", "finds_bugs",
          "reports the largest relative error of a wrong backward",
          _gradcheck_buggy_cases, _reference_gradient_check,
          hints=(Hint(_gradcheck_absolute, "this matches the largest *absolute* error "
                      "|a - n|; divide each entry by max(|a|, |n|, 1e-12)."),
                 Hint(_gradcheck_mean, "this matches the *mean* relative error; return the "
                      "largest one (one wrong entry is enough to make a gradient wrong)."),
                 Hint(_gradcheck_sum_denominator, "this matches dividing by |a| + |n| (the "
                      "relative error of some course notes, half of ours when a and n differ "
                      "a lot); this notebook divides by max(|a|, |n|, 1e-12)."),
                 Hint(_gradcheck_over_analytic, "this matches dividing by |a| alone; divide "
                      "by max(|a|, |n|, 1e-12), so that an analytic entry of 0 gives 1, not "
                      "1e12 times the error."),
                 Hint(_gradcheck_over_numeric, "this matches dividing by |n| alone; divide by "
                      "max(|a|, |n|, 1e-12)."),
                 Hint(_gradcheck_norms, "this matches a ratio of norms, |a - n| / max(|a|, "
                      "|n|) over whole vectors; the error is per entry, and the largest one is "
                      "returned."), *GRADCHECK_HINTS), points=2),
    Check("gradient_check", "correct_is_tiny",
          "reports ≈ 0 (below 1e-7, a Python float) for a correct gradient, zero entries too",
          _gradcheck_correct_cases, _reference_gradient_check, run=_run_python_float,
          hints=(Hint(_gradcheck_tensor, "this matches returning a tensor; return a Python "
                      "float (float(error) or error.item())."),
                 Hint(_gradcheck_no_floor, "this matches dividing by max(|a|, |n|) without the "
                      "1e-12: where both gradient entries are 0 that is 0/0 = nan. Use "
                      "max(|a|, |n|, 1e-12)."), *GRADCHECK_HINTS)),
    Check("gradient_check", "input_unchanged", "leaves the caller's x as it was (no requires_grad, "
          "no grad)", _gradcheck_correct_cases, _reference_input_unchanged, run=_run_x_after,
          hints=INPUT_HINTS),
)

# "Don't use autograd here" (numerical_gradient's instructions).
forbid("numerical_gradient", "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward")
