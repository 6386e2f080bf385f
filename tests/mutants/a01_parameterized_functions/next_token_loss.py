"""Assignment 01, next_token_loss: mistakes a learner might make, and correct answers written differently."""

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
