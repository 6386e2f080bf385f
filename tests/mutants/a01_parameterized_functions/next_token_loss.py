"""Assignment 01, next_token_loss: mistakes a learner might make, and correct answers written differently."""

import torch
import torch.nn.functional as F

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- next_token_loss


@mutant("next_token_loss", hint="no shift")
def next_token_unshifted(logits, tokens):
    return F.cross_entropy(logits.flatten(0, 1), tokens.flatten())


@mutant("next_token_loss", hint="wrong way")
def next_token_backwards(logits, tokens):
    return F.cross_entropy(logits[:, 1:].flatten(0, 1), tokens[:, :-1].flatten())


@mutant("next_token_loss", hint="after flattening")
def next_token_flat_shift(logits, tokens):
    return F.cross_entropy(logits.flatten(0, 1)[:-1], tokens.flatten()[1:])


@mutant("next_token_loss")
def next_token_mean_per_sequence_sum(logits, tokens):
    per = F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none")
    return per.sum(1).mean()


@alternative("next_token_loss")
def next_token_transposed(logits, tokens):
    # F.cross_entropy also takes (B, V, T) logits with (B, T) targets.
    return F.cross_entropy(logits[:, :-1].transpose(1, 2), tokens[:, 1:])


# Appended (issue "feedback that names what learners get wrong"): each names its mistake.


def _flat(logits, tokens):
    return logits[:, :-1].reshape(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1)


@mutant("next_token_loss", hint="along dim 0", fails=("values",))
def next_token_batch_shift(logits, tokens):
    return F.cross_entropy(logits[:-1].flatten(0, 1), tokens[1:].flatten())


@mutant("next_token_loss", hint="different order", fails=("values",))
def next_token_tokens_transposed(logits, tokens):
    return F.cross_entropy(logits[:, :-1].flatten(0, 1), tokens[:, 1:].t().flatten())


@mutant("next_token_loss", hint="return their mean", fails=("values",))
def next_token_sum(logits, tokens):
    return F.cross_entropy(*_flat(logits, tokens), reduction="sum")


@mutant("next_token_loss", hint="dividing by B·T", fails=("values",))
def next_token_over_bt(logits, tokens):
    return F.cross_entropy(*_flat(logits, tokens), reduction="sum") / tokens.numel()


@mutant("next_token_loss", hint="first position of both", fails=("values",))
def next_token_both_from_1(logits, tokens):
    return F.cross_entropy(logits[:, 1:].flatten(0, 1), tokens[:, 1:].flatten())


def _unstable_cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    """A learner's Exercise 4 without the maximum subtracted."""
    return (logits.exp().sum(1).log() - logits.gather(1, targets[:, None])[:, 0]).mean()


@mutant("next_token_loss", hint="fix Exercise 4 first", fails=("large_logits",))
def next_token_through_unstable_cross_entropy(logits, tokens):
    return _unstable_cross_entropy(*_flat(logits, tokens))


@mutant("next_token_loss", fails=("values", "large_logits"))
def next_token_3d_logits(logits, tokens):
    return F.cross_entropy(logits[:, :-1], tokens[:, 1:])  # classes must be dim 1


@alternative("next_token_loss")
def next_token_per_sequence_means(logits, tokens):
    # every sequence has T-1 targets, so the mean of the sequence means is the mean
    return torch.stack([F.cross_entropy(z[:-1], t[1:]) for z, t in zip(logits, tokens)]).mean()


@mutant("next_token_loss", hint=".view on logits[:, :-1]", fails=("values",))
def next_token_view_of_slice(logits, tokens):
    """(a tester's answer) .view on a slice that is not contiguous."""
    V = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].view(-1, V), tokens[:, 1:].reshape(-1))


@mutant("next_token_loss", hint="reads dim 1 as the classes", fails=("values",))
def next_token_not_flattened(logits, tokens):
    """(a tester's answer) (B, T-1, V) straight into F.cross_entropy."""
    return F.cross_entropy(logits[:, :-1], tokens[:, 1:])


@mutant("next_token_loss", hint="a loss per sequence", fails=("values",))
def next_token_sum_over_batch_size(logits, tokens):
    """(a tester's answer) the sum over positions, divided by B."""
    B, T, V = logits.shape
    z, y = logits[:, :-1].reshape(-1, V), tokens[:, 1:].reshape(-1)
    return (torch.logsumexp(z, 1) - z.gather(1, y[:, None])[:, 0]).sum() / B


@alternative("next_token_loss")
def next_token_rolled_with_ignore_index(logits, tokens):
    """(a tester's answer) the targets rolled left, the last position ignored."""
    targets = tokens.roll(-1, dims=1).clone()
    targets[:, -1] = -100
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
