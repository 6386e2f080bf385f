"""dataset_loss: the mean loss over a dataset computed in minibatches, the last one possibly smaller."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

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


def _batches(inputs, targets, size, stop=None):
    stop = len(inputs) if stop is None else stop
    return [(inputs[i:i + size], targets[i:i + size]) for i in range(0, stop, size)]


def _weighted(model, loss_fn, batches, weight=len, divide=None):
    with torch.no_grad():
        total = sum(float(loss_fn(model(x), y)) * weight(x) for x, y in batches if len(x))
    return total / (divide if divide is not None else sum(len(x) for x, _ in batches))


def _dataset_weight_batch_size(model, loss_fn, inputs, targets, batch_size):
    """The mistake: every batch's mean multiplied by batch_size, the smaller last one too."""
    return _weighted(model, loss_fn, _batches(inputs, targets, batch_size),
                     weight=lambda x: batch_size, divide=len(inputs))


def _dataset_divide_padded(model, loss_fn, inputs, targets, batch_size):
    """The mistake: the weighted sum divided by (number of batches) × batch_size."""
    batches = _batches(inputs, targets, batch_size)
    return _weighted(model, loss_fn, batches, divide=len(batches) * batch_size)


def _dataset_sum_of_means(model, loss_fn, inputs, targets, batch_size):
    """The mistake: the batch means added up (not weighted), divided by the number of examples."""
    return _weighted(model, loss_fn, _batches(inputs, targets, batch_size), weight=lambda x: 1,
                     divide=len(inputs))


def _dataset_short_slices(model, loss_fn, inputs, targets, batch_size):
    """The mistake: inputs[i:i + batch_size - 1], one example lost per batch."""
    batches = [(x[:-1], y[:-1]) for x, y in _batches(inputs, targets, batch_size)]
    return _weighted(model, loss_fn, batches)


def _dataset_range_short(model, loss_fn, inputs, targets, batch_size):
    """The mistake: range(0, len(inputs) - batch_size, batch_size), the last batch never reached."""
    return _weighted(model, loss_fn, _batches(inputs, targets, batch_size, len(inputs) - batch_size))


def _dataset_reduction_sum(model, loss_fn, inputs, targets, batch_size):
    """The mistake: loss_fn(..., reduction="sum") per batch, divided by the number of examples:
    for targets of several columns (regression) that sums over the columns too."""
    with torch.no_grad():
        total = sum(float(loss_fn(model(x), y, reduction="sum"))
                    for x, y in _batches(inputs, targets, batch_size))
    return total / len(inputs)


# Two ways to leave out the last batch (len // batch_size batches, or a range that stops at
# len - batch_size) give the same numbers when the last batch is smaller: one sentence for both.
_LAST_LEFT_OUT = ("this matches dropping the last batch: every example counts, the smaller last batch's too. "
                  "range(0, len(inputs), batch_size) reaches every batch.")

_DATASET_HINTS = (
    Hint(_dataset_mean_of_batch_means, "this matches the mean of the minibatch means: when the "
         "last batch is smaller its examples weigh more. Weight each batch's mean by its size."),
    Hint(_dataset_drop_last, _LAST_LEFT_OUT),
    Hint(_dataset_weight_batch_size, "this matches weighting every batch's mean by batch_size: "
         "the last batch may be smaller, weight each by its own size (len(x))."),
    Hint(_dataset_divide_padded, "this matches dividing by (number of batches) × batch_size: "
         "divide by the number of examples, len(inputs)."),
    Hint(_dataset_sum_of_means, "this matches adding the batch means and dividing by the number "
         "of examples: multiply each batch's mean by its size first."),
    Hint(_dataset_short_slices, "this matches batches of batch_size - 1 examples (one lost per "
         "batch): the batch starting at i is inputs[i:i + batch_size]."),
    Hint(_dataset_range_short, _LAST_LEFT_OUT),
    Hint(_dataset_reduction_sum, "this matches calling loss_fn(..., reduction='sum') and dividing "
         "by the number of examples: for a target with several columns (the regression cases) "
         "that sum is over the columns too. Call loss_fn(pred, y) as given (a mean over the "
         "batch) and weight it by the batch's size, len(x)."),
)


class _Recorder(nn.Module):
    """The model, noting the size of every batch it is called on."""

    def __init__(self, model, sizes):
        super().__init__()
        self.model, self.sizes = model, sizes

    def forward(self, x):
        self.sizes.append(len(x))
        return self.model(x)


def _run_minibatches(fn, case):
    """The batch sizes the model saw, and what kind of number came back."""
    model, loss_fn, inputs, targets, batch_size = case.args
    sizes = []
    out = fn(_Recorder(model, sizes), loss_fn, inputs, targets, batch_size)
    kind = "float" if isinstance(out, float) else type(out).__name__
    return {"batch sizes the model saw": sizes, "type of the result": kind}


def _minibatch_reference(model, loss_fn, inputs, targets, batch_size):
    """Consecutive batches of batch_size, each mean weighted by its size; a Python float."""
    return _weighted(model, loss_fn, _batches(inputs, targets, batch_size))


def _dataset_one_batch(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        return float(loss_fn(model(inputs), targets))


def _dataset_returns_tensor(model, loss_fn, inputs, targets, batch_size):
    return torch.tensor(_minibatch_reference(model, loss_fn, inputs, targets, batch_size))


register(
    Check("dataset_loss", "even_batches", "equals the full-batch loss when batches divide |D|",
          _dataset_cases([(32, 8), (12, 12)]), _reference_dataset_loss, rtol=1.3e-6, atol=1e-5,
          hints=_DATASET_HINTS),
    Check("dataset_loss", "last_batch_smaller",
          "equals the full-batch loss when the last batch is smaller",
          _dataset_cases([(30, 8), (7, 4), (5, 16)]), _reference_dataset_loss, rtol=1.3e-6,
          atol=1e-5, hints=_DATASET_HINTS, points=2),
    Check("dataset_loss", "minibatches",
          "goes through the data in consecutive batches of batch_size and returns a Python float",
          _dataset_cases([(30, 8), (12, 12)]), _minibatch_reference, run=_run_minibatches,
          hints=(Hint(_dataset_one_batch, "this matches evaluating the whole dataset in one "
                      "batch: go through it in consecutive batches of batch_size (the last one "
                      "may be smaller)."),
                 Hint(_dataset_returns_tensor, "this matches returning a tensor: return a Python "
                      "float (float(...) or .item())."),
                 Hint(_dataset_drop_last, _LAST_LEFT_OUT),
                 Hint(_dataset_short_slices, "this matches batches of batch_size - 1 examples: "
                      "the batch starting at i is inputs[i:i + batch_size]."),
                 Hint(_dataset_range_short, _LAST_LEFT_OUT))),
)
