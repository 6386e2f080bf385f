"""cross_entropy: values, reductions, stability for large logits, ignore_index; and what its notebook
forbids (F.cross_entropy, F.log_softmax)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randint, randn
from primer.exercises.a01_parameterized_functions.logits import far_apart_logits
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

# --------------------------------------------------------------------------- cross_entropy


def _ce_values_cases(gen):
    out = []
    for n, c, dtype in [(8, 5, torch.float32), (1, 3, torch.float32), (16, 10, torch.float64)]:
        out.append(Case(f"logits ({n}, {c}) {str(dtype)[6:]}",
                        (randn(gen, n, c, dtype=dtype, scale=2.0), randint(gen, c, n))))
    return out


def _ce_reduction_cases(gen):
    logits, targets = randn(gen, 6, 4, scale=2.0), randint(gen, 4, 6)
    return [Case(f"reduction={r!r}", (logits, targets), {"reduction": r}) for r in ("sum", "none")]


def _ce_stable_cases(gen):
    big = far_apart_logits(gen, 8, 5)
    return [
        Case("logits × 1000 (float32)", (big, randint(gen, 5, 8))),
        Case("logits × 1000, reduction='none'", (big, randint(gen, 5, 8)), {"reduction": "none"}),
        Case("logits × 1000, reduction='sum'", (big, randint(gen, 5, 8)), {"reduction": "sum"}),
    ]


def _ce_ignore_cases(gen):
    targets = randint(gen, 5, 10)
    targets[[1, 4, 7]] = -100
    custom = randint(gen, 5, 10)
    custom[custom == 2] = 0
    custom[[0, 3]] = 2
    logits = randn(gen, 10, 5, scale=2.0)
    return [
        Case("3 of 10 targets = -100", (logits, targets)),
        Case("3 of 10 targets = -100, reduction='sum'", (logits, targets), {"reduction": "sum"}),
        Case("3 of 10 targets = -100, reduction='none'", (logits, targets), {"reduction": "none"}),
        Case("ignore_index=2", (logits, custom), {"ignore_index": 2}),
    ]


def _ce_naive(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: log(softmax) without subtracting the maximum (exp overflows)."""
    probs = logits.exp() / logits.exp().sum(dim=1, keepdim=True)
    logp = probs.log()
    keep = targets != ignore_index
    nll = -logp.gather(1, targets.clamp(min=0).unsqueeze(1)).squeeze(1) * keep
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _ce_mean_over_all(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: ignored targets excluded from the sum but still counted in the mean."""
    losses = F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction="none")
    if reduction == "none":
        return losses
    return losses.sum() / len(targets) if reduction == "mean" else losses.sum()


def _ce_not_ignoring(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: ignored positions treated as class 0."""
    fixed = torch.where(targets == ignore_index, torch.zeros_like(targets), targets)
    return F.cross_entropy(logits, fixed, reduction=reduction)


_CE_HINTS = (
    Hint(_ce_mean_over_all, "this matches dividing by all N targets; the mean is over the "
         "targets that are not ignored."),
    Hint(_ce_not_ignoring, "this matches treating ignored targets as class 0: their loss "
         "must be left out (0 with reduction='none')."),
    Hint(_ce_naive, "exp() of large logits overflows to inf in float32. Subtract each row's "
         "maximum before exponentiating (log-sum-exp), or use torch.logsumexp."),
)

register(
    Check("cross_entropy", "values", "matches F.cross_entropy (mean over the batch)",
          _ce_values_cases, F.cross_entropy, hints=_CE_HINTS, points=2),
    Check("cross_entropy", "reductions", "supports reduction='sum' and 'none'",
          _ce_reduction_cases, F.cross_entropy, hints=_CE_HINTS),
    Check("cross_entropy", "stable", "stays finite and exact for logits in the thousands",
          _ce_stable_cases, F.cross_entropy, hints=_CE_HINTS, points=2),
    Check("cross_entropy", "ignore_index", "leaves out targets equal to ignore_index",
          _ce_ignore_cases, F.cross_entropy, hints=_CE_HINTS),
)

# "Don't call F.cross_entropy or F.log_softmax" (the notebook's instructions).
forbid("cross_entropy", "torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax")
