"""Assignment 01, cross_entropy: mistakes a learner might make, and correct answers written differently."""

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- cross_entropy


@mutant("cross_entropy", hint="log-sum-exp", fails=("stable",))
def ce_literal_softmax(logits, targets, ignore_index=-100, reduction="mean"):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    keep = targets != ignore_index
    nll = -p.log().gather(1, targets.clamp(min=0)[:, None])[:, 0] * keep
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


@mutant("cross_entropy", hint="all N targets", fails=("ignore_index",))
def ce_mean_over_all(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    lse = torch.logsumexp(logits, 1)
    nll = (lse - logits.gather(1, targets.clamp(min=0)[:, None])[:, 0]) * keep
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


@mutant("cross_entropy", hint="class 0", fails=("ignore_index",))
def ce_ignores_nothing(logits, targets, ignore_index=-100, reduction="mean"):
    t = torch.where(targets == ignore_index, 0, targets)
    nll = torch.logsumexp(logits, 1) - logits.gather(1, t[:, None])[:, 0]
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


@mutant("cross_entropy", fails=("values",))
def ce_wrong_sign(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    nll = (logits.gather(1, targets.clamp(min=0)[:, None])[:, 0] - torch.logsumexp(logits, 1)) * keep
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


@mutant("cross_entropy", fails=("values",))
def ce_returns_none(logits, targets, ignore_index=-100, reduction="mean"):
    torch.logsumexp(logits, 1)


@alternative("cross_entropy")
def ce_with_log_softmax_by_hand(logits, targets, ignore_index=-100, reduction="mean"):
    logp = logits - torch.logsumexp(logits, dim=-1, keepdim=True)
    mask = targets.ne(ignore_index)
    picked = logp[torch.arange(len(targets)), targets.masked_fill(~mask, 0)]
    losses = -picked.masked_fill(~mask, 0.0)
    if reduction == "none":
        return losses
    return losses.sum() if reduction == "sum" else losses.sum() / mask.sum()
