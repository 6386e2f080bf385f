"""mse_loss: the mean squared error, with reduction='mean', 'sum' and 'none'."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- mse_loss


def _mse_cases(reductions):
    def cases(gen):
        out = []
        for shape, dtype in [((8,), torch.float32), ((4, 3), torch.float32), ((2, 3, 5), torch.float64)]:
            for reduction in reductions:
                kwargs = {} if reduction is None else {"reduction": reduction}
                name = reduction or "default"
                out.append(Case(f"{shape} {str(dtype)[6:]}, reduction={name}",
                                (randn(gen, *shape, dtype=dtype), randn(gen, *shape, dtype=dtype)),
                                kwargs))
        return out
    return cases


def _mse_batch_mean(pred, target, reduction="mean"):
    sq = (pred - target) ** 2
    return sq.sum() / pred.shape[0] if reduction == "mean" else F.mse_loss(pred, target, reduction=reduction)


def _mse_no_square(pred, target, reduction="mean"):
    return F.l1_loss(pred, target, reduction=reduction)


_MSE_HINTS = (
    Hint(_mse_batch_mean, "this matches dividing by the batch size; the mean is over every "
         "element (divide by pred.numel())."),
    Hint(_mse_no_square, "this matches the mean absolute error: square the differences."),
)

register(
    Check("mse_loss", "mean", "matches F.mse_loss with the default mean reduction",
          _mse_cases([None]), F.mse_loss, hints=_MSE_HINTS),
    Check("mse_loss", "sum_and_none", "matches F.mse_loss for reduction='sum' and 'none'",
          _mse_cases(["sum", "none"]), F.mse_loss, hints=_MSE_HINTS),
)
