"""Assignment 01, cross_entropy: mistakes a learner might make, and correct answers written differently."""

import torch
import torch.nn.functional as F

from tests.mutants import alternative, as_cell, mutant

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


@mutant("cross_entropy", hint="wrong sign", fails=("values",))
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


# Appended (issue "feedback that names what learners get wrong"): each names its mistake.


def _reduced(nll, keep, reduction):
    nll = torch.where(keep, nll, torch.zeros_like(nll))
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.sum() / keep.sum()


def _picked(logits, targets, keep):
    return logits.gather(1, torch.where(keep, targets, 0)[:, None])[:, 0]


@mutant("cross_entropy", hint="log-sum-exp", fails=("stable",))
def ce_logsumexp_without_max(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    return _reduced(logits.exp().sum(1).log() - _picked(logits, targets, keep), keep, reduction)


@mutant("cross_entropy", hint="maximum of the whole batch", fails=("stable",))
def ce_batch_max(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    m = logits.max()
    return _reduced(m + (logits - m).exp().sum(1).log() - _picked(logits, targets, keep), keep, reduction)


@mutant("cross_entropy", hint="without adding m back", fails=("values",))
def ce_max_not_added_back(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    m = logits.max(1, keepdim=True).values
    return _reduced((logits - m).exp().sum(1).log() - _picked(logits, targets, keep), keep, reduction)


@mutant("cross_entropy", hint="over dim 0", fails=("values",))
def ce_over_batch_axis(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    lse = torch.logsumexp(logits, 0)[torch.where(keep, targets, 0)]
    return _reduced(lse - _picked(logits, targets, keep), keep, reduction)


@mutant("cross_entropy", hint="removing the ignored rows", fails=("ignore_index",))
def ce_drops_ignored_rows(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    logits, targets = logits[keep], targets[keep]
    nll = torch.logsumexp(logits, 1) - logits.gather(1, targets[:, None])[:, 0]
    return nll if reduction == "none" else nll.sum() if reduction == "sum" else nll.mean()


@mutant("cross_entropy", hint="not with the default -100", fails=("ignore_index",))
def ce_hardcoded_minus_100(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != -100
    return _reduced(torch.logsumexp(logits, 1) - _picked(logits, targets, keep), keep, reduction)


@mutant("cross_entropy", hint="ignoring the reduction", fails=("reductions",))
def ce_ignores_reduction(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    return _reduced(torch.logsumexp(logits, 1) - _picked(logits, targets, keep), keep, "mean")


@mutant("cross_entropy", hint="log-sum-exp", fails=("stable",))
def ce_softmax_then_log(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    return _reduced(-_picked(torch.softmax(logits, 1).log(), targets, keep), keep, reduction)


def _as_cell(name: str, source: str):
    """A forbidden spelling's `cross_entropy`, compiled as a notebook cell (as_cell), under `name`."""
    function = as_cell(source, "cross_entropy", __name__)
    function.__name__ = name
    return function


ce_module = mutant("cross_entropy", hint="calls `F.cross_entropy`", fails=("values",))(_as_cell(
    "ce_module",
    "def cross_entropy(logits, targets, ignore_index=-100, reduction='mean'):\n"
    "    loss = torch.nn.CrossEntropyLoss(ignore_index=ignore_index, reduction=reduction)\n"
    "    return loss(logits, targets)\n"))

ce_torch_log_softmax = mutant("cross_entropy", hint="`torch.log_softmax`", fails=("values",))(_as_cell(
    "ce_torch_log_softmax",
    "def cross_entropy(logits, targets, ignore_index=-100, reduction='mean'):\n"
    "    keep = targets != ignore_index\n"
    "    nll = -torch.log_softmax(logits, 1).gather(1, torch.where(keep, targets, 0)[:, None])[:, 0]\n"
    "    nll = torch.where(keep, nll, 0.0)\n"
    "    if reduction == 'none':\n"
    "        return nll\n"
    "    return nll.sum() if reduction == 'sum' else nll.sum() / keep.sum()\n"))

ce_tensor_log_softmax = mutant("cross_entropy", hint="`torch.Tensor.log_softmax`",
                               fails=("values",))(_as_cell(
    "ce_tensor_log_softmax",
    "def cross_entropy(logits, targets, ignore_index=-100, reduction='mean'):\n"
    "    keep = targets != ignore_index\n"
    "    nll = -logits.log_softmax(1).gather(1, torch.where(keep, targets, 0)[:, None])[:, 0]\n"
    "    nll = torch.where(keep, nll, 0.0)\n"
    "    if reduction == 'none':\n"
    "        return nll\n"
    "    return nll.sum() if reduction == 'sum' else nll.sum() / keep.sum()\n"))

ce_nll_loss = mutant("cross_entropy", hint="`F.nll_loss`", fails=("values",))(_as_cell(
    "ce_nll_loss",
    "def cross_entropy(logits, targets, ignore_index=-100, reduction='mean'):\n"
    "    logp = logits - torch.logsumexp(logits, 1, keepdim=True)\n"
    "    return F.nll_loss(logp, targets, ignore_index=ignore_index, reduction=reduction)\n"))


@alternative("cross_entropy")
def ce_one_hot(logits, targets, ignore_index=-100, reduction="mean"):
    keep = targets != ignore_index
    m = logits.amax(dim=1, keepdim=True)
    lse = m.squeeze(1) + torch.log(torch.exp(logits - m).sum(dim=1))
    hot = F.one_hot(targets.masked_fill(~keep, 0), logits.shape[1]).to(logits.dtype)
    loss = (lse - (hot * logits).sum(1)).masked_fill(~keep, 0.0)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / keep.sum()


@alternative("cross_entropy")
def ce_row_by_row(logits, targets, ignore_index=-100, reduction="mean"):
    losses = [torch.logsumexp(z, 0) - z[y] if y.item() != ignore_index else z.sum() * 0
              for z, y in zip(logits, targets)]
    loss = torch.stack(losses)
    n = (targets != ignore_index).sum()
    return loss if reduction == "none" else loss.sum() if reduction == "sum" else loss.sum() / n


def _reduce(loss, valid, reduction):
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / valid.sum()


@mutant("cross_entropy", hint="without leaving out ignore_index", fails=("ignore_index",))
def ce_no_ignore(logits, targets, ignore_index=-100, reduction="mean"):
    """(a tester's answer) ignore_index never looked at."""
    loss = torch.logsumexp(logits, 1) - logits[torch.arange(len(targets)), targets]
    return {"mean": loss.mean(), "sum": loss.sum(), "none": loss}[reduction]


@mutant("cross_entropy", hint="without leaving out ignore_index", fails=("ignore_index",))
def ce_no_ignore_gather(logits, targets, ignore_index=-100, reduction="mean"):
    loss = torch.logsumexp(logits, dim=-1) - torch.gather(logits, 1, targets.unsqueeze(1)).squeeze(1)
    return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss


@mutant("cross_entropy", hint="leaving the ignored targets' losses in the sum", fails=("ignore_index",))
def ce_ignored_not_zeroed(logits, targets, ignore_index=-100, reduction="mean"):
    """(a tester's answer) only the divisor leaves the ignored targets out."""
    valid = targets != ignore_index
    t = targets.clamp(min=0)
    loss = torch.logsumexp(logits, 1) - logits.gather(1, t[:, None]).squeeze(1)
    return _reduce(loss, valid, reduction)


@mutant("cross_entropy", hint="logits[:, targets]", fails=("values",))
def ce_column_index(logits, targets, ignore_index=-100, reduction="mean"):
    """(a tester's answer) an (N, N) table instead of one logit per row."""
    valid = targets != ignore_index
    t = torch.where(valid, targets, 0)
    loss = torch.logsumexp(logits, 1) - logits[:, t]
    loss = torch.where(valid, loss, 0.0)
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.sum() / (valid.sum() * len(t))
