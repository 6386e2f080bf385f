"""accumulate_gradients and train_with_accumulation: gradient accumulation over micro-batches,
checked against the full-batch gradient computed in float64."""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from primer.exercises._common import mlp, randint, randn
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- accumulate_gradients


def _full_batch_grads_float64(model, loss_fn, inputs, targets):
    """The gradient of the full-batch mean loss, computed in float64 (a copy of the model)."""
    exact = copy.deepcopy(model).double()
    exact.zero_grad(set_to_none=True)
    targets = targets.double() if targets.is_floating_point() else targets
    loss_fn(exact(inputs.double()), targets).backward()
    return [p.grad.float() for p in exact.parameters()]


def _reference_accumulate(model, loss_fn, inputs, targets, micro_batch_size):
    for p, g in zip(model.parameters(), _full_batch_grads_float64(model, loss_fn, inputs, targets)):
        p.grad = g


def _run_accumulate(fn, case):
    model, loss_fn, inputs, targets, micro, stale = case.args
    if stale:  # gradients left over from an earlier step
        for p in model.parameters():
            p.grad = torch.ones_like(p)
    fn(model, loss_fn, inputs, targets, micro)
    return [p.grad for p in model.parameters()]


def _accumulate_cases(sizes, stale=False):
    def cases(gen):
        out = []
        for n, micro in sizes:
            out.append(Case(f"classification, {n} examples, micro_batch_size={micro}",
                            (mlp(gen, 6, 16, 4), F.cross_entropy, randn(gen, n, 6),
                             randint(gen, 4, n), micro, stale)))
            out.append(Case(f"regression, {n} examples, micro_batch_size={micro}",
                            (mlp(gen, 3, 8, 2), F.mse_loss, randn(gen, n, 3), randn(gen, n, 2),
                             micro, stale)))
        return out
    return cases


def _accumulate_with(divide):
    def accumulate_gradients(model, loss_fn, inputs, targets, micro_batch_size):
        model.zero_grad()
        chunks = list(zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)))
        for x, y in chunks:
            loss = loss_fn(model(x), y)
            (loss * {"none": 1.0, "count": 1.0 / len(chunks),
                     "size": len(x) / len(inputs)}[divide]).backward()
    return accumulate_gradients


def _accumulate_drop_last(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    n = len(inputs) // micro_batch_size * micro_batch_size
    for i in range(0, n, micro_batch_size):
        (loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size])
         * micro_batch_size / n).backward()


def _accumulate_keeps_stale(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


_ACCUMULATE_HINTS = (
    Hint(_accumulate_with("none"), "this matches adding up the micro-batch mean losses' "
         "gradients without dividing: that is K times the full-batch gradient for K "
         "micro-batches. Weight each micro-batch by its share of the examples."),
    Hint(_accumulate_with("count"), "this matches averaging the micro-batch means (dividing "
         "by the number of micro-batches): when the last micro-batch is smaller, its examples "
         "weigh more. Weight each micro-batch's mean loss by len(micro-batch) / len(inputs)."),
    Hint(_accumulate_drop_last, "this matches dropping the last, smaller micro-batch: every "
         "example counts."),
    Hint(_accumulate_keeps_stale, "this matches adding to gradients left over from before: "
         "clear them first (model.zero_grad())."),
)

register(
    Check("accumulate_gradients", "even_split",
          "equals one full-batch backward when micro-batches divide the batch",
          _accumulate_cases([(32, 8), (24, 12)]), _reference_accumulate, run=_run_accumulate,
          hints=_ACCUMULATE_HINTS),
    Check("accumulate_gradients", "last_smaller",
          "equals one full-batch backward when the last micro-batch is smaller",
          _accumulate_cases([(30, 8), (10, 4), (5, 16)]), _reference_accumulate,
          run=_run_accumulate, hints=_ACCUMULATE_HINTS, points=2),
    Check("accumulate_gradients", "clears_old_gradients",
          "starts from zero, not from gradients left over from an earlier step",
          _accumulate_cases([(20, 8)], stale=True), _reference_accumulate, run=_run_accumulate,
          hints=_ACCUMULATE_HINTS),
)

# --------------------------------------------------------------------------- train_with_accumulation


def _reference_train(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    """Large-batch training: one step per batch with the batch's exact (float64) gradient."""
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
        grads = _full_batch_grads_float64(model, loss_fn, x, y)
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        optimizer.step()


def _run_train(fn, case):
    model, loss_fn, inputs, targets, batch, micro, opt_name = case.args
    optimizer = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "momentum"
                 else torch.optim.SGD(model.parameters(), lr=0.2))
    fn(model, optimizer, loss_fn, inputs, targets, batch, micro)
    return [p.detach() for p in model.parameters()]


def _train_cases(gen):
    out = []
    for n, batch, micro, opt in [(64, 16, 4, "momentum"), (50, 20, 8, "sgd"), (90, 32, 5, "momentum")]:
        steps = math.ceil(n / batch)
        out.append(Case(f"classification, {n} examples, batch {batch} = micro-batches of {micro}, "
                        f"{steps} steps of SGD{' with momentum' if opt == 'momentum' else ''}",
                        (mlp(gen, 6, 16, 4), F.cross_entropy, randn(gen, n, 6), randint(gen, 4, n),
                         batch, micro, opt)))
    return out


def _train_step_per_micro_batch(model, optimizer, loss_fn, inputs, targets, batch_size,
                                micro_batch_size):
    for start in range(0, len(inputs), micro_batch_size):
        optimizer.zero_grad()
        loss_fn(model(inputs[start:start + micro_batch_size]),
                targets[start:start + micro_batch_size]).backward()
        optimizer.step()


def _train_one_step(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    _reference_train(model, optimizer, loss_fn, inputs, targets, len(inputs), micro_batch_size)


register(
    Check("train_with_accumulation", "matches_large_batch",
          "K optimizer steps with accumulated micro-batches = K steps of large-batch training",
          _train_cases, _reference_train, run=_run_train,
          hints=(Hint(_train_step_per_micro_batch, "this matches one optimizer step per "
                      "micro-batch (small-batch training); step once per batch, after "
                      "accumulating all its micro-batches."),
                 Hint(_train_one_step, "this matches one step on the whole dataset; take one "
                      "step per batch of batch_size examples.")), points=2),
)
