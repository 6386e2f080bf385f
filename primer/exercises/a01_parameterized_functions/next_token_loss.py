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
    out = []
    for b, t, v in [(2, 5, 7), (1, 2, 3), (4, 16, 50)]:
        out.append(Case(f"B={b}, T={t}, V={v}", (randn(gen, b, t, v, scale=2.0), randint(gen, v, b, t))))
    out.append(Case("logits × 1000", (far_apart_logits(gen, 2, 6, 11), randint(gen, 11, 2, 6))))
    return out


def _next_token_unshifted(logits, tokens):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))


def _next_token_backwards(logits, tokens):
    vocab = logits.shape[-1]
    return F.cross_entropy(logits[:, 1:].reshape(-1, vocab), tokens[:, :-1].reshape(-1))


def _next_token_flat_shift(logits, tokens):
    """The mistake: shifting after flattening, so one sequence predicts the next one's start."""
    vocab = logits.shape[-1]
    return F.cross_entropy(logits.reshape(-1, vocab)[:-1], tokens.reshape(-1)[1:])


register(
    Check("next_token_loss", "values",
          "matches F.cross_entropy with position t predicting token t+1",
          _next_token_cases, _reference_next_token,
          hints=(Hint(_next_token_unshifted, "this matches no shift: position t must predict "
                      "token t+1, not token t. Use logits[:, :-1] against tokens[:, 1:]."),
                 Hint(_next_token_backwards, "this matches shifting the wrong way "
                      "(logits[:, 1:] against tokens[:, :-1])."),
                 Hint(_next_token_flat_shift, "this matches shifting after flattening: the "
                      "last position of one sequence then predicts the first token of the "
                      "next. Shift along the time dimension, then flatten.")), points=2),
)
