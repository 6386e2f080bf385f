"""mse_loss: the mean squared error, with reduction='mean', 'sum' and 'none'."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- mse_loss


def _mse_cases(reductions):
    # The 3-D case first: there the mean over all elements, over the batch (shape[0]) and over
    # all but the last dimension all differ, so the hints below can tell those mistakes apart.
    # Its values are near 1000 and differ by ~0.1: float64 keeps e to 13 digits, a computation
    # in float32 (whose spacing at 1000 is 6e-5) gets e² wrong by ~1e-3 of its value.
    def cases(gen):
        out = []
        for shape, dtype, offset in [((2, 3, 5), torch.float64, 1000.0), ((8,), torch.float32, 0.0),
                                     ((4, 3), torch.float32, 0.0)]:
            for reduction in reductions:
                kwargs = {} if reduction is None else {"reduction": reduction}
                name = reduction or "default"
                base = offset + randn(gen, *shape, dtype=dtype) if offset else 0.0
                scale = 0.1 if offset else 1.0
                near = f" near {offset:g}" if offset else ""
                out.append(Case(f"{shape} {str(dtype)[6:]}{near}, reduction={name}",
                                (base + randn(gen, *shape, dtype=dtype, scale=scale),
                                 base + randn(gen, *shape, dtype=dtype, scale=scale)),
                                kwargs))
        return out
    return cases


def _mse_batch_mean(pred, target, reduction="mean"):
    sq = (pred - target) ** 2
    return sq.sum() / pred.shape[0] if reduction == "mean" else F.mse_loss(pred, target, reduction=reduction)


def _mse_no_square(pred, target, reduction="mean"):
    return F.l1_loss(pred, target, reduction=reduction)


def _mse_last_dim_sum(pred, target, reduction="mean"):
    sq = (pred - target) ** 2
    return sq.sum(-1).mean() if reduction == "mean" else F.mse_loss(pred, target, reduction=reduction)


def _mse_root(pred, target, reduction="mean"):
    return F.mse_loss(pred, target, reduction=reduction).sqrt()


def _mse_half(pred, target, reduction="mean"):
    return 0.5 * F.mse_loss(pred, target, reduction=reduction)


def _mse_swapped(pred, target, reduction="mean"):
    swap = {"mean": "sum", "sum": "mean"}.get(reduction, reduction)
    return F.mse_loss(pred, target, reduction=swap)


def _mse_ignores_reduction(pred, target, reduction="mean"):
    return F.mse_loss(pred, target)


def _mse_flat_none(pred, target, reduction="mean"):
    return F.mse_loss(pred, target, reduction=reduction).reshape(-1)


def _mse_none_unsquared(pred, target, reduction="mean"):
    return pred - target if reduction == "none" else F.mse_loss(pred, target, reduction=reduction)


def _mse_item(pred, target, reduction="mean"):
    out = F.mse_loss(pred, target, reduction=reduction)
    return out.item() if out.dim() == 0 else out


def _mse_float32(pred, target, reduction="mean"):
    return F.mse_loss(pred.float(), target.float(), reduction=reduction)


def _mse_mean_dim0(pred, target, reduction="mean"):
    """The mistake: 'mean' averages over dim 0 (the batch) only, leaving a tensor."""
    e2 = (pred - target) ** 2
    return e2.mean(0) if reduction == "mean" else F.mse_loss(pred, target, reduction=reduction)


def _mse_none_summed(pred, target, reduction="mean"):
    """The mistake: 'none' sums each example's last dimension (one loss per row)."""
    e2 = (pred - target) ** 2
    return e2.sum(-1) if reduction == "none" else F.mse_loss(pred, target, reduction=reduction)


_MSE_HINTS = (
    Hint(_mse_batch_mean, "this matches dividing by the batch size; the mean is over every "
         "element (divide by pred.numel())."),
    Hint(_mse_no_square, "this matches the mean absolute error: square the differences."),
    Hint(_mse_last_dim_sum, "this matches summing over the last dimension, then averaging the "
         "rest: the mean is over every element (divide the sum by pred.numel())."),
    Hint(_mse_root, "this matches the square root of the result (RMSE): return the mean of e² "
         "itself."),
    Hint(_mse_half, "this matches ½·e² (the convention of some textbooks): this exercise uses "
         "e² without the ½, like F.mse_loss."),
    Hint(_mse_swapped, "this matches 'mean' and 'sum' swapped: 'mean' divides the sum by the "
         "number of elements, 'sum' does not."),
    Hint(_mse_ignores_reduction, "this matches ignoring the reduction argument: 'sum' adds the "
         "e² up, 'none' returns them unreduced."),
    Hint(_mse_flat_none, "this matches flattening the result of reduction='none': return e² in "
         "the shape of pred."),
    Hint(_mse_none_unsquared, "this matches returning e = pred - target for reduction='none': "
         "return e²."),
    Hint(_mse_item, "this matches returning a Python number (.item()): return the tensor, so "
         "that the loss stays differentiable."),
    Hint(_mse_float32, "this matches computing in float32: keep the dtype of pred (float64 "
         "inputs give a float64 loss)."),
    Hint(_mse_mean_dim0, "this matches averaging over dim 0 only (e.g. .mean(0) or "
         ".mean(dim=0)), which leaves a tensor: 'mean' averages over every element, "
         "e2.mean() with no dim, and returns a scalar."),
    Hint(_mse_none_summed, "this matches summing over the last dimension for reduction='none': "
         "'none' reduces nothing, return e² elementwise in the shape of pred."),
)

register(
    Check("mse_loss", "mean", "matches F.mse_loss with the default mean reduction",
          _mse_cases([None]), F.mse_loss, hints=_MSE_HINTS),
    Check("mse_loss", "sum_and_none", "matches F.mse_loss for reduction='sum' and 'none'",
          _mse_cases(["none", "sum"]), F.mse_loss, hints=_MSE_HINTS),
)
