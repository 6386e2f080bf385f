"""dataset_loss: the mean loss over a dataset computed in minibatches, the last one possibly smaller."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import mlp, randint, randn
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- dataset_loss


def _reference_dataset_loss(model, loss_fn, inputs, targets, batch_size):
    """L(θ) = (1/|D|) Σ ℓ(f_θ(x), y): the full-batch mean loss, computed in float64."""
    with torch.no_grad():
        return float(loss_fn(model(inputs).double(), targets if not targets.is_floating_point()
                             else targets.double()))


def _dataset_cases(sizes):
    def cases(gen):
        out = []
        for n, batch_size in sizes:
            classifier = mlp(gen, 6, 16, 4)
            out.append(Case(f"classification, {n} examples, batch_size={batch_size}",
                            (classifier, F.cross_entropy, randn(gen, n, 6), randint(gen, 4, n),
                             batch_size)))
            regressor = mlp(gen, 3, 8, 2)
            out.append(Case(f"regression, {n} examples, batch_size={batch_size}",
                            (regressor, F.mse_loss, randn(gen, n, 3), randn(gen, n, 2), batch_size)))
        return out
    return cases


def _dataset_mean_of_batch_means(model, loss_fn, inputs, targets, batch_size):
    """The mistake: averaging the batch means, so the smaller last batch weighs too much."""
    with torch.no_grad():
        means = [float(loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]))
                 for i in range(0, len(inputs), batch_size)]
    return sum(means) / len(means)


def _dataset_drop_last(model, loss_fn, inputs, targets, batch_size):
    n = len(inputs) // batch_size * batch_size
    with torch.no_grad():
        return float(loss_fn(model(inputs[:n]), targets[:n]))


_DATASET_HINTS = (
    Hint(_dataset_mean_of_batch_means, "this matches the mean of the minibatch means: when the "
         "last batch is smaller its examples weigh more. Weight each batch's mean by its size."),
    Hint(_dataset_drop_last, "this matches dropping the last, smaller batch: every example "
         "counts."),
)

register(
    Check("dataset_loss", "even_batches", "equals the full-batch loss when batches divide |D|",
          _dataset_cases([(32, 8), (12, 12)]), _reference_dataset_loss, rtol=1.3e-6, atol=1e-5,
          hints=_DATASET_HINTS),
    Check("dataset_loss", "last_batch_smaller",
          "equals the full-batch loss when the last batch is smaller",
          _dataset_cases([(30, 8), (7, 4), (5, 16)]), _reference_dataset_loss, rtol=1.3e-6,
          atol=1e-5, hints=_DATASET_HINTS, points=2),
)
