"""The mistakes the hints of LinearFunction's checks implement (primer/exercises/a04_layers/
linear.py): Functions with the correct forward and a wrong backward, and wrong forwards."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _flat(t):
    return t.reshape(-1, t.shape[-1])


class _LinearRightForward(torch.autograd.Function):
    """The correct forward; the hint classes below differ only in a wrong backward."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return F.linear(x, w, b)


class _LinearNoBiasGrad(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _flat(g).T @ _flat(x), None


class _LinearGradWeightTransposed(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _flat(x).T @ _flat(g), _flat(g).sum(0) if ctx.has_bias else None


class _LinearGradInputTransposed(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w.T, _flat(g).T @ _flat(x), _flat(g).sum(0) if ctx.has_bias else None


class _LinearBiasMean(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _flat(g).T @ _flat(x), _flat(g).mean(0) if ctx.has_bias else None


class _LinearBiasDimZero(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _flat(g).T @ _flat(x), g.sum(0) if ctx.has_bias else None


class _LinearBiasNotSummed(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _flat(g).T @ _flat(x), g if ctx.has_bias else None


class _LinearWeightPerRow(_LinearRightForward):
    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, g.mT @ x, _flat(g).sum(0) if ctx.has_bias else None


class _LinearFlatOutput(_LinearRightForward):
    """Works on x.reshape(-1, in) and returns (N, out), never reshaped back."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        x2 = _flat(x)
        ctx.save_for_backward(x2, w)
        ctx.has_bias = b is not None
        return F.linear(x2, w, b)

    @staticmethod
    def backward(ctx, g):
        x2, w = ctx.saved_tensors
        return g @ w, g.T @ x2, g.sum(0) if ctx.has_bias else None


class _LinearTransposedForward:
    @staticmethod
    def apply(x, w, b=None):
        y = x @ w
        return y if b is None else y + b


class _LinearForgetsBias:
    @staticmethod
    def apply(x, w, b=None):
        return x @ w.T


class _LinearWeightMean(_LinearRightForward):
    """dL/dW divided by the number of rows (a mean, not the chain rule's sum)."""

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _flat(g).T @ _flat(x) / _flat(x).shape[0], _flat(g).sum(0) if ctx.has_bias else None


class _LinearWeightFirstIndex(_LinearRightForward):
    """dL/dW of the first leading index only (g[0]ᵀ x[0] for x of shape (B, T, in))."""

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        g0, x0 = g, x
        while g0.dim() > 2:
            g0, x0 = g0[0], x0[0]
        return g @ w, g0.T @ x0, _flat(g).sum(0) if ctx.has_bias else None


# Autograd's errors about what a backward returns name the Function's class ("function
# LinearFunctionBackward returned ..."), and a hint matches an error by its first line: these
# mistakes are classes named LinearFunction, like the learner's.

def _named_like_the_learners(backward):
    class LinearFunction(_LinearRightForward):
        pass

    LinearFunction.backward = staticmethod(backward)
    return LinearFunction


def _zeros_for_missing_bias(ctx, g):
    x, w = ctx.saved_tensors
    gb = _flat(g).sum(0) if ctx.has_bias else torch.zeros(w.shape[0], dtype=w.dtype)
    return g @ w, _flat(g).T @ _flat(x), gb


def _two_gradients(ctx, g):
    x, w = ctx.saved_tensors
    return g @ w, _flat(g).T @ _flat(x)


_LinearNoGradForMissingBias = _named_like_the_learners(_zeros_for_missing_bias)
_LinearTwoGradients = _named_like_the_learners(_two_gradients)
