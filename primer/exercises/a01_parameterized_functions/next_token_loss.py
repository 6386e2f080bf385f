"""next_token_loss: the language-model loss, position t predicting token t+1."""

from __future__ import annotations

import torch.nn.functional as F

from primer.exercises._common import randint, randn
from primer.exercises.a01_parameterized_functions.logits import far_apart_logits
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- next_token_loss


def _reference_next_token(logits, tokens):
    """Position t predicts token t+1: drop the last prediction and the first token."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1))


def _next_token_cases(gen):
    return [Case(f"B={b}, T={t}, V={v}", (randn(gen, b, t, v, scale=2.0), randint(gen, v, b, t)))
            for b, t, v in [(2, 5, 7), (1, 2, 3), (4, 16, 50)]]


def _large_logits_cases(gen):
    # The label says where a failure here comes from: the learner's own cross_entropy.
    return [Case("logits × 1000 (needs a stable cross_entropy, Exercise 4)",
                 (far_apart_logits(gen, 2, 6, 11), randint(gen, 11, 2, 6)))]


def _next_token_unshifted(logits, tokens):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))


def _next_token_backwards(logits, tokens):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, 1:].reshape(-1, vocab), tokens[:, :-1].reshape(-1))


def _next_token_flat_shift(logits, tokens):
    """The mistake: shifting after flattening, so one sequence predicts the next one's start."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab)[:-1], tokens.reshape(-1)[1:])


def _next_token_batch_shift(logits, tokens):
    """The mistake: the shift along dim 0 (the batch) instead of dim 1 (time)."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:-1].reshape(-1, vocab), tokens[1:].reshape(-1))


def _next_token_time_major_tokens(logits, tokens):
    """The mistake: tokens flattened time-major (transposed) while logits are batch-major."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].t().reshape(-1))


def _next_token_sum(logits, tokens):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1), reduction="sum")


def _next_token_over_bt(logits, tokens):
    """The mistake: the sum over B(T-1) predictions divided by B·T."""
    return _next_token_sum(logits, tokens) / tokens.numel()


def _next_token_both_from_1(logits, tokens):
    """The mistake: the first position dropped from both logits and tokens (no shift either)."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, 1:].reshape(-1, vocab), tokens[:, 1:].reshape(-1))


def _next_token_with_unstable_ce(logits, tokens):
    """Right shift, through a cross_entropy without the maximum subtracted (Exercise 4 unstable)."""
    vocab = logits.shape[-1]
    z, y = logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1)
    return (z.exp().sum(dim=1).log() - z.gather(1, y[:, None])[:, 0]).mean()


def _next_token_with_literal_softmax(logits, tokens):
    vocab = logits.shape[-1]
    z, y = logits[:, :-1].reshape(-1, vocab), tokens[:, 1:].reshape(-1)
    p = z.exp() / z.exp().sum(dim=1, keepdim=True)
    return -p.log().gather(1, y[:, None])[:, 0].mean()


def _next_token_view(logits, tokens):
    """The mistake: .view on the slice logits[:, :-1], which is not contiguous."""
    return F.cross_entropy(logits[:, :-1].view(-1, logits.shape[-1]), tokens[:, 1:].reshape(-1))


def _next_token_unflattened(logits, tokens):
    """The mistake: (B, T-1, V) logits given to F.cross_entropy, which wants classes in dim 1."""
    return F.cross_entropy(logits[:, :-1], tokens[:, 1:])


def _next_token_per_sequence(logits, tokens):
    """The mistake: the sum of the B(T-1) losses divided by B (a loss per sequence)."""
    return _next_token_sum(logits, tokens) / tokens.shape[0]


_UNSTABLE_CE = ("the shift is right, but the cross-entropy is not stable for large logits: if you "
                "call your cross_entropy, fix Exercise 4 first (its check cross_entropy.stable), or "
                "use F.cross_entropy here.")

_SHIFT_HINTS = (
    Hint(_next_token_unshifted, "this matches no shift: position t must predict "
         "token t+1, not token t. Use logits[:, :-1] against tokens[:, 1:]."),
    Hint(_next_token_backwards, "this matches shifting the wrong way "
         "(logits[:, 1:] against tokens[:, :-1])."),
    Hint(_next_token_flat_shift, "this matches shifting after flattening: the "
         "last position of one sequence then predicts the first token of the "
         "next. Shift along the time dimension, then flatten."),
    Hint(_next_token_batch_shift, "this matches shifting along dim 0, the batch: time is dim 1 "
         "of (B, T, V) logits; use logits[:, :-1] against tokens[:, 1:]."),
    Hint(_next_token_time_major_tokens, "this matches flattening the tokens in a different order "
         "than the logits (one of them transposed): reshape both (B, T-1, ...) the same way."),
    Hint(_next_token_sum, "this matches the sum of the B(T-1) losses: return their mean."),
    Hint(_next_token_over_bt, "this matches dividing by B·T: there are B(T-1) predictions, the "
         "last position has no next token."),
    Hint(_next_token_both_from_1, "this matches dropping the first position of both logits and "
         "tokens: drop the last position of the logits and the first token (logits[:, :-1] "
         "against tokens[:, 1:])."),
    Hint(_next_token_view, "this matches .view on logits[:, :-1]: the slice is not contiguous in "
         "memory, so it cannot be viewed as (B(T-1), V). Use .reshape(-1, V)."),
    Hint(_next_token_unflattened, "this matches giving (B, T-1, V) logits to a cross-entropy "
         "that reads dim 1 as the classes (here T-1): flatten to (B(T-1), V) logits and "
         "B(T-1) targets first (or move V to dim 1)."),
    Hint(_next_token_per_sequence, "this matches dividing the sum of the B(T-1) losses by B (a "
         "loss per sequence): return the mean over all B(T-1) predictions."),
)

register(
    Check("next_token_loss", "values",
          "matches F.cross_entropy with position t predicting token t+1",
          _next_token_cases, _reference_next_token, hints=_SHIFT_HINTS, points=2),
    Check("next_token_loss", "large_logits", "stays finite and exact for logits in the thousands",
          _large_logits_cases, _reference_next_token,
          hints=_SHIFT_HINTS + (Hint(_next_token_with_unstable_ce, _UNSTABLE_CE),
                                Hint(_next_token_with_literal_softmax, _UNSTABLE_CE))),
)
