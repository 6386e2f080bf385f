"""Assignment 01, mse_loss: mistakes a learner might make, and correct answers written differently."""

import warnings

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- mse_loss


@mutant("mse_loss", hint="batch size", fails=("mean",))
def mse_over_batch(pred, target, reduction="mean"):
    sq = (pred - target) ** 2
    if reduction == "mean":
        return sq.sum() / pred.shape[0]
    return sq.sum() if reduction == "sum" else sq


@mutant("mse_loss", hint="absolute error")
def mse_absolute(pred, target, reduction="mean"):
    e = (pred - target).abs()
    return e.mean() if reduction == "mean" else e.sum() if reduction == "sum" else e


@mutant("mse_loss", fails=("sum_and_none",))
def mse_ignores_reduction(pred, target, reduction="mean"):
    return ((pred - target) ** 2).mean()


@alternative("mse_loss")
def mse_with_pow_and_warning(pred, target, reduction="mean"):
    warnings.warn("a harmless warning from the learner's code")
    diff = torch.sub(pred, target)
    out = diff.pow(2)
    return {"none": out, "sum": out.sum(), "mean": out.sum() / out.numel()}[reduction]
