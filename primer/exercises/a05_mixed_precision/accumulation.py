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


def _accumulate_weighted(weight, zero_inside=False, drop_last=False):
    """Consecutive micro-batches, loss · weight(len(micro-batch), micro_batch_size, len(inputs))."""
    def accumulate_gradients(model, loss_fn, inputs, targets, micro_batch_size):
        model.zero_grad()
        n = len(inputs) // micro_batch_size * micro_batch_size if drop_last else len(inputs)
        for i in range(0, n, micro_batch_size):
            if zero_inside:
                model.zero_grad()
            x, y = inputs[i:i + micro_batch_size], targets[i:i + micro_batch_size]
            (loss_fn(model(x), y) * weight(len(x), micro_batch_size, len(inputs))).backward()
    return accumulate_gradients


_ACCUMULATE_HINTS = (
    Hint(_accumulate_with("none"), "this matches adding up the micro-batch mean losses' "
         "gradients without dividing: that is K times the full-batch gradient for K "
         "micro-batches. Weight each micro-batch by its share of the examples."),
    Hint(_accumulate_with("count"), "this matches averaging the micro-batch means (dividing "
         "by the number of micro-batches): when the last micro-batch is smaller, its examples "
         "weigh more. Weight each micro-batch's mean loss by len(micro-batch) / len(inputs)."),
    Hint(_accumulate_drop_last, "this matches dropping the last, smaller micro-batch: every "
         "example counts."),
    Hint(_accumulate_weighted(lambda k, micro, n: k / n, drop_last=True), "this matches "
         "dropping the last, smaller micro-batch: every example counts."),
    Hint(_accumulate_weighted(lambda k, micro, n: k / n, zero_inside=True), "this matches "
         "clearing the gradients inside the loop (zero_grad before every micro-batch): only the "
         "last micro-batch's gradient is left. Clear once, before the loop, and let backward() add."),
    Hint(_accumulate_weighted(lambda k, micro, n: micro / n), "this matches weighting every "
         "micro-batch by micro_batch_size / len(inputs): the last one may be smaller, so weight "
         "it by its own size, len(micro-batch) / len(inputs)."),
    Hint(_accumulate_weighted(lambda k, micro, n: 1 / n), "this matches dividing each "
         "micro-batch's loss by len(inputs): loss_fn already returns a mean, so weight it by "
         "len(micro-batch) / len(inputs)."),
    Hint(_accumulate_keeps_stale, "this matches adding to gradients left over from before: "
         "clear them first (model.zero_grad())."),
    Hint(_accumulate_weighted(lambda k, micro, n: k / (math.ceil(n / micro) * micro)), "this "
         "matches weighting by len(micro-batch) / (K·micro_batch_size), as if every micro-batch "
         "were full: the batch has len(inputs) examples, so weight by len(micro-batch) / "
         "len(inputs)."),
)

register(
    Check("accumulate_gradients", "even_split",
          "equals one full-batch backward when micro-batches divide the batch",
          _accumulate_cases([(32, 8), (24, 12)]), _reference_accumulate, run=_run_accumulate,
          levels=("parameter",), hints=_ACCUMULATE_HINTS),
    Check("accumulate_gradients", "last_smaller",
          "equals one full-batch backward when the last micro-batch is smaller",
          _accumulate_cases([(30, 8), (10, 4), (5, 16)]), _reference_accumulate,
          run=_run_accumulate, levels=("parameter",), hints=_ACCUMULATE_HINTS, points=2),
    Check("accumulate_gradients", "clears_old_gradients",
          "starts from zero, not from gradients left over from an earlier step",
          # micro-batches that divide the batch: this check is about the stale gradients only
          _accumulate_cases([(24, 8)], stale=True), _reference_accumulate, run=_run_accumulate,
          levels=("parameter",), hints=_ACCUMULATE_HINTS),
)


# The text asks for one backward() per consecutive micro-batch (only one micro-batch's
# activations in memory), not for any partition of the batch that gives the same gradient.
def _reference_micro_batches(model, loss_fn, inputs, targets, micro_batch_size):
    """What the text prescribes: consecutive slices, one backward() through each loss."""
    model.zero_grad()
    for i in range(0, len(inputs), micro_batch_size):
        x, y = inputs[i:i + micro_batch_size], targets[i:i + micro_batch_size]
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


def _run_micro_batches(fn, case):
    """The examples of each loss_fn call (the targets are their row numbers) and how many
    backward passes went through that call's loss."""
    model, n, micro = case.args
    calls, backward_passes = [], []  # one entry per backward pass through a loss_fn call's loss

    def loss_fn(prediction, target):
        loss = F.mse_loss(prediction, target)
        key = "backward() calls"
        record = {"examples (row numbers of inputs)": target[:, 0].round().long(), key: 0,
                  "backward passes already done when loss_fn is called (one per earlier "
                  "micro-batch)": len(backward_passes)}
        calls.append(record)
        if loss.requires_grad:
            loss.register_hook(lambda grad: backward_passes.append(1))
        if loss.requires_grad:
            loss.register_hook(lambda grad: record.update({key: record[key] + 1}))
        return loss

    inputs = torch.linspace(-1, 1, n * 3).reshape(n, 3)
    targets = torch.arange(n, dtype=torch.float32)[:, None].expand(n, 2).clone()
    fn(model, loss_fn, inputs, targets, micro)
    return calls


def _micro_batch_cases(gen):
    return [Case(f"regression, {n} examples, micro_batch_size={micro}", (mlp(gen, 3, 8, 2), n, micro))
            for n, micro in [(10, 4), (12, 3), (7, 7)]]


def _accumulate_concatenated(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    predictions = [model(inputs[i:i + micro_batch_size]) for i in range(0, len(inputs), micro_batch_size)]
    loss_fn(torch.cat(predictions), targets).backward()


def _accumulate_one_backward(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    total = sum(loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size])
                * len(inputs[i:i + micro_batch_size]) / len(inputs)
                for i in range(0, len(inputs), micro_batch_size))
    total.backward()


def _accumulate_strided(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    k = math.ceil(len(inputs) / micro_batch_size)
    for j in range(k):
        x, y = inputs[j::k], targets[j::k]
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


register(
    Check("accumulate_gradients", "micro_batches",
          "one loss and one backward() per consecutive micro-batch of micro_batch_size examples",
          _micro_batch_cases, _reference_micro_batches, run=_run_micro_batches, levels=("loss_fn call",),
          hints=(Hint(_accumulate_concatenated, "this matches concatenating the micro-batches' "
                      "predictions and calling loss_fn and backward() once: that keeps every "
                      "micro-batch's activations in memory. Compute each micro-batch's loss and "
                      "call backward() on it before the next."),
                 Hint(_accumulate_strided, "this matches micro-batches taken with a stride "
                      "(inputs[j::K]); take consecutive slices inputs[i:i + micro_batch_size]."),
                 Hint(_accumulate_one_backward, "this matches adding up the micro-batch losses "
                      "and calling backward() once at the end: every micro-batch's activations "
                      "stay in memory until then. Call backward() on each micro-batch's loss "
                      "before computing the next one.")),
          ),
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
    for p in model.parameters():  # gradients left over from before (a step must not use them)
        p.grad = torch.full_like(p, 0.5)
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


def _train_loop(accumulate=None, drop_last=False, zero_before_step=False, step_first=False,
                weight_by_dataset=False, never_clear=False, whole_data=False):
    """A training loop over consecutive batches, with one knob per known mistake."""
    def train_with_accumulation(model, optimizer, loss_fn, inputs, targets, batch_size,
                                micro_batch_size):
        stop = len(inputs) - batch_size + 1 if drop_last else len(inputs)
        for start in range(0, stop, batch_size):
            x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
            if whole_data:
                x, y = inputs, targets
            if step_first:
                optimizer.step()
            if accumulate is not None:
                accumulate(model, loss_fn, x, y, micro_batch_size)
            else:
                if not never_clear:
                    model.zero_grad()
                share = len(inputs) if weight_by_dataset else len(x)
                for i in range(0, len(x), micro_batch_size):
                    xm, ym = x[i:i + micro_batch_size], y[i:i + micro_batch_size]
                    (loss_fn(model(xm), ym) * len(xm) / share).backward()
            if zero_before_step:
                optimizer.zero_grad()
            if not step_first:
                optimizer.step()
    return train_with_accumulation


_EXERCISE_7 = ("; the loop itself is right: fix accumulate_gradients (its checks above) and "
               "this passes too.")

_NEVER_CLEARS = ("this matches never clearing the gradients: each step adds the gradients "
                 "of the earlier batches (and of before the loop). accumulate_gradients must "
                 "clear them first (model.zero_grad()), then the loop is right.")

_TRAIN_HINTS = (
    Hint(_train_step_per_micro_batch, "this matches one optimizer step per "
         "micro-batch (small-batch training; also what swapping batch_size and "
         "micro_batch_size gives): step once per batch of batch_size examples, after "
         "accumulating its micro-batches with accumulate_gradients(..., micro_batch_size)."),
    Hint(_train_one_step, "this matches one step on the whole dataset; take one "
         "step per batch of batch_size examples."),
    Hint(_train_loop(drop_last=True), "this matches skipping the last, smaller batch: "
         "it gets its own step too (range(0, len(inputs), batch_size))."),
    Hint(_train_loop(zero_before_step=True), "this matches clearing the gradients between "
         "accumulating and optimizer.step(): the step then sees zero gradients. Step first; "
         "accumulate_gradients clears them for the next batch."),
    Hint(_train_loop(step_first=True), "this matches calling optimizer.step() before "
         "accumulating the batch's gradient (each step uses the previous batch's gradients): "
         "accumulate, then step."),
    Hint(_train_loop(weight_by_dataset=True), "this matches weighting the micro-batches by "
         "their share of the whole dataset: each step needs the gradient of its batch's mean "
         "loss, len(micro-batch) / len(batch)."),
    Hint(_train_loop(never_clear=True), _NEVER_CLEARS),
    Hint(_train_loop(whole_data=True), "this matches accumulating the gradient of the whole "
         "dataset at every step: each step uses its own batch only, inputs[start:start + "
         "batch_size]."),
    Hint(_train_loop(_accumulate_with("count")), "this matches a right loop over an "
         "accumulate_gradients that weights every micro-batch 1/K (mean of the micro-batch "
         "means)" + _EXERCISE_7),
    Hint(_train_loop(_accumulate_with("none")), "this matches a right loop over an "
         "accumulate_gradients that adds the micro-batch gradients without weighting them"
         + _EXERCISE_7),
    Hint(_train_loop(_accumulate_keeps_stale), _NEVER_CLEARS),
    Hint(_train_loop(_accumulate_weighted(lambda k, micro, n: k / n, zero_inside=True)),
         "this matches a right loop over an accumulate_gradients that clears the gradients "
         "before every micro-batch" + _EXERCISE_7),
)

register(
    Check("train_with_accumulation", "matches_large_batch",
          "K optimizer steps with accumulated micro-batches = K steps of large-batch training",
          _train_cases, _reference_train, run=_run_train, levels=("parameter",), hints=_TRAIN_HINTS,
          points=2),
)
