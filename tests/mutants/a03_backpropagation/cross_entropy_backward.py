"""cross_entropy_backward: mistakes a learner might make, and correct answers."""

import torch
import torch.nn.functional as F

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- cross_entropy_backward


@mutant("cross_entropy_backward", hint="without the 1/N", fails=("values",))
def ce_backward_no_mean(logits, targets):
    return torch.softmax(logits, 1) - F.one_hot(targets, logits.shape[1]).to(logits.dtype)


@mutant("cross_entropy_backward", hint="without subtracting", fails=("values",))
def ce_backward_softmax_only(logits, targets):
    return torch.softmax(logits, 1) / len(targets)


@mutant("cross_entropy_backward", hint="batch dimension", fails=("values",))
def ce_backward_softmax_dim0(logits, targets):
    p = torch.softmax(logits, 0)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)


@mutant("cross_entropy_backward", hint="overflows", fails=("stable",))
def ce_backward_naive_exp(logits, targets):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)


@mutant("cross_entropy_backward", fails=("values",))
def ce_backward_wrong_sign(logits, targets):
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (onehot - torch.softmax(logits, 1)) / len(targets)


@alternative("cross_entropy_backward")
def ce_backward_from_log_softmax(logits, targets):
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (logp.exp() - onehot) / logits.shape[0]


@mutant("cross_entropy_backward", hint="dividing by C", fails=("values",))
def ce_backward_over_classes(logits, targets):
    p = torch.softmax(logits, 1)
    p[torch.arange(len(targets)), targets] -= 1
    return p / logits.shape[1]


@mutant("cross_entropy_backward", hint="wrong sign", fails=("values",))
def ce_backward_one_hot_minus_softmax(logits, targets):
    onehot = torch.zeros_like(logits).scatter_(1, targets[:, None], 1.0)
    return (onehot - torch.softmax(logits, 1)) / logits.shape[0]


@mutant("cross_entropy_backward", hint="log_softmax − one-hot", fails=("values",))
def ce_backward_log_probabilities(logits, targets):
    p = torch.log_softmax(logits, 1)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)


@mutant("cross_entropy_backward", hint="maximum of the whole tensor", fails=("stable",))
def ce_backward_global_max(logits, targets):
    e = (logits - logits.max()).exp()
    p = e / e.sum(1, keepdim=True)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)


@alternative("cross_entropy_backward")
def ce_backward_logsumexp_scatter(logits, targets):
    p = (logits - logits.logsumexp(1, keepdim=True)).exp()
    return (p - torch.zeros_like(p).scatter_(1, targets[:, None], 1.0)) / logits.shape[0]


# Mistakes written by testers who had not seen the hints (appended: the order above is kept).


@mutant("cross_entropy_backward", hint="p[:, targets] -= 1", fails=("values",))
def ce_backward_column_indexing(logits, targets):
    p = torch.softmax(logits, dim=1)
    p[:, targets] -= 1
    return p / len(targets)


@mutant("cross_entropy_backward", hint="the target index itself", fails=("values",))
def ce_backward_minus_target_index(logits, targets):
    p = torch.softmax(logits, dim=1)
    return (p - targets.unsqueeze(1)) / len(targets)
