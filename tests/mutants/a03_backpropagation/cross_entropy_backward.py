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
