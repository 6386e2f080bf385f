"""Logits shared by cross_entropy and next_token_loss: in the thousands, far apart in a row."""

from __future__ import annotations

import torch

from primer.exercises._common import randn


def far_apart_logits(gen, *shape) -> torch.Tensor:
    """Logits in the thousands (exp overflows float32) whose values in a row are ≥ ~200 apart.

    Nearly equal large logits are avoided on purpose: a loss near 1 computed from numbers near
    1000 carries float32 rounding of ~6e-5 (the spacing of floats at 1000), more than the
    tolerance, and correct formulas differ there. With gaps of hundreds, each loss is exactly 0
    (the target is the row's maximum) or in the hundreds, where the relative error is tiny. Plain
    `randn × 1000` had such near ties: the solution failed on 9 of 400 seeds.
    """
    *lead, classes = shape
    ranks = torch.argsort(torch.rand(*lead, classes, generator=gen), dim=-1).to(torch.float32)
    return (ranks - (classes - 1) / 2) * 400.0 + randn(gen, *shape, scale=20.0)
