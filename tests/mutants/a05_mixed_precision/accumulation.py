"""accumulate_gradients and train_with_accumulation: wrong and right learner implementations."""

import math

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- accumulate_gradients


@mutant("accumulate_gradients", hint="without dividing", fails=("even_split", "last_smaller"))
def accumulate_no_division(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for i in range(0, len(inputs), micro_batch_size):
        loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size]).backward()


@mutant("accumulate_gradients", hint="averaging the micro-batch means", fails=("last_smaller",))
def accumulate_mean_of_means(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    k = math.ceil(len(inputs) / micro_batch_size)
    for i in range(0, len(inputs), micro_batch_size):
        (loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size]) / k).backward()


@mutant("accumulate_gradients", hint="dropping the last", fails=("last_smaller",))
def accumulate_drop_last(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    k = len(inputs) // micro_batch_size
    for i in range(k):
        sl = slice(i * micro_batch_size, (i + 1) * micro_batch_size)
        (loss_fn(model(inputs[sl]), targets[sl]) / k).backward()


@mutant("accumulate_gradients", hint="left over", fails=("clears_old_gradients",))
def accumulate_without_zero_grad(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@mutant("accumulate_gradients", fails=("even_split",))
def accumulate_keeps_only_last(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        model.zero_grad()
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@alternative("accumulate_gradients")
def accumulate_with_autograd_grad(model, loss_fn, inputs, targets, micro_batch_size):
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    n = inputs.shape[0]
    for start in range(0, n, micro_batch_size):
        x, y = inputs[start:start + micro_batch_size], targets[start:start + micro_batch_size]
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
        for t, g in zip(total, grads):
            t.add_(g, alpha=x.shape[0] / n)
    for p, t in zip(params, total):
        p.grad = t


@alternative("accumulate_gradients")
def accumulate_sum_reduction(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad(set_to_none=True)
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        loss = loss_fn(model(x), y) * x.shape[0]  # the micro-batch's sum of losses
        (loss / inputs.shape[0]).backward()


# --------------------------------------------------------------------------- train_with_accumulation


def _accumulate(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@mutant("train_with_accumulation", hint="one optimizer step per micro-batch")
def train_steps_every_micro_batch(model, optimizer, loss_fn, inputs, targets, batch_size,
                                  micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


@mutant("train_with_accumulation", hint="one step on the whole dataset")
def train_one_big_step(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    _accumulate(model, loss_fn, inputs, targets, micro_batch_size)
    optimizer.step()


@mutant("train_with_accumulation")
def train_skips_last_batch(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for start in range(0, len(inputs) - batch_size + 1, batch_size):
        _accumulate(model, loss_fn, inputs[start:start + batch_size],
                    targets[start:start + batch_size], micro_batch_size)
        optimizer.step()


@alternative("train_with_accumulation")
def train_with_split(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        optimizer.zero_grad()
        _accumulate(model, loss_fn, x, y, micro_batch_size)
        optimizer.step()
