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


@mutant("accumulate_gradients", hint="clearing the gradients inside the loop", fails=("even_split",))
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


@mutant("accumulate_gradients", hint="micro_batch_size / len(inputs)", fails=("last_smaller",))
def accumulate_nominal_micro_batch_weight(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for i in range(0, len(inputs), micro_batch_size):
        loss = loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size])
        (loss * micro_batch_size / len(inputs)).backward()


@mutant("accumulate_gradients", hint="dividing each micro-batch's loss by len(inputs)",
        fails=("even_split",))
def accumulate_divides_mean_by_batch(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for i in range(0, len(inputs), micro_batch_size):
        loss = loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size])
        (loss / len(inputs)).backward()


@mutant("accumulate_gradients", hint="dropping the last", fails=("last_smaller",))
def accumulate_drop_last_full_weights(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for i in range(0, len(inputs) - micro_batch_size + 1, micro_batch_size):
        loss = loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size])
        (loss * micro_batch_size / len(inputs)).backward()


@mutant("accumulate_gradients", hint="concatenating the micro-batches", fails=("micro_batches",))
def accumulate_by_concatenating(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    outputs = [model(x) for x in inputs.split(micro_batch_size)]
    loss_fn(torch.cat(outputs), targets).backward()


@mutant("accumulate_gradients", hint="with a stride", fails=("micro_batches",))
def accumulate_strided_micro_batches(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    k = math.ceil(len(inputs) / micro_batch_size)
    for j in range(k):
        (loss_fn(model(inputs[j::k]), targets[j::k]) * len(inputs[j::k]) / len(inputs)).backward()


@alternative("accumulate_gradients")
def accumulate_with_index_loop(model, loss_fn, inputs, targets, micro_batch_size):
    for p in model.parameters():
        p.grad = None
    n = len(inputs)
    for k in range(math.ceil(n / micro_batch_size)):
        lo, hi = k * micro_batch_size, min((k + 1) * micro_batch_size, n)
        loss_fn(model(inputs[lo:hi]), targets[lo:hi]).mul((hi - lo) / n).backward()


@mutant("accumulate_gradients", hint="calling backward() once at the end", fails=("micro_batches",))
def accumulate_summed_losses(model, loss_fn, inputs, targets, micro_batch_size):
    """(A blind tester's answer: the weighted losses added up, one backward().)"""
    model.zero_grad()
    losses = [loss_fn(model(x), y) * len(x) / len(inputs)
              for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size))]
    torch.stack(losses).sum().backward()


@mutant("accumulate_gradients", hint="as if every micro-batch were full", fails=("last_smaller",))
def accumulate_assumes_full_micro_batches(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    chunks = list(zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)))
    for x, y in chunks:
        (loss_fn(model(x), y) * len(x) / (len(chunks) * micro_batch_size)).backward()


@alternative("accumulate_gradients")
def accumulate_then_divide(model, loss_fn, inputs, targets, micro_batch_size):
    """(A blind tester's answer: backward of each micro-batch's summed loss, .grad / n at the end.)"""
    for p in model.parameters():
        p.grad = None
    for x, y in zip(torch.split(inputs, micro_batch_size), torch.split(targets, micro_batch_size)):
        (loss_fn(model(x), y) * x.shape[0]).backward()
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p.grad /= inputs.shape[0]


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


@mutant("train_with_accumulation", hint="skipping the last, smaller batch")
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


@mutant("train_with_accumulation", hint="between accumulating and optimizer.step()")
def train_clears_before_step(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for start in range(0, len(inputs), batch_size):
        _accumulate(model, loss_fn, inputs[start:start + batch_size],
                    targets[start:start + batch_size], micro_batch_size)
        optimizer.zero_grad()
        optimizer.step()


@mutant("train_with_accumulation", hint="before accumulating the batch's gradient")
def train_steps_before_accumulating(model, optimizer, loss_fn, inputs, targets, batch_size,
                                    micro_batch_size):
    for start in range(0, len(inputs), batch_size):
        optimizer.step()
        _accumulate(model, loss_fn, inputs[start:start + batch_size],
                    targets[start:start + batch_size], micro_batch_size)


@mutant("train_with_accumulation", hint="share of the whole dataset")
def train_weights_by_dataset(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        optimizer.zero_grad()
        for xm, ym in zip(x.split(micro_batch_size), y.split(micro_batch_size)):
            (loss_fn(model(xm), ym) * len(xm) / len(inputs)).backward()
        optimizer.step()


@mutant("train_with_accumulation", hint="never clearing the gradients")
def train_never_clears(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        for xm, ym in zip(x.split(micro_batch_size), y.split(micro_batch_size)):
            (loss_fn(model(xm), ym) * len(xm) / len(x)).backward()
        optimizer.step()


def _accumulate_mean_of_means(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    chunks = list(zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)))
    for x, y in chunks:
        (loss_fn(model(x), y) / len(chunks)).backward()


def _accumulate_clearing_each_time(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        model.zero_grad()
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@mutant("train_with_accumulation", hint="weights every micro-batch 1/K")
def train_over_mean_of_means(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        _accumulate_mean_of_means(model, loss_fn, x, y, micro_batch_size)
        optimizer.step()


@mutant("train_with_accumulation", hint="clears the gradients before every micro-batch")
def train_over_clearing_accumulate(model, optimizer, loss_fn, inputs, targets, batch_size,
                                   micro_batch_size):
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        _accumulate_clearing_each_time(model, loss_fn, x, y, micro_batch_size)
        optimizer.step()


@alternative("train_with_accumulation")
def train_with_while_loop(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    start = 0
    while start < inputs.shape[0]:
        stop = min(start + batch_size, inputs.shape[0])
        _accumulate(model, loss_fn, inputs[start:stop], targets[start:stop], micro_batch_size)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        start = stop


@mutant("train_with_accumulation", hint="gradient of the whole dataset at every step")
def train_on_everything_each_step(model, optimizer, loss_fn, inputs, targets, batch_size,
                                  micro_batch_size):
    for _ in range(math.ceil(len(inputs) / batch_size)):
        _accumulate(model, loss_fn, inputs, targets, micro_batch_size)
        optimizer.step()


@mutant("train_with_accumulation", hint="swapping batch_size and micro_batch_size")
def train_with_sizes_swapped(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        _accumulate(model, loss_fn, x, y, batch_size)
        optimizer.step()
