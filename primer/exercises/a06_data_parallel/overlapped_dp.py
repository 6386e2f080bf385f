"""OverlappedDP: gradients all-reduced in buckets, asynchronously, while backward still runs."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from
from primer.grading import Case, Check, register
from primer.launch import launch

from .launches import (
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    _data,
    _numpy,
    _reference,
    _reference_cached,
    _seeded_model,
    _shard,
    _tensors,
)

_DP_WIDTHS = (16, 64, 64, 64, 4)  # 9,668 parameters in 8 tensors, about 38 KB of float32


@_reference
class _DDPReference:
    """torch's DistributedDataParallel behind the interface the learner's class has."""

    def __init__(self, model: nn.Module, bucket_cap_mb: float = 25.0, hook: bool = False):
        from torch.nn.parallel import DistributedDataParallel

        self.ddp = DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
        if hook:  # torch's default all-reduce hook, which goes through dist.all_reduce
            from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

            self.ddp.register_comm_hook(None, default_hooks.allreduce_hook)

    def __call__(self, *args, **kwargs):
        return self.ddp(*args, **kwargs)

    def finish_gradient_synchronization(self):
        pass  # DDP has waited for its all-reduces at the end of backward


def _ddp_with_hook(model, bucket_cap_mb=25.0):
    return _DDPReference(model, bucket_cap_mb, hook=True)


def _overlap_worker(rank, world_size, cls, seed, steps, bucket_cap_mb, record):
    model = _seeded_model(seed, *_DP_WIDTHS)
    params = list(model.parameters())
    log: list[dict] = []
    state = {"ready": 0, "in_backward": False}
    if record:
        # Registered before the learner's hooks, so it runs first: how many gradients exist.
        for p in params:
            p.register_post_accumulate_grad_hook(lambda p: state.__setitem__("ready", state["ready"] + 1))
        original = dist.all_reduce

        def recording(tensor, *args, **kwargs):
            async_op = kwargs.get("async_op", args[2] if len(args) > 2 else False)
            log.append({"numel": tensor.numel(), "async": bool(async_op), "ready": state["ready"],
                        "in_backward": state["in_backward"]})
            return original(tensor, *args, **kwargs)
        dist.all_reduce = recording
    wrapped = cls(model, bucket_cap_mb=bucket_cap_mb)
    x, y = _data(seed + 1, 8 * world_size, _DP_WIDTHS[0], _DP_WIDTHS[-1])
    x, y = _shard(x, rank, world_size), _shard(y, rank, world_size)
    opt = torch.optim.SGD(params, lr=0.1)
    for _ in range(steps):
        opt.zero_grad()
        log.clear()
        state["ready"] = 0
        loss = F.mse_loss(wrapped(x), y)
        state["in_backward"] = True
        loss.backward()
        state["in_backward"] = False
        wrapped.finish_gradient_synchronization()
        opt.step()
    return {"params": _numpy(params), "log": log, "numel": sum(p.numel() for p in params),
            "tensors": len(params)}


@_reference_cached
def _run_matches_ddp(cls, case: Case):
    world_size, seed, steps, cap = case.args
    results = launch(_overlap_worker, world_size, cls, seed, steps, cap, False,
                     timeout=LAUNCH_TIMEOUT)
    return [_tensors(r["params"]) for r in results]


_OVERLAP = ("every gradient is all-reduced exactly once per step",
            "all-reduces are issued during backward",
            "all-reduces are asynchronous (async_op=True)",
            "the first all-reduce starts before backward has produced every gradient",
            "several buckets when the model is larger than bucket_cap_mb",
            "one bucket when the whole model fits in bucket_cap_mb")


@_reference_cached
def _run_overlap(cls, case: Case):
    """What the all-reduces of the last step looked like (the first step of DDP uses one bucket
    for the whole model; it rebuckets after that), as the properties in _OVERLAP."""
    world_size, seed, steps, cap = case.args
    if cls is _DDPReference:
        cls = _ddp_with_hook
    results = launch(_overlap_worker, world_size, cls, seed, steps, cap, True,
                     timeout=LAUNCH_TIMEOUT)
    log, numel = results[0]["log"], results[0]["numel"]
    fits = numel * 4 <= cap * 2**20
    out = {
        _OVERLAP[0]: sum(e["numel"] for e in log) == numel,
        _OVERLAP[1]: bool(log) and all(e["in_backward"] for e in log),
        _OVERLAP[2]: bool(log) and all(e["async"] for e in log),
    }
    if fits:
        out[_OVERLAP[5]] = len(log) == 1
    else:
        out[_OVERLAP[3]] = bool(log) and log[0]["ready"] < results[0]["tensors"]
        out[_OVERLAP[4]] = len(log) >= 2
    return out


def _dp_cases(specs):
    def cases(gen):
        return [Case(f"{w} ranks, bucket_cap_mb={cap}, {steps} steps", (w, seed_from(gen), steps, cap))
                for w, cap, steps in specs]
    return cases


register(
    Check("OverlappedDP", "matches_ddp", "K steps give the same parameters as DDP",
          _dp_cases([(2, 0.02, 4), (3, 0.01, 4)]), _DDPReference, run=_run_matches_ddp,
          timeout=CHECK_TIMEOUT, points=2),
    Check("OverlappedDP", "overlaps_backward",
          "buckets are all-reduced asynchronously while backward still runs",
          _dp_cases([(2, 0.02, 3), (2, 25.0, 3)]), _DDPReference, run=_run_overlap,
          timeout=CHECK_TIMEOUT, points=2),
)
