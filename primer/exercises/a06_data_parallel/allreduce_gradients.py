"""allreduce_gradients: the average gradient on every rank, so that K data-parallel steps equal K
single-process steps on the full batch."""

from __future__ import annotations

from typing import Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from
from primer.grading import Case, Check, Hint, register
from primer.launch import DeadlockError, WorkerError, launch

from .launches import (
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    CallCounts,
    _data,
    _numpy,
    _reference,
    _reference_cached,
    _seeded_model,
    _shard,
    _tensors,
)

_WIDTHS = (6, 16, 16, 3)


@_reference
def _reference_allreduce_gradients(model: nn.Module) -> None:
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)


class _FullBatch:
    """The reference of `matches_single_process`: one process trains on the whole batch."""

    def __repr__(self):
        return "single-process full-batch training"


FULL_BATCH = _FullBatch()


def _gradients_worker(rank, world_size, fn, seed, frozen, calls):
    calls.watch(rank)
    model = _seeded_model(seed, *_WIDTHS)
    if frozen:
        model[0].bias.requires_grad_(False)  # a frozen parameter has no gradient
    x, y = _data(seed + 1, 4 * world_size, _WIDTHS[0], _WIDTHS[-1])
    F.mse_loss(model(_shard(x, rank, world_size)), _shard(y, rank, world_size)).backward()
    fn(model)
    return [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]


@_reference_cached
def _run_gradients(fn, case: Case):
    world_size, seed, frozen = case.args
    return _tensors(_launch_counted(_gradients_worker, world_size, fn, seed, frozen))


def _launch_counted(worker, world_size, *args):
    """launch(worker, ...), with a deadlock's or a rank's error's cause named when the ranks'
    calls of all_reduce show it (CallCounts)."""
    calls = CallCounts(world_size, ("all_reduce",))
    try:
        return launch(worker, world_size, *args, calls, timeout=LAUNCH_TIMEOUT)
    except (DeadlockError, WorkerError) as error:
        raise calls.explain(error) from None


def _train(model, x, y, steps: int, sync: Callable | None):
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        if sync is not None:
            sync(model)
        opt.step()
    return _numpy(model.parameters())


def _training_worker(rank, world_size, fn, seed, steps, calls):
    calls.watch(rank)
    model = _seeded_model(seed, *_WIDTHS)
    x, y = _data(seed + 1, 4 * world_size, _WIDTHS[0], _WIDTHS[-1])
    return _train(model, _shard(x, rank, world_size), _shard(y, rank, world_size), steps, fn)


def _run_training(fn, case: Case):
    """K steps of SGD; returns every rank's parameters afterwards."""
    world_size, seed, steps = case.args
    if fn is FULL_BATCH:  # the derivation: the same K steps in one process on the whole batch
        model = _seeded_model(seed, *_WIDTHS)
        x, y = _data(seed + 1, 4 * world_size, _WIDTHS[0], _WIDTHS[-1])
        return _tensors([_train(model, x, y, steps, None)] * world_size)
    return _tensors(_launch_counted(_training_worker, world_size, fn, seed, steps))


def _gradient_cases(gen):
    return [Case("2 ranks", (2, seed_from(gen), False)),
            Case("3 ranks, one parameter frozen (its .grad is None)", (3, seed_from(gen), True))]


def _training_cases(gen):
    return [Case(f"{w} ranks, 5 SGD steps on shards of a batch of {4 * w}", (w, seed_from(gen), 5))
            for w in (2, 3)]


def _allreduce_sum(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)


def _allreduce_reduce_to_rank0(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.reduce(p.grad, dst=0)
            if dist.get_rank() == 0:
                p.grad /= dist.get_world_size()


def _allreduce_reduce_then_divide(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.reduce(p.grad, dst=0)  # the other ranks keep what gloo left in their buffer
            p.grad /= dist.get_world_size()


def _allreduce_divide_by_two(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= 2


def _allreduce_nothing(model):
    pass  # e.g. all_reduce of p.grad.clone(), whose result is never written back


def _allreduce_parameters(model):
    with torch.no_grad():
        for p in model.parameters():
            dist.all_reduce(p, op=dist.ReduceOp.AVG)


def _allreduce_average_twice(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
            p.grad /= dist.get_world_size()


def _allreduce_divide_by_rank(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_rank() + 1


_ALLREDUCE_HINTS = (
    Hint(_allreduce_divide_by_rank, "this matches dividing by the rank (+ 1): the ranks then hold "
         "different gradients; divide the sum by dist.get_world_size(), the same on every rank."),
    Hint(_allreduce_sum, "this matches summing the gradients: divide by the world size to get "
         "the average (or use op=ReduceOp.AVG)."),
    *(Hint(mistake, "only rank 0 received the averaged gradient (dist.reduce): use "
           "dist.all_reduce so that every rank takes the same step.")
      for mistake in (_allreduce_reduce_to_rank0, _allreduce_reduce_then_divide)),
    Hint(_allreduce_divide_by_two, "this matches dividing the sum by 2 whatever the number of "
         "ranks: divide by dist.get_world_size() (here 3), or use op=ReduceOp.AVG."),
    Hint(_allreduce_average_twice, "this matches dividing twice: op=ReduceOp.AVG already "
         "averages, so either use it or sum and divide by the world size, not both."),
)
# On one backward, reducing a clone and averaging the parameters both leave p.grad as it was:
# one sentence for both. Over K steps of training they differ, and each has its own.
_UNCHANGED = ("the gradients came back unchanged: all_reduce each p.grad itself, in place (not a "
              "clone of it, whose result is never written back, and not the parameters).")
_AVERAGES_HINTS = _ALLREDUCE_HINTS + (
    Hint(_allreduce_nothing, _UNCHANGED),
    Hint(_allreduce_parameters, _UNCHANGED),
)
_TRAINING_HINTS = _ALLREDUCE_HINTS + (
    Hint(_allreduce_nothing, "every rank trained on its own shard: the gradients were never "
         "averaged. all_reduce each p.grad itself, in place (not a clone of it)."),
    Hint(_allreduce_parameters, "this matches averaging the parameters instead of the "
         "gradients: all_reduce p.grad (between backward() and step()), not p."),
)

register(
    Check("allreduce_gradients", "averages", "leaves the average gradient over ranks on every rank",
          _gradient_cases, _reference_allreduce_gradients, run=_run_gradients,
          hints=_AVERAGES_HINTS, timeout=CHECK_TIMEOUT, points=2, levels=("rank", "parameter")),
    Check("allreduce_gradients", "matches_single_process",
          "K data-parallel steps on shards equal K single-process steps on the full batch",
          _training_cases, FULL_BATCH, run=_run_training, hints=_TRAINING_HINTS,
          timeout=CHECK_TIMEOUT, points=2, levels=("rank", "parameter")),
)
