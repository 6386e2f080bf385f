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


@mutant("mse_loss", hint="ignoring the reduction", fails=("sum_and_none",))
def mse_ignores_reduction(pred, target, reduction="mean"):
    return ((pred - target) ** 2).mean()


@alternative("mse_loss")
def mse_with_pow_and_warning(pred, target, reduction="mean"):
    warnings.warn("a harmless warning from the learner's code")
    diff = torch.sub(pred, target)
    out = diff.pow(2)
    return {"none": out, "sum": out.sum(), "mean": out.sum() / out.numel()}[reduction]


# Appended (issue "feedback that names what learners get wrong"): each names its mistake.


def _reduce(e2, reduction):
    return e2.mean() if reduction == "mean" else e2.sum() if reduction == "sum" else e2


@mutant("mse_loss", hint="summing over the last dimension", fails=("mean",))
def mse_sum_last_dim(pred, target, reduction="mean"):
    e2 = (pred - target) ** 2
    return e2.sum(-1).mean() if reduction == "mean" else _reduce(e2, reduction)


@mutant("mse_loss", hint="RMSE", fails=("mean",))
def mse_root(pred, target, reduction="mean"):
    e2 = (pred - target) ** 2
    return e2.mean().sqrt() if reduction == "mean" else _reduce(e2, reduction)


@mutant("mse_loss", hint="without the ½")
def mse_half(pred, target, reduction="mean"):
    return _reduce(0.5 * (pred - target) ** 2, reduction)


@mutant("mse_loss", hint="'mean' and 'sum' swapped", fails=("mean",))
def mse_swapped(pred, target, reduction="mean"):
    e2 = (pred - target) ** 2
    return {"mean": e2.sum(), "sum": e2.mean()}.get(reduction, e2)


@mutant("mse_loss", hint="flattening", fails=("sum_and_none",))
def mse_flat_none(pred, target, reduction="mean"):
    e2 = (pred - target) ** 2
    return e2.reshape(-1) if reduction == "none" else _reduce(e2, reduction)


@mutant("mse_loss", hint="return e²", fails=("sum_and_none",))
def mse_none_unsquared(pred, target, reduction="mean"):
    e = pred - target
    return e if reduction == "none" else _reduce(e ** 2, reduction)


@mutant("mse_loss", hint="Python number", fails=("mean",))
def mse_item(pred, target, reduction="mean"):
    out = _reduce((pred - target) ** 2, reduction)
    return out.item() if out.dim() == 0 else out


@mutant("mse_loss", hint="computing in float32", fails=("mean",))
def mse_float32(pred, target, reduction="mean"):
    return _reduce((pred.float() - target.float()) ** 2, reduction)


@alternative("mse_loss")
def mse_square_over_numel(pred, target, reduction="mean"):
    e2 = torch.square(pred - target)
    return e2 if reduction == "none" else e2.sum() if reduction == "sum" else e2.sum() / e2.numel()


@alternative("mse_loss")
def mse_einsum(pred, target, reduction="mean"):
    e = pred - target
    if reduction == "none":
        return e * e
    s = torch.einsum("i,i->", e.reshape(-1), e.reshape(-1))
    return s / e.numel() if reduction == "mean" else s


@mutant("mse_loss", hint="averaging over dim 0 only", fails=("mean",))
def mse_mean_over_batch_axis(pred, target, reduction="mean"):
    """(a tester's answer) 'mean' as a mean over dim 0: a vector, not a scalar."""
    e2 = (pred - target) ** 2
    if reduction == "mean":
        return e2.mean(dim=0)
    return e2.sum() if reduction == "sum" else e2


@mutant("mse_loss", hint="summing over the last dimension for reduction='none'",
        fails=("sum_and_none",))
def mse_none_per_example(pred, target, reduction="mean"):
    """(a tester's answer) 'none' as one loss per example."""
    e2 = (pred - target) ** 2
    if reduction == "none":
        return e2.sum(-1)
    return e2.mean() if reduction == "mean" else e2.sum()
