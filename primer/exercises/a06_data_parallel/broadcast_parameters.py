"""broadcast_parameters: every rank ends with rank src's parameters and buffers."""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

from primer.exercises._common import seed_from
from primer.grading import Case, Check, Hint, register
from primer.launch import DeadlockError, launch

from .launches import (
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    CallCounts,
    _numpy,
    _reference,
    _reference_cached,
    _seeded_model,
    _tensors,
)


@_reference
def _reference_broadcast(model: nn.Module, src: int = 0) -> None:
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src)


def _broadcast_worker(rank, world_size, fn, seed, src, batchnorm, calls):
    calls.watch(rank)
    # Every rank initializes its replica from a different seed: only a broadcast makes them equal.
    model = _seeded_model(seed + 1000 * rank, 5, 7, 3, batchnorm=batchnorm)
    storage = [t.data_ptr() for t in model.state_dict().values()]
    if src is None:
        fn(model)
    else:
        fn(model, src=src)
    return {"state_dict": _numpy(model.state_dict().values()),
            _IN_PLACE: [t.data_ptr() for t in model.state_dict().values()] == storage}


_IN_PLACE = "written in place (the model keeps its own tensors)"


@_reference_cached
def _run_broadcast(fn, case: Case):
    world_size, seed, src, batchnorm = case.args
    calls = CallCounts(world_size, ("broadcast",))
    try:
        return _tensors(launch(_broadcast_worker, world_size, fn, seed, src, batchnorm, calls,
                               timeout=LAUNCH_TIMEOUT))
    except DeadlockError as error:
        raise calls.explain(error) from None


def _broadcast_cases(sources, batchnorm=False):
    def cases(gen):
        out = []
        for world_size, src in sources:
            label = f"{world_size} ranks, " + ("src left at its default" if src is None
                                              else f"src={src}")
            out.append(Case(label + (", model with BatchNorm buffers" if batchnorm else ""),
                            (world_size, seed_from(gen), src, batchnorm)))
        return out
    return cases


def _broadcast_from_zero(model, src=0):
    _reference_broadcast(model, 0)


def _broadcast_average(model, src=0):
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                dist.all_reduce(tensor, op=dist.ReduceOp.AVG)


def _broadcast_parameters_only(model, src=0):
    with torch.no_grad():
        for p in model.parameters():
            dist.broadcast(p, src)


def _broadcast_skipped(model, src=0):
    pass


def _broadcast_floating_point_only(model, src=0):
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                dist.broadcast(tensor, src)


def _broadcast_into_new_tensors(model, src=0):
    with torch.no_grad():
        for tensor in [*model.parameters(), *model.buffers()]:
            received = tensor.detach().clone()
            dist.broadcast(received, src)
            tensor.data = received  # the right values, in a new tensor


_BROADCAST_HINTS = (
    Hint(_broadcast_skipped, "every rank kept its own weights: dist.broadcast writes into the "
         "tensor it is given, so give it the model's own tensors (those of model.state_dict()), "
         "not copies or clones whose result is never written back."),
    Hint(_broadcast_floating_point_only, "the integer buffer num_batches_tracked was not "
         "broadcast: broadcast every tensor of model.state_dict(), the integer ones too."),
    Hint(_broadcast_into_new_tensors, "the values are right, but the model's tensors were "
         "replaced by new ones (p.data = ..., a new Parameter, set_()): write in place, into the "
         "tensors model.state_dict() gives you."),
    Hint(_broadcast_from_zero, "every rank ended with rank 0's weights: broadcast from `src`."),
    Hint(_broadcast_average, "this matches averaging the replicas (all_reduce); a broadcast "
         "copies rank src's tensors unchanged to every rank."),
    Hint(_broadcast_parameters_only, "the parameters match but the buffers do not (BatchNorm's "
         "running statistics): broadcast every tensor of model.state_dict(), or model.buffers() "
         "too."),
)

register(
    Check("broadcast_parameters", "from_rank_0", "every rank ends with rank 0's weights",
          _broadcast_cases([(2, None), (3, None)]), _reference_broadcast, run=_run_broadcast,
          exact=True, hints=_BROADCAST_HINTS, timeout=CHECK_TIMEOUT, levels=("rank", "state_dict entry")),
    Check("broadcast_parameters", "any_source", "every rank ends with rank src's weights",
          _broadcast_cases([(2, 1), (3, 2)]), _reference_broadcast, run=_run_broadcast,
          exact=True, hints=_BROADCAST_HINTS, timeout=CHECK_TIMEOUT, levels=("rank", "state_dict entry")),
    Check("broadcast_parameters", "buffers", "broadcasts buffers (BatchNorm statistics) too",
          _broadcast_cases([(2, 1), (3, 0)], batchnorm=True), _reference_broadcast,
          run=_run_broadcast, exact=True, hints=_BROADCAST_HINTS, timeout=CHECK_TIMEOUT,
          levels=("rank", "state_dict entry")),
)
