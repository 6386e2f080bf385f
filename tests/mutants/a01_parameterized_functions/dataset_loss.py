"""Assignment 01, dataset_loss: mistakes a learner might make, and correct answers written differently."""

import math

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- dataset_loss


@mutant("dataset_loss", hint="mean of the minibatch means", fails=("last_batch_smaller",))
def dataset_mean_of_means(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        means = [loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]).item()
                 for i in range(0, len(inputs), batch_size)]
    return sum(means) / len(means)


@mutant("dataset_loss", hint="dropping the last", fails=("last_batch_smaller",))
def dataset_drop_last(model, loss_fn, inputs, targets, batch_size):
    n = len(inputs) // batch_size
    with torch.no_grad():
        total = sum(loss_fn(model(inputs[i * batch_size:(i + 1) * batch_size]),
                            targets[i * batch_size:(i + 1) * batch_size]).item() * batch_size
                    for i in range(n))
    return total / (n * batch_size)


@mutant("dataset_loss")
def dataset_sum_not_mean(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        return sum(loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]).item()
                   * len(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size))


@alternative("dataset_loss")
def dataset_with_split_and_tensor(model, loss_fn, inputs, targets, batch_size):
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
            total += loss_fn(model(x), y).double() * x.shape[0]
    return (total / inputs.shape[0]).item()  # the text asks for a Python float (checked)


# Appended (issue "feedback that names what learners get wrong"): each names its mistake.


def _weighted_batches(model, loss_fn, inputs, targets, batch_size, stop=None, size=None):
    total, n = 0.0, 0
    size = batch_size if size is None else size
    with torch.no_grad():
        for i in range(0, len(inputs) if stop is None else stop, batch_size):
            x, y = inputs[i:i + size], targets[i:i + size]
            total += loss_fn(model(x), y).item() * len(x)
            n += len(x)
    return total, n


@mutant("dataset_loss", hint="whole dataset in one batch", fails=("minibatches",))
def dataset_one_batch(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        return loss_fn(model(inputs), targets).item()


@mutant("dataset_loss", hint="by batch_size", fails=("last_batch_smaller",))
def dataset_weight_batch_size(model, loss_fn, inputs, targets, batch_size):
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            total += loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size]).item() * batch_size
    return total / len(inputs)


@mutant("dataset_loss", hint="return a Python float", fails=("minibatches",))
def dataset_returns_tensor(model, loss_fn, inputs, targets, batch_size):
    total = torch.zeros(())
    with torch.no_grad():
        for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
            total = total + loss_fn(model(x), y) * len(x)
    return total / len(inputs)


@mutant("dataset_loss", hint="batch_size - 1 examples", fails=("even_batches",))
def dataset_short_slices(model, loss_fn, inputs, targets, batch_size):
    total, n = _weighted_batches(model, loss_fn, inputs, targets, batch_size, size=batch_size - 1)
    return total / n


@mutant("dataset_loss", hint="(number of batches) × batch_size", fails=("last_batch_smaller",))
def dataset_divide_padded(model, loss_fn, inputs, targets, batch_size):
    total, _ = _weighted_batches(model, loss_fn, inputs, targets, batch_size)
    return total / (math.ceil(len(inputs) / batch_size) * batch_size)


@mutant("dataset_loss", hint="adding the batch means", fails=("even_batches",))
def dataset_sum_of_means(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        return sum(loss_fn(model(x), y).item()
                   for x, y in zip(inputs.split(batch_size), targets.split(batch_size))) / len(inputs)


@mutant("dataset_loss", hint="dropping the last batch", fails=("even_batches",))
def dataset_range_stops_short(model, loss_fn, inputs, targets, batch_size):
    total, n = _weighted_batches(model, loss_fn, inputs, targets, batch_size,
                                 stop=len(inputs) - batch_size)
    return total / max(n, 1)


@alternative("dataset_loss")
def dataset_fsum(model, loss_fn, inputs, targets, batch_size):
    with torch.no_grad():
        parts = [loss_fn(model(x), y).item() * len(x)
                 for x, y in zip(inputs.split(batch_size), targets.split(batch_size))]
    return math.fsum(parts) / len(inputs)


@alternative("dataset_loss")
def dataset_with_a_dataloader(model, loss_fn, inputs, targets, batch_size):
    from torch.utils.data import DataLoader, TensorDataset
    total = torch.zeros((), dtype=torch.float64)
    with torch.no_grad():
        for x, y in DataLoader(TensorDataset(inputs, targets), batch_size=batch_size):
            total += loss_fn(model(x), y).double() * len(x)
    return float(total / len(inputs))


@mutant("dataset_loss", hint="loss_fn(..., reduction='sum')", fails=("even_batches",))
def dataset_reduction_sum_keyword(model, loss_fn, inputs, targets, batch_size):
    """(a tester's answer) reduction='sum' passed to loss_fn, then divided by the examples."""
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(inputs), batch_size):
            total += loss_fn(model(inputs[i:i + batch_size]), targets[i:i + batch_size],
                             reduction="sum").item()
    return total / len(inputs)


@alternative("dataset_loss")
def dataset_running_mean(model, loss_fn, inputs, targets, batch_size):
    """(a tester's answer) a running mean updated batch by batch, under inference_mode."""
    mean, seen = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            xb, yb = inputs[start:start + batch_size], targets[start:start + batch_size]
            seen += len(xb)
            mean += (float(loss_fn(model(xb), yb)) - mean) * len(xb) / seen
    return mean
