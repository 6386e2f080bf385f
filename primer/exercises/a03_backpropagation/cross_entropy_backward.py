"""cross_entropy_backward: the gradient of F.cross_entropy with respect to the logits."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randint, randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

# --------------------------------------------------------------------------- cross_entropy_backward


def _reference_ce_backward(logits, targets):
    """∂/∂logits of F.cross_entropy (mean over the batch), by torch.autograd."""
    z = logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(F.cross_entropy(z, targets), z)
    return grad


def _ce_backward_cases(gen):
    out = []
    for n, c, dtype in [(8, 5, torch.float32), (1, 3, torch.float32), (16, 10, torch.float64),
                        (32, 4, torch.float64)]:
        out.append(Case(f"logits ({n}, {c}) {str(dtype)[6:]}",
                        (randn(gen, n, c, dtype=dtype, scale=2.0), randint(gen, c, n))))
    return out


def _ce_backward_stable_cases(gen):
    return [
        Case("logits × 1000 (float32)", (randn(gen, 8, 5) * 1000.0, randint(gen, 5, 8))),
        Case("logits × 1000 (float64)", (randn(gen, 6, 7, dtype=torch.float64) * 1000.0,
                                         randint(gen, 7, 6))),
    ]


def _ce_backward_no_mean(logits, targets):
    return torch.softmax(logits, 1) - F.one_hot(targets, logits.shape[1]).to(logits.dtype)


def _ce_backward_no_onehot(logits, targets):
    return torch.softmax(logits, 1) / logits.shape[0]


def _ce_backward_wrong_dim(logits, targets):
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (torch.softmax(logits, 0) - onehot) / logits.shape[0]


def _ce_backward_naive(logits, targets):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    return (p - F.one_hot(targets, logits.shape[1]).to(logits.dtype)) / logits.shape[0]


def _ce_backward_over_classes(logits, targets):
    return _ce_backward_no_mean(logits, targets) / logits.shape[1]


def _ce_backward_flipped(logits, targets):
    return -_ce_backward_no_mean(logits, targets) / logits.shape[0]


def _ce_backward_log_softmax(logits, targets):
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (torch.log_softmax(logits, 1) - onehot) / logits.shape[0]


def _ce_backward_global_max(logits, targets):
    e = (logits - logits.max()).exp()
    p = e / e.sum(1, keepdim=True)
    return (p - F.one_hot(targets, logits.shape[1]).to(logits.dtype)) / logits.shape[0]


def _ce_backward_column_index(logits, targets):
    p = torch.softmax(logits, 1)
    p[:, targets] -= 1  # every row, at every target's column
    return p / logits.shape[0]


def _ce_backward_index_subtracted(logits, targets):
    return (torch.softmax(logits, 1) - targets[:, None]) / logits.shape[0]


_CE_BACKWARD_HINTS = (
    Hint(_ce_backward_no_mean, "this matches softmax − one-hot without the 1/N: the loss is "
         "the *mean* over the N examples, so each row of the gradient is divided by N."),
    Hint(_ce_backward_no_onehot, "this matches softmax / N without subtracting the one-hot "
         "targets: ∂ℓ/∂z_c = p_c − [c = y]."),
    Hint(_ce_backward_wrong_dim, "this matches a softmax over the batch dimension; normalize "
         "each row (dim=1) over the classes."),
    Hint(_ce_backward_naive, "exp() of large logits overflows (inf/inf = nan). Subtract each "
         "row's maximum before exponentiating."),
    Hint(_ce_backward_over_classes, "this matches dividing by C, the number of classes; the "
         "mean is over the N examples (the rows), so divide by N = logits.shape[0]."),
    Hint(_ce_backward_flipped, "this matches one-hot − softmax, the gradient with the wrong "
         "sign (the direction that *decreases* the loss); the gradient is (softmax − one-hot)/N."),
    Hint(_ce_backward_log_softmax, "this matches log_softmax − one-hot; the gradient uses the "
         "probabilities themselves, softmax(z) = exp(log_softmax(z))."),
    Hint(_ce_backward_global_max, "this matches subtracting the maximum of the whole tensor: "
         "rows far below it underflow to exp(…) = 0 in every class and 0/0 = nan. Subtract each "
         "row's own maximum (max(dim=1, keepdim=True))."),
    Hint(_ce_backward_column_index, "this matches p[:, targets] -= 1, which subtracts 1 in "
         "every row at every target's column; subtract it once per row, at that row's target: "
         "p[torch.arange(N), targets] -= 1."),
    Hint(_ce_backward_index_subtracted, "this matches subtracting the target index itself "
         "(p - targets[:, None]); subtract the one-hot vector of each target, "
         "F.one_hot(targets, C), which is 1 only in the target's column."),
)

register(
    Check("cross_entropy_backward", "values",
          "equals autograd's gradient of F.cross_entropy: (softmax − one-hot)/N",
          _ce_backward_cases, _reference_ce_backward, hints=_CE_BACKWARD_HINTS, points=2),
    Check("cross_entropy_backward", "stable", "stays finite and exact for logits in the thousands",
          _ce_backward_stable_cases, _reference_ce_backward, hints=_CE_BACKWARD_HINTS),
)

# "`torch.softmax` is allowed, autograd is not."
forbid("cross_entropy_backward", "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward")
