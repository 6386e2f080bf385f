"""Assignment 04: LinearFunction (forward, backward, gradcheck) and Linear (the module, and the
statistics that check its initialization)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import randn, seed_from, seeded
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

from .harness import (
    _GRADCHECK_MESSAGE,
    _gradcheck_verdict,
    _leaf,
    _module_run,
    _returned_shapes,
    _WrongBackward,
)
from .linear_mistakes import (
    _LinearBiasDimZero,
    _LinearBiasMean,
    _LinearBiasNotSummed,
    _LinearFlatOutput,
    _LinearForgetsBias,
    _LinearGradInputTransposed,
    _LinearGradWeightTransposed,
    _LinearNoBiasGrad,
    _LinearNoGradForMissingBias,
    _LinearTransposedForward,
    _LinearTwoGradients,
    _LinearWeightFirstIndex,
    _LinearWeightMean,
    _LinearWeightPerRow,
)

# --------------------------------------------------------------------------- LinearFunction


class _TorchLinearFunction:
    """The reference for LinearFunction: F.linear, differentiated by autograd."""

    @staticmethod
    def apply(x, weight, bias=None):
        return F.linear(x, weight, bias)


def _linear_case_list(gen, shapes, dtype=torch.float32):
    out = []
    for batch, d_in, d_out, bias in shapes:
        x = randn(gen, *batch, d_in, dtype=dtype)
        w = randn(gen, d_out, d_in, dtype=dtype, scale=1 / math.sqrt(d_in))
        b = randn(gen, d_out, dtype=dtype) if bias else None
        g = randn(gen, *batch, d_out, dtype=dtype)
        label = f"x {tuple(x.shape)}, weight {tuple(w.shape)}, {'with' if bias else 'no'} bias"
        out.append(Case(label, (x, w, b, g)))
    return out


def _linear_cases(gen):
    # Matrices (N, in) only: inputs with leading dimensions are the leading_dims check, so that a
    # layer written for matrices only fails that check alone. The first case is square (in = out)
    # so that a transposed weight gives wrong values (and the hint can name it), not a shape error.
    return _linear_case_list(gen, [((6,), 5, 5, True), ((5,), 3, 4, True), ((7,), 6, 5, True),
                                   ((4,), 8, 4, False)])


def _leading_dims_cases(gen):
    return _linear_case_list(gen, [((2, 7), 6, 5, True), ((2, 3, 2), 8, 4, False),
                                   ((3, 1), 4, 3, True)])


def _gradcheck_linear_cases(gen):
    out = []
    for batch, d_in, d_out, bias in [((4,), 3, 2, True), ((5,), 4, 3, True), ((3,), 2, 4, False)]:
        x = randn(gen, *batch, d_in, dtype=torch.float64)
        w = randn(gen, d_out, d_in, dtype=torch.float64)
        b = randn(gen, d_out, dtype=torch.float64) if bias else None
        out.append(Case(f"float64 x {tuple(x.shape)}, weight {tuple(w.shape)}, "
                        f"{'with' if bias else 'no'} bias", (x, w, b)))
    return out


def _run_linear_forward(fn, case):
    x, w, b, _ = case.args
    return fn.apply(x, w, b)


def _run_linear_backward(fn, case):
    x, w, b, g = case.args
    x, w, b = _leaf(x), _leaf(w), _leaf(b)
    y = fn.apply(x, w, b)
    shapes = _returned_shapes(y, g, {"grad_x": x, "grad_weight": w, "grad_bias": b})
    y.backward(g)
    out = {"grad input": x.grad, "grad weight": w.grad}
    if b is not None:
        out["grad bias"] = b.grad
    out["shapes your backward returns"] = shapes
    return out


def _run_linear_leading_dims(fn, case):
    """Output, gradients, and the shapes the backward itself returns, for x of shape (..., in).
    An output of the wrong shape stops there (the gradients are reported as not computed), so
    that the failure, and a hint, are about the output."""
    x, w, b, g = case.args
    x, w, b = _leaf(x), _leaf(w), _leaf(b)
    y = fn.apply(x, w, b)
    keys = ["grad input", "grad weight"] + (["grad bias"] if b is not None else [])
    keys.append("shapes your backward returns")
    if not isinstance(y, torch.Tensor) or tuple(y.shape) != tuple(g.shape):
        return {"output": y} | {k: "not computed: the output has the wrong shape" for k in keys}
    shapes = _returned_shapes(y, g, {"grad_x": x, "grad_weight": w, "grad_bias": b})
    y.backward(g)
    out = {"output": y, "grad input": x.grad, "grad weight": w.grad}
    if b is not None:
        out["grad bias"] = b.grad
    out["shapes your backward returns"] = shapes
    return out


def _run_linear_gradcheck(fn, case):
    return _gradcheck_verdict(fn.apply, tuple(_leaf(t) for t in case.args))


_LINEAR_FORWARD_HINTS = (
    Hint(_LinearTransposedForward, "this matches x @ W: with W of shape (out, in), the layer "
         "computes x @ W.T (each output is a row of W dotted with x)."),
    Hint(_LinearForgetsBias, "this matches leaving out the bias: add b to every output row."),
)
_LINEAR_BACKWARD_HINTS = (
    Hint(_LinearNoBiasGrad, "this matches a missing bias gradient (None): dL/db is the upstream "
         "gradient summed over every batch dimension."),
    Hint(_LinearGradWeightTransposed, "this matches a transposed weight gradient: dL/dW has W's "
         "shape (out, in) and is gᵀx (g flattened to (N, out), x to (N, in))."),
    Hint(_LinearGradInputTransposed, "this matches g @ Wᵀ for the input gradient: y = xWᵀ, so "
         "dL/dx = g @ W."),
    Hint(_LinearBiasMean, "this matches the mean of the upstream gradient for dL/db; the chain "
         "rule sums over the rows: dL/db = Σₙ gₙ."),
    Hint(_LinearBiasDimZero, "autograd summed it for you, but your backward sums the bias "
         "gradient over dim 0 only: for x of shape (B, T, in) that leaves (T, out). Sum over every "
         "leading dimension (flatten g to (N, out) first), so dL/db has b's shape (out,)."),
    Hint(_LinearBiasNotSummed, "autograd summed it for you, but your backward returns the "
         "upstream gradient itself as dL/db: sum it over every leading dimension, so it has b's "
         "shape (out,)."),
    Hint(_LinearWeightPerRow, "autograd summed it for you, but your backward returns one weight "
         "gradient per batch element (g.mT @ x keeps the leading dimensions): flatten g and x to "
         "(N, out) and (N, in) first, so gᵀx has W's shape (out, in)."),
    Hint(_LinearWeightMean, "this matches dividing the weight gradient by the number of rows N: "
         "the chain rule sums over the rows, dL/dW = gᵀx with no 1/N."),
    Hint(_LinearWeightFirstIndex, "this matches the weight gradient of the first leading index "
         "only (g[0]ᵀ x[0]): every position contributes, so flatten g to (N, out) and x to "
         "(N, in) and take gᵀx over all N rows."),
    Hint(_LinearNoGradForMissingBias, "this matches returning a zero tensor as the bias gradient "
         "when bias is None: an input that is None gets the gradient None."),
    Hint(_LinearTwoGradients, "this matches a backward that returns two gradients: it returns "
         "one per input of forward, here three (grad_x, grad_weight, grad_bias), None for a "
         "bias that is None."),
)

_LEADING_DIMS_HINTS = _LINEAR_BACKWARD_HINTS + (
    Hint(_LinearFlatOutput, "this matches an output of shape (N, out) for x of shape (..., in): "
         "after flattening x to (N, in), reshape the result back to (*x.shape[:-1], out)."),
)

register(
    Check("LinearFunction", "forward", "forward matches F.linear for inputs of shape (N, in)",
          _linear_cases, _TorchLinearFunction, run=_run_linear_forward,
          hints=_LINEAR_FORWARD_HINTS, single_threaded=True),
    Check("LinearFunction", "backward",
          "backward gives the input, weight and bias gradients autograd gives for F.linear, each "
          "of its input's shape",
          _linear_cases, _TorchLinearFunction, run=_run_linear_backward,
          hints=_LINEAR_BACKWARD_HINTS, points=2, single_threaded=True),
    Check("LinearFunction", "leading_dims",
          "inputs of shape (..., in): output (..., out), gradients summed over every leading "
          "dimension and returned in their inputs' shapes",
          _leading_dims_cases, _TorchLinearFunction, run=_run_linear_leading_dims,
          hints=_LEADING_DIMS_HINTS, single_threaded=True),
    Check("LinearFunction", "gradcheck",
          "forward and backward agree with finite differences (torch.autograd.gradcheck, float64)",
          _gradcheck_linear_cases, _TorchLinearFunction, run=_run_linear_gradcheck,
          hints=(Hint(_WrongBackward(_TorchLinearFunction), _GRADCHECK_MESSAGE),), single_threaded=True),
)

# --------------------------------------------------------------------------- Linear (module)


def _linear_module_cases(gen):
    out = []
    for batch, d_in, d_out, bias in [((4,), 6, 6, True), ((3, 5), 8, 3, True), ((7,), 4, 9, False)]:
        x = randn(gen, *batch, d_in)
        w = randn(gen, d_out, d_in, scale=1 / math.sqrt(d_in))
        tensors = {"weight": w} | ({"bias": randn(gen, d_out)} if bias else {})
        g = randn(gen, *batch, d_out)
        out.append(Case(f"Linear({d_in}, {d_out}, bias={bias}), x {tuple(x.shape)}",
                        ((d_in, d_out), tensors, x, g), {"bias": bias}))
    return out


# Statistical check of the initialization. Each criterion is derived so that U(-k, k) passes with
# probability > 1 - 1e-11 and, the cases being seeded, the verdict is deterministic per seed.
# With n values drawn from U(-c, c):
# - none exceeds c;
# - P(max < c(1 - d)) = (1 - d/2)^n, so with d = 2(1 - p^(1/n)), p = 1e-12, max ≥ c(1 - d) and
#   likewise min ≤ -c(1 - d) (a narrower bound, or values on one side only, fail);
# - mean(w²) estimates c²/3 with relative standard deviation sqrt(4/45 / n) · 3 = sqrt(0.8 / n):
#   7 standard deviations is the "uniform" criterion (a normal distribution of any width gives
#   mean(w²) / (max|w|²/3) ≈ 0.2, far outside for the sizes used here);
# - the mean has standard deviation c / sqrt(3n): 7 of them is the "centered" criterion.
_UNIFORM_OK = "uniform on [-k, k] with k = 1/√in_features"


def _uniform_verdict(t: torch.Tensor, in_features: int) -> str:
    t = t.detach().double().reshape(-1)
    n, k = t.numel(), 1 / math.sqrt(in_features)
    if not torch.isfinite(t).all():
        return "not finite"
    if (t == 0).all():
        return "all zero"
    if (t == t[0]).all():
        return "constant"
    reach = 1 - 2 * (1 - 1e-12 ** (1 / n))
    c = t.abs().max().item()
    if abs(t.mean().item()) > 7 * c / math.sqrt(3 * n):
        return "not centered at 0"
    if abs((t.pow(2).mean().item()) / (c * c / 3) - 1) > 7 * math.sqrt(0.8 / n):
        return "not uniform (values bunch up near 0, like a normal distribution)"
    if c > k * (1 + 1e-6):
        return "uniform, but wider than [-k, k], k = 1/√in_features"
    if t.max().item() < k * reach or t.min().item() > -k * reach:
        return "uniform, but narrower than [-k, k], k = 1/√in_features"
    return _UNIFORM_OK


def _linear_init_cases(gen):
    # Sizes large enough for the statistics above to be sharp: ≥ 256 values for a bias vector,
    # ≥ 16k for a weight. The first case has in > out, so that bounds from out_features (or
    # Xavier's) are wider than 1/√in and bounds from 1/in are narrower: they fail differently.
    # The weight and the bias are separate cases, so that a hint can name a mistake in one of
    # them whatever the other does.
    out = []
    for d_in, d_out, bias in [(512, 256, True), (64, 512, True), (1024, 32, False)]:
        seed = seed_from(gen)
        for part in ("weight", "bias") if bias else ("weight",):
            out.append(Case(f"{part} of Linear({d_in}, {d_out}, bias={bias})",
                            (d_in, d_out, seed, part), {"bias": bias}))
    return out


def _run_linear_init(cls, case):
    d_in, d_out, seed, part = case.args
    with seeded(seed):
        layer = cls(d_in, d_out, **case.kwargs)
    out = {"parameters (name: shape)": {n: tuple(p.shape) for n, p in layer.named_parameters()}}
    out[part] = _uniform_verdict(getattr(layer, part), d_in)
    return out


class _InitMistake(nn.Module):
    """nn.Linear's parameters with another initialization (for the hints)."""

    def __init__(self, d_in, d_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(self.draw((d_out, d_in), d_in, d_out))
        self.bias = nn.Parameter(self.draw_bias((d_out,), d_in, d_out)) if bias else None

    def draw_bias(self, shape, d_in, d_out):
        return self.draw(shape, d_in, d_out)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


class _InitNormal(_InitMistake):
    def draw(self, shape, d_in, d_out):
        return torch.randn(shape) / math.sqrt(d_in)


class _InitOverIn(_InitMistake):
    def draw(self, shape, d_in, d_out):
        return torch.empty(shape).uniform_(-1 / d_in, 1 / d_in)


class _InitFanOut(_InitMistake):
    def draw(self, shape, d_in, d_out):
        return torch.empty(shape).uniform_(-1 / math.sqrt(d_out), 1 / math.sqrt(d_out))


class _InitZeroBias(_InitMistake):
    def draw(self, shape, d_in, d_out):
        return torch.empty(shape).uniform_(-1 / math.sqrt(d_in), 1 / math.sqrt(d_in))

    def draw_bias(self, shape, d_in, d_out):
        return torch.zeros(shape)


class _InitPositive(_InitMistake):
    def draw(self, shape, d_in, d_out):
        return torch.rand(shape) / math.sqrt(d_in)


class _LinearModuleTransposed(nn.Module):
    def __init__(self, d_in, d_out, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in))
        self.bias = nn.Parameter(torch.empty(d_out)) if bias else None

    def forward(self, x):
        y = x @ self.weight
        return y if self.bias is None else y + self.bias


# The first case is square: a weight stored as (in, out) takes the (out, in) tensor loaded into
# it and computes x @ W, whether written so or as x @ self.weight.T with the shape swapped.
_MODULE_TRANSPOSED = ("this matches x @ W for the loaded weight W: the weight has nn.Linear's "
                      "shape (out_features, in_features) and the layer computes x @ W.T. If you "
                      "create it as (in_features, out_features), create it as (out, in) instead.")

_INIT_HINTS = (
    Hint(_InitNormal, "this matches a normal distribution; nn.Linear draws every weight from the "
         "uniform distribution U(-k, k), k = 1/√in_features (torch.empty(...).uniform_(-k, k))."),
    Hint(_InitOverIn, "this matches the bound 1/in_features; the bound is 1/√in_features."),
    Hint(_InitFanOut, "the bound is too wide (this matches e.g. 1/√out_features, Xavier's "
         "√(6/(in+out)) or kaiming_uniform_ without a=√5); nn.Linear's bound is k = 1/√in_features."),
    Hint(_InitZeroBias, "this matches a bias initialized to zero; nn.Linear draws the bias from "
         "the same U(-k, k), k = 1/√in_features."),
    Hint(_InitPositive, "this matches U(0, k) (torch.rand): the values must be symmetric around 0, "
         "e.g. (2 * torch.rand(...) - 1) * k."),
)

register(
    Check("Linear", "forward",
          "output and gradients match nn.Linear with the same weight and bias",
          _linear_module_cases, nn.Linear, run=_module_run("both"),
          hints=(Hint(_LinearModuleTransposed, _MODULE_TRANSPOSED),), single_threaded=True),
    Check("Linear", "init",
          "parameters weight (out, in) and bias (out,), drawn from U(-1/√in, 1/√in) like nn.Linear",
          _linear_init_cases, nn.Linear, run=_run_linear_init, hints=_INIT_HINTS, points=2,
          single_threaded=True),
)

# What the notebook names as the references, not to be called by the answers.
forbid("LinearFunction", "torch.nn.functional.linear", "torch.nn.Linear")
forbid("Linear", "torch.nn.functional.linear", "torch.nn.Linear")
