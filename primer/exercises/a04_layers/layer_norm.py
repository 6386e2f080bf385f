"""Assignment 04: LayerNormFunction (forward, backward, gradcheck, large-mean inputs). The module,
LayerNorm, is in layer_norm_module.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

from .harness import (
    _GRADCHECK_MESSAGE,
    _gradcheck_verdict,
    _leaf,
    _returned_shapes,
    _WrongBackward,
)

# --------------------------------------------------------------------------- LayerNormFunction


class _TorchLayerNormFunction:
    """The reference for LayerNormFunction: F.layer_norm, differentiated by autograd."""

    @staticmethod
    def apply(x, normalized_shape, weight, bias, eps):
        return F.layer_norm(x, normalized_shape, weight, bias, eps)


class _TorchLayerNormFunctionExact:
    """F.layer_norm evaluated in float64 on the float32 inputs, rounded back to float32: the
    correctly rounded answer (see _large_mean_cases for why torch's float32 kernel is not used)."""

    @staticmethod
    def apply(x, normalized_shape, weight, bias, eps):
        d = lambda t: None if t is None else t.double()
        return F.layer_norm(d(x), normalized_shape, d(weight), d(bias), eps).to(x.dtype)


def _ln_cases(small_spread: bool):
    return lambda gen: _ln_case_list(gen, small_spread)


def _ln_case_list(gen, small_spread: bool):
    out = []
    # (batch, normalized_shape, affine, eps, input std): a small spread with the default eps
    # (variance 1e-4) makes eps visible, so eps outside the square root fails. That case is
    # centered at 0: torch's float32 kernel loses digits when the mean is large compared with
    # the spread (see _large_mean_cases), and this check compares with that kernel.
    for batch, shape, affine, eps, scale in [((6,), (16,), True, 1e-5, 2.0),
                                             ((2, 5), (32,), True, 1e-5, 1.0),
                                             ((3,), (4, 6), True, 1e-5, 1.0),
                                             ((4,), (10,), False, 1e-5, 1.0),
                                             ((5,), (12,), True, 1e-5, 0.01),
                                             ((3, 2), (8,), True, 0.1, 0.5)]:
        x = randn(gen, *batch, *shape, scale=scale) + (0.5 if scale >= 0.5 else 0.0)
        w = randn(gen, *shape) + 1.0 if affine else None
        b = randn(gen, *shape) if affine else None
        g = randn(gen, *batch, *shape)
        label = (f"x {tuple(x.shape)}, normalized_shape {shape}, "
                 f"{'with weight and bias' if affine else 'no weight or bias'}, eps {eps:g}, "
                 f"std {scale:g}")
        # For gradients the small spread is left out: there dL/dx = (1/σ)(ĝ - mean(ĝ) - x̂·mean(ĝx̂))
        # multiplies float32 rounding in the bracket by 1/σ = 100, so correct implementations
        # differ from torch by more than float32's atol (measured: up to 4e-5).
        if small_spread or scale >= 0.1:
            out.append(Case(label, (x, shape, w, b, eps, g)))
    return out


def _ln_gradcheck_cases(gen):
    out = []
    for batch, shape, affine in [((3,), (5,), True), ((2, 2), (3, 2), True), ((4,), (6,), False)]:
        x = randn(gen, *batch, *shape, dtype=torch.float64)
        w = randn(gen, *shape, dtype=torch.float64) + 1 if affine else None
        b = randn(gen, *shape, dtype=torch.float64) if affine else None
        out.append(Case(f"float64 x {tuple(x.shape)}, normalized_shape {shape}, "
                        f"{'with' if affine else 'no'} weight and bias", (x, shape, w, b, 1e-5)))
    return out


def _large_mean_cases(gen):
    """Inputs of mean 1e4 and standard deviation ≈ 1e-2, in float32.

    Why the inputs are placed on a grid, and why the reference is computed in float64:
    - float32 cannot hold the mean of arbitrary such inputs: near 1e4 its spacing is 2^-10 ≈ 1e-3,
      so any float32 mean is off by up to 5e-4 = 0.05 standard deviations, and every output by up
      to 0.05. No float32 implementation, correct or not, can then meet float32 tolerances.
      Rounding each input to a multiple of 2^-6 (for a 16-wide row the sum stays below 2^18,
      where float32's spacing is 2^-6, so every partial sum, the mean and x - mean are exact)
      makes the problem well posed: a correct subtract-the-mean-first implementation then matches
      the exact answer to ~1e-7, while the one-pass E[x²] - E[x]² loses everything (x² ≈ 1e8
      has spacing 8, the variance is 1e-4) and returns NaN or garbage.
    - Only the output is compared: the input gradient multiplies float32 rounding by 1/σ = 100,
      so a correct float32 backward is off by a few 1e-5 here (measured), beyond float32's atol.
    - torch's own float32 kernel is off by ~0.1 even on these inputs (measured): it accumulates
      the mean and variance in one pass of running updates, and its mean comes out one float32
      spacing (1e-3, 0.1 standard deviations) away from the exact one. So the reference is
      F.layer_norm in float64 on the same float32 inputs, rounded to float32: the correctly
      rounded answer.
    """
    out = []
    for rows, d, affine in [(8, 16, True), (4, 16, False)]:
        k = torch.round(randn(gen, rows, d, dtype=torch.float64) * 1e-2 * 64)
        x = (1e4 + k / 64).float()
        w = randn(gen, d) + 1.0 if affine else None
        b = randn(gen, d) if affine else None
        g = randn(gen, rows, d)
        out.append(Case(f"x ({rows}, {d}) with mean 1e4, std ≈ 0.01, float32, "
                        f"{'with' if affine else 'no'} weight and bias", (x, (d,), w, b, 1e-5, g)))
    return out


def _run_ln_forward(fn, case):
    x, shape, w, b, eps, _ = case.args
    return fn.apply(x, shape, w, b, eps)


def _run_ln_backward(fn, case):
    x, shape, w, b, eps, g = case.args
    x, w, b = _leaf(x), _leaf(w), _leaf(b)
    y = fn.apply(x, shape, w, b, eps)
    shapes = _returned_shapes(y, g, {"grad_x": x, "normalized_shape": None, "grad_weight": w,
                                     "grad_bias": b, "eps": None})
    y.backward(g)
    out = {"grad input": x.grad}
    if w is not None:
        out |= {"grad weight": w.grad, "grad bias": b.grad}
    out["shapes your backward returns"] = shapes
    return out


def _run_ln_gradcheck(fn, case):
    x, shape, w, b, eps = case.args
    x, w, b = _leaf(x), _leaf(w), _leaf(b)
    return _gradcheck_verdict(lambda x, w, b: fn.apply(x, shape, w, b, eps), (x, w, b))


def _norm_dims(x, shape):
    return tuple(range(x.dim() - len(shape), x.dim()))


def _affine(y, w, b):
    return y if w is None else y * w + b


class _LNUnbiased:
    @staticmethod
    def apply(x, shape, w, b, eps):
        dims = _norm_dims(x, shape)
        mu, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True, unbiased=True)
        return _affine((x - mu) / torch.sqrt(var + eps), w, b)


class _LNEpsOutside:
    @staticmethod
    def apply(x, shape, w, b, eps):
        dims = _norm_dims(x, shape)
        mu, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True, unbiased=False)
        return _affine((x - mu) / (torch.sqrt(var) + eps), w, b)


class _LNLastDimOnly:
    @staticmethod
    def apply(x, shape, w, b, eps):
        mu, var = x.mean(-1, keepdim=True), x.var(-1, keepdim=True, unbiased=False)
        return _affine((x - mu) / torch.sqrt(var + eps), w, b)


class _LNBatchDim:
    @staticmethod
    def apply(x, shape, w, b, eps):
        mu, var = x.mean(0, keepdim=True), x.var(0, keepdim=True, unbiased=False)
        return _affine((x - mu) / torch.sqrt(var + eps), w, b)


class _LNOnePass:
    @staticmethod
    def apply(x, shape, w, b, eps):
        dims = _norm_dims(x, shape)
        mu = x.mean(dims, keepdim=True)
        var = (x * x).mean(dims, keepdim=True) - mu * mu
        return _affine((x - mu) / torch.sqrt(var + eps), w, b)


class _LNFused:
    @staticmethod
    def apply(x, shape, w, b, eps):
        dims = _norm_dims(x, shape)
        mu, var = x.mean(dims, keepdim=True), x.var(dims, keepdim=True, unbiased=False)
        r = torch.rsqrt(var + eps)
        return _affine(x * r - mu * r, w, b)


class _LNBackwardMistake(torch.autograd.Function):
    """Correct forward; subclasses write one wrong term of the backward."""

    @staticmethod
    def forward(ctx, x, shape, w, b, eps):
        dims = _norm_dims(x, shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        rstd = torch.rsqrt(var + eps)
        xhat = (x - mu) * rstd
        ctx.save_for_backward(xhat, rstd, w)
        ctx.dims = dims
        return _affine(xhat, w, b)

    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx = rstd * (gh - gh.mean(dims, keepdim=True) - xhat * (gh * xhat).mean(dims, keepdim=True))
        return gx, (g * xhat).sum(batch), g.sum(batch)

    @classmethod
    def backward(cls, ctx, g):
        xhat, rstd, w = ctx.saved_tensors
        dims = ctx.dims
        batch = tuple(range(g.dim() - len(dims)))
        gh = g if w is None else g * w
        gx, gw, gb = cls.grads(g, gh, xhat, rstd, dims, batch)
        return gx, None, None if w is None else gw, None if w is None else gb, None


class _LNStatsConstant(_LNBackwardMistake):
    """The backward treats μ and σ as constants: dx = g·w/σ."""

    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        return gh * rstd, (g * xhat).sum(batch), g.sum(batch)


class _LNNoVarianceTerm(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        return rstd * (gh - gh.mean(dims, keepdim=True)), (g * xhat).sum(batch), g.sum(batch)


class _LNNoMeanTerm(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx = rstd * (gh - xhat * (gh * xhat).mean(dims, keepdim=True))
        return gx, (g * xhat).sum(batch), g.sum(batch)


class _LNNoRstd(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx = gh - gh.mean(dims, keepdim=True) - xhat * (gh * xhat).mean(dims, keepdim=True)
        return gx, (g * xhat).sum(batch), g.sum(batch)


class _LNNoGamma(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx = rstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        return gx, (g * xhat).sum(batch), g.sum(batch)


class _LNVarianceTermAdded(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx = rstd * (gh - gh.mean(dims, keepdim=True) + xhat * (gh * xhat).mean(dims, keepdim=True))
        return gx, (g * xhat).sum(batch), g.sum(batch)


class _LNWeightGradNoXhat(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx, _, gb = super().grads(g, gh, xhat, rstd, dims, batch)
        return gx, g.sum(batch), gb


class _LNParamsPerRow(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx, _, _ = super().grads(g, gh, xhat, rstd, dims, batch)
        return gx, g * xhat, g


class _LNParamsDimZero(_LNBackwardMistake):
    @classmethod
    def grads(cls, g, gh, xhat, rstd, dims, batch):
        gx, _, _ = super().grads(g, gh, xhat, rstd, dims, batch)
        return gx, (g * xhat).sum(0), g.sum(0)


def _ln_gradients_shifted(ctx, g):
    """The mistake: (gx, gw, gb, None, None), the gradients not in forward's input order."""
    gx, _, gw, gb, _ = _LNBackwardMistake.backward(ctx, g)
    return gx, gw, gb, None, None


def _named_like_the_learners(backward):
    """A Function named LayerNormFunction, like the learner's: autograd's errors about what a
    backward returns name its class ("function LayerNormFunctionBackward returned ..."), and a
    hint matches an error by its first line."""
    class LayerNormFunction(_LNBackwardMistake):
        pass

    LayerNormFunction.backward = staticmethod(backward)
    return LayerNormFunction


_LN_HINTS = (
    Hint(_LNUnbiased, "this matches the unbiased variance (dividing by D - 1); LayerNorm uses the "
         "biased one: the mean of (x - μ)² over the D normalized elements (unbiased=False)."),
    Hint(_LNEpsOutside, "this matches eps added outside the square root, (x - μ)/(σ + eps); it "
         "goes inside: (x - μ)/√(σ² + eps)."),
    Hint(_LNLastDimOnly, "this matches normalizing over the last dimension only; normalize over "
         "all the trailing dimensions given by normalized_shape."),
    Hint(_LNBatchDim, "this matches normalizing over the batch dimension (dim 0, like BatchNorm); "
         "LayerNorm normalizes each example over its trailing (feature) dimensions."),
    Hint(_LNOnePass, "this matches the one-pass variance E[x²] - E[x]²: with a mean of 1e4 both "
         "terms are ≈1e8, float32 keeps about 7 digits, and their difference (1e-4) is lost. "
         "Subtract the mean first, then average (x - μ)²."),
    Hint(_LNFused, "this matches x·(1/σ) - μ/σ: multiplying the large x before subtracting the mean "
         "loses its digits. Compute (x - μ) first, then scale."),
)
_LN_BACKWARD_HINTS = _LN_HINTS + (
    Hint(_LNStatsConstant, "this matches treating μ and σ as constants in the backward (dx = g·w/σ); "
         "both depend on x: dx = (1/σ)(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂)), ĝ = g·w."),
    Hint(_LNNoVarianceTerm, "this matches an input gradient without the variance term, "
         "(1/σ)(ĝ - mean(ĝ)): σ depends on x too, subtract x̂·mean(ĝ·x̂) as well."),
    Hint(_LNNoMeanTerm, "this matches an input gradient without the mean term, "
         "(1/σ)(ĝ - x̂·mean(ĝ·x̂)): μ depends on x too, subtract mean(ĝ) as well."),
    Hint(_LNNoRstd, "this matches an input gradient without the factor r = 1/√(σ² + eps): "
         "dx = r·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))."),
    Hint(_LNNoGamma, "this matches the input gradient computed from g instead of ĝ = g·weight: the "
         "gradient reaching x̂ is scaled by γ."),
    Hint(_LNVarianceTermAdded, "this matches + x̂·mean(ĝ·x̂) in the input gradient; the variance "
         "term is subtracted: r·(ĝ - mean(ĝ) - x̂·mean(ĝ·x̂))."),
    Hint(_LNWeightGradNoXhat, "this matches dL/dγ = Σ g (like dL/dβ); it is Σ g·x̂, summed over "
         "the batch dimensions."),
    Hint(_LNParamsPerRow, "autograd summed it for you, but your backward returns dL/dγ and dL/dβ "
         "with the batch dimensions still in (one per row): sum g·x̂ and g over every batch "
         "dimension, so each gradient has its parameter's shape."),
    Hint(_LNParamsDimZero, "autograd summed it for you, but your backward sums dL/dγ and dL/dβ "
         "over dim 0 only: with more than one batch dimension, sum over all of them "
         "(tuple(range(g.dim() - len(normalized_shape))))."),
    Hint(_named_like_the_learners(_ln_gradients_shifted), "this matches returning (grad_x, "
         "grad_weight, grad_bias, None, None): backward returns one gradient per input of forward, "
         "in forward's order (x, normalized_shape, weight, bias, eps), so "
         "(grad_x, None, grad_weight, grad_bias, None)."),
)

register(
    Check("LayerNormFunction", "forward", "forward matches F.layer_norm (biased variance)",
          _ln_cases(small_spread=True), _TorchLayerNormFunction, run=_run_ln_forward, hints=_LN_HINTS,
          points=2, single_threaded=True),
    Check("LayerNormFunction", "backward",
          "backward gives the input, weight and bias gradients autograd gives for F.layer_norm",
          _ln_cases(small_spread=False), _TorchLayerNormFunction, run=_run_ln_backward,
          hints=_LN_BACKWARD_HINTS, points=2, single_threaded=True),
    Check("LayerNormFunction", "gradcheck",
          "forward and backward agree with finite differences (torch.autograd.gradcheck, float64)",
          _ln_gradcheck_cases, _TorchLayerNormFunction, run=_run_ln_gradcheck,
          hints=(Hint(_WrongBackward(_TorchLayerNormFunction), _GRADCHECK_MESSAGE),), single_threaded=True),
    Check("LayerNormFunction", "large_mean",
          "exact in float32 for inputs with mean 1e4 and standard deviation 0.01",
          _large_mean_cases, _TorchLayerNormFunctionExact, run=_run_ln_forward, hints=_LN_HINTS,
          single_threaded=True),
)

# What the notebook names as the references, not to be called by the answers.
forbid("LayerNormFunction", "torch.nn.functional.layer_norm", "torch.layer_norm",
       "torch.native_layer_norm", "torch.nn.LayerNorm")
