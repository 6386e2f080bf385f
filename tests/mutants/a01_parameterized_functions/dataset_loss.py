"""Assignment 01, dataset_loss: mistakes a learner might make, and correct answers written differently."""

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
