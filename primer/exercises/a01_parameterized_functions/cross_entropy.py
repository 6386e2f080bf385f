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
    """Stability only, with the default reduction (the reductions have their own check)."""
    big = far_apart_logits(gen, 8, 5)
    # Rows 3000 apart: subtracting the batch's maximum instead of each row's leaves exp() of
    # -3000 in the low rows, 0 in any float dtype.
    apart = far_apart_logits(gen, 6, 5) + torch.tensor([-1500.0, 1500.0] * 3)[:, None]
    return [
        Case("logits × 1000 (float32)", (big, randint(gen, 5, 8))),
        Case("logits near -2000 (float32)", (far_apart_logits(gen, 8, 5) - 2000.0, randint(gen, 5, 8))),
        Case("rows 3000 apart (float32)", (apart, randint(gen, 5, 6))),
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


def _ce_lse_without_max(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: log(Σ exp z) - z_y computed literally (exp overflows, or underflows to 0)."""
    keep = targets != ignore_index
    nll = (logits.exp().sum(dim=1).log() - logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]) * keep
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _ce_batch_max(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: the maximum of the whole batch subtracted, not each row's."""
    m = logits.max()
    keep = targets != ignore_index
    lse = m + (logits - m).exp().sum(dim=1).log()
    nll = (lse - logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]) * keep
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _ce_max_not_added_back(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: log Σ exp(z - m) without adding m back."""
    m = logits.max(dim=1, keepdim=True).values
    return _nll_from_lse(logits, targets, torch.logsumexp(logits - m, dim=1), ignore_index, reduction)


def _ce_wrong_sign(logits, targets, ignore_index=-100, reduction="mean"):
    return -F.cross_entropy(logits, targets, ignore_index=ignore_index, reduction=reduction)


def _ce_over_batch_axis(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: log-sum-exp over dim 0 (the batch) instead of dim 1 (the classes)."""
    keep = targets != ignore_index
    lse = torch.logsumexp(logits, dim=0)[targets.clamp(min=0)]
    return _nll_from_lse(logits, targets, lse, ignore_index, reduction, keep)


def _nll_from_lse(logits, targets, lse, ignore_index, reduction, keep=None):
    keep = targets != ignore_index if keep is None else keep
    nll = (lse - logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]) * keep
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _ce_ignores_reduction(logits, targets, ignore_index=-100, reduction="mean"):
    return F.cross_entropy(logits, targets, ignore_index=ignore_index)


def _ce_drops_ignored(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: the ignored rows removed, so reduction='none' returns fewer than N losses."""
    keep = targets != ignore_index
    return F.cross_entropy(logits[keep], targets[keep], reduction=reduction)


def _ce_ignores_default_only(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: -100 hard-coded, so another ignore_index is not ignored."""
    return F.cross_entropy(logits, targets, reduction=reduction)


def _ce_no_ignore_indexed(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: the targets used as indices as they are, -100 included."""
    nll = torch.logsumexp(logits, 1) - logits[torch.arange(len(targets)), targets]
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


def _ce_no_ignore_gathered(logits, targets, ignore_index=-100, reduction="mean"):
    """The same mistake through gather."""
    nll = torch.logsumexp(logits, 1) - logits.gather(1, targets[:, None])[:, 0]
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


def _raising_only(mistake):
    """`mistake` where it raises; elsewhere an output no answer gives. Where the targets hold no
    -100 (ignore_index=2), not looking at ignore_index gives what _ce_ignores_default_only gives,
    and that hint names it there."""
    def raising(*args, **kwargs):
        mistake(*args, **kwargs)
        return "(named by its error only)"
    return raising


def _ce_ignored_kept(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: the mean divides by the targets kept, but the ignored losses (class 0's)
    are still in the sum."""
    keep = targets != ignore_index
    nll = torch.logsumexp(logits, 1) - logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _ce_column_index(logits, targets, ignore_index=-100, reduction="mean"):
    """The mistake: logits[:, targets], an (N, N) table (row i's logit of every target)."""
    keep = targets != ignore_index
    nll = (torch.logsumexp(logits, 1) - logits[:, targets.clamp(min=0)]) * keep
    if reduction == "none":
        return nll
    return nll.sum() if reduction == "sum" else nll.sum() / (keep.sum() * len(targets))


_NOT_IGNORED = ("this matches using the targets as indices without leaving out ignore_index: "
                "-100 is not a class. Pick with a safe index (e.g. targets.clamp(min=0) or "
                "torch.where), then set the ignored losses to 0 and divide by the number kept.")

_UNSTABLE = ("exp() of large logits overflows to inf (and of very negative ones underflows to 0) "
             "in float32. Subtract each row's maximum before exponentiating (log-sum-exp), or use "
             "torch.logsumexp.")

_CE_HINTS = (
    Hint(_ce_mean_over_all, "this matches dividing by all N targets; the mean is over the "
         "targets that are not ignored."),
    Hint(_ce_not_ignoring, "this matches treating ignored targets as class 0: their loss "
         "must be left out (0 with reduction='none')."),
    Hint(_ce_naive, _UNSTABLE),
    Hint(_ce_lse_without_max, _UNSTABLE),
    Hint(_ce_batch_max, "this matches subtracting the maximum of the whole batch: rows far below "
         "it underflow to exp() = 0. Subtract each row's own maximum (max over dim=1, "
         "keepdim=True)."),
    Hint(_ce_max_not_added_back, "this matches log Σ exp(z - m) without adding m back: "
         "log Σ exp(z) = m + log Σ exp(z - m)."),
    Hint(_ce_wrong_sign, "this matches the loss with the wrong sign: it is log Σ exp(z) - z_y "
         "(≥ 0), the negative log-probability."),
    Hint(_ce_over_batch_axis, "this matches log-sum-exp over dim 0 (the batch): the sum is over "
         "the classes, dim 1 of the (N, C) logits."),
    Hint(_ce_ignores_reduction, "this matches ignoring the reduction argument: 'sum' adds the "
         "losses, 'none' returns one loss per target."),
    Hint(_ce_drops_ignored, "this matches removing the ignored rows: with reduction='none' "
         "return N losses, 0 where the target is ignored."),
    Hint(_ce_ignores_default_only, "this matches not ignoring the targets equal to ignore_index "
         "(here 2): compare with the ignore_index argument, not with the default -100."),
    Hint(_raising_only(_ce_no_ignore_indexed), _NOT_IGNORED),
    Hint(_raising_only(_ce_no_ignore_gathered), _NOT_IGNORED),
    Hint(_ce_ignored_kept, "this matches leaving the ignored targets' losses in the sum (only the "
         "divisor counts the kept ones): set the loss to 0 where targets == ignore_index."),
    Hint(_ce_column_index, "this matches logits[:, targets], which picks every target's logit in "
         "every row, an (N, N) table: pick one logit per row, logits[torch.arange(N), targets] or "
         "logits.gather(1, targets[:, None])."),
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

# "Don't call F.cross_entropy, F.log_softmax (in any spelling) or F.nll_loss" (the notebook's
# instructions). nn.CrossEntropyLoss, nn.LogSoftmax and nn.NLLLoss call these F functions.
forbid("cross_entropy", "torch.nn.functional.cross_entropy", "torch.nn.functional.log_softmax",
       "torch.log_softmax", "torch.Tensor.log_softmax", "torch.special.log_softmax",
       "torch.nn.functional.nll_loss")
