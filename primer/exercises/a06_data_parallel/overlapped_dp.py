"""OverlappedDP: gradients all-reduced in buckets, asynchronously, while backward still runs."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from
from primer.grading import Case, Check, Hint, register
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


def _text_buckets(params, bucket_cap_mb) -> list[int]:
    """The sizes (elements) of the buckets the text defines: parameters in reverse order, each
    bucket closed once it holds at least bucket_cap_mb MiB."""
    sizes, numel, nbytes = [], 0, 0
    for p in reversed(params):
        numel, nbytes = numel + p.numel(), nbytes + p.numel() * p.element_size()
        if nbytes >= bucket_cap_mb * 2**20:
            sizes.append(numel)
            numel, nbytes = 0, 0
    return sizes + ([numel] if numel else [])


class _Watched:
    """A work handle that notes in its log entry when it is waited for (or its future taken),
    and whether wait() came while backward still had gradients to produce (`early()`)."""

    def __init__(self, work, entry, early):
        self._work, self._entry, self._early = work, entry, early

    def wait(self, *args, **kwargs):
        self._entry["waited"] = True
        self._entry["waited_early"] = self._entry.get("waited_early", False) or self._early()
        return self._work.wait(*args, **kwargs)

    def get_future(self):
        self._entry["waited"] = True
        return self._work.get_future()

    def __getattr__(self, name):
        return getattr(self._work, name)


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
            entry = {"numel": tensor.numel(), "async": bool(async_op), "ready": state["ready"],
                     "in_backward": state["in_backward"], "waited": not async_op}
            log.append(entry)
            work = original(tensor, *args, **kwargs)
            return _Watched(work, entry, early) if async_op else work

        def early():  # backward runs and not every gradient exists yet: a hook is waiting
            return state["in_backward"] and state["ready"] < len(params)
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
            "tensors": len(params), "buckets": _text_buckets(params, bucket_cap_mb)}


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
            "one bucket when the whole model fits in bucket_cap_mb",
            "every all-reduce is waited for (work.wait()) before the optimizer step",
            "elements per bucket, in the order all-reduced",
            "no all-reduce is waited for while backward still produces gradients")


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
        _OVERLAP[6]: all(e["waited"] for e in log),
    }
    if fits:
        out[_OVERLAP[5]] = len(log) == 1
    else:
        out[_OVERLAP[3]] = bool(log) and log[0]["ready"] < results[0]["tensors"]
        out[_OVERLAP[4]] = len(log) >= 2
        out[_OVERLAP[8]] = not any(e.get("waited_early") for e in log)
    # The buckets the text defines. DDP's own (the reference's) may be cut differently, so the
    # reference's are derived from the rule; the learner's are what their all-reduces carried.
    out[_OVERLAP[7]] = (results[0]["buckets"] if cls is _ddp_with_hook
                        else [e["numel"] for e in log])
    return out


class _BucketMistake(nn.Module):
    """A correct OverlappedDP but for one mistake (the hints below)."""

    def __init__(self, model, bucket_cap_mb=25.0, forward_order=False, at_most=False,
                 divide=True, reset=True, async_op=True, in_hook=True, stale=False,
                 megabyte=2**20, in_elements=False, wait_in_hook=False, copy_back=True,
                 wait_last_only=False):
        super().__init__()
        self.divide, self.reset, self.async_op, self.in_hook = divide, reset, async_op, in_hook
        self.stale = stale  # with reset=False: copy back the first step's flat tensors forever
        self.wait_in_hook, self.copy_back, self.wait_last_only = wait_in_hook, copy_back, wait_last_only
        self.module = model
        params = list(model.parameters())
        order = params if forward_order else params[::-1]
        cap = bucket_cap_mb * megabyte
        self.buckets, current, size = [], [], 0
        for p in order:
            nbytes = p.numel() * (1 if in_elements else p.element_size())
            if at_most and current and size + nbytes > cap:
                self.buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += nbytes
            if not at_most and size >= cap:
                self.buckets.append(current)
                current, size = [], 0
        self.buckets += [current] if current else []
        self.where = {p: i for i, b in enumerate(self.buckets) for p in b}
        self.ready = [0] * len(self.buckets)
        self.work = {}
        for p in params:
            p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p):
        i = self.where[p]
        self.ready[i] += 1
        if self.ready[i] == len(self.buckets[i]) and self.in_hook:
            self._start(i)

    def _start(self, i):
        flat = torch.cat([q.grad.reshape(-1) for q in self.buckets[i]])
        self.work[i] = (flat, dist.all_reduce(flat, async_op=self.async_op))
        if self.wait_in_hook:
            self.work[i][1].wait()

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        for i in range(len(self.buckets)) if not self.in_hook else ():
            self._start(i)
        world = dist.get_world_size() if self.divide else 1
        last = max(self.work, default=None)
        for i, (flat, work) in self.work.items():
            if self.async_op and not self.wait_in_hook and (i == last or not self.wait_last_only):
                work.wait()
            for q, part in zip(self.buckets[i], flat.split([q.numel() for q in self.buckets[i]])):
                if self.copy_back:
                    torch.div(part.view_as(q), world, out=q.grad)
        if not self.stale:
            self.work = {}
        if self.reset:
            self.ready = [0] * len(self.buckets)


def _buckets_forward(model, bucket_cap_mb=25.0):
    return _BucketMistake(model, bucket_cap_mb, forward_order=True)


def _buckets_at_most(model, bucket_cap_mb=25.0):
    return _BucketMistake(model, bucket_cap_mb, at_most=True)


def _mistake(**flags):
    def make(model, bucket_cap_mb=25.0):
        return _BucketMistake(model, **{"bucket_cap_mb": bucket_cap_mb, **flags})
    return make


_MATCHES_HINTS = (
    Hint(_mistake(divide=False), "this matches summing the gradients: divide each summed flat "
         "tensor by the world size as you copy it back (torch.div(part, world_size, out=p.grad))."),
    *(Hint(_mistake(reset=False, stale=stale), "this matches synchronizing only the first "
           "step: the counts of arrived gradients must start from zero again in "
           "finish_gradient_synchronization, or no bucket is ever complete again.")
      for stale in (False, True)),
    Hint(_mistake(copy_back=False), "this matches gradients that were never averaged: the "
         "all-reduce sums the flat tensor, a copy, so copy its result back into each "
         "parameter's .grad (divided by the world size) in finish_gradient_synchronization."),
)

_OVERLAP_HINTS = (
    Hint(_mistake(async_op=False), "this matches a blocking all-reduce in the hook: pass "
         "async_op=True, keep the work handle, and wait for it in "
         "finish_gradient_synchronization, so that communication overlaps backward."),
    Hint(_mistake(in_hook=False), "this matches all-reducing in finish_gradient_synchronization, "
         "after backward: start each bucket's all-reduce in the hook, when its last gradient "
         "arrives."),
    Hint(_buckets_forward, "this matches buckets cut in the order of model.parameters(): take "
         "the parameters in reverse order (reversed(list(model.parameters()))), the order in "
         "which backward produces their gradients."),
    Hint(_buckets_at_most, "this matches buckets that stay at most bucket_cap_mb: keep adding "
         "parameters until the bucket holds at least bucket_cap_mb, then start a new one."),
    Hint(_mistake(wait_in_hook=True), "this matches waiting for each all-reduce in the hook "
         "that starts it (work.wait() right after dist.all_reduce): backward then stops until "
         "the bucket is reduced, so nothing overlaps. Keep the work handle and wait for it in "
         "finish_gradient_synchronization."),
    Hint(_mistake(wait_last_only=True), "not every all-reduce was waited for: call wait() on "
         "the work handle of every bucket, not only the last one, before you copy its flat "
         "tensor back (an all-reduce may still be running)."),
    Hint(_mistake(bucket_cap_mb=0.0), "this matches one bucket per parameter: add parameters "
         "to a bucket until it holds at least bucket_cap_mb MiB, so that each all-reduce "
         "carries several gradients."),
    Hint(_mistake(in_elements=True), "this matches bucket sizes counted in elements: "
         "bucket_cap_mb is in bytes (MiB), p.numel() * p.element_size() for each parameter."),
    Hint(_mistake(megabyte=10**6), "this matches a megabyte of 10^6 bytes: bucket_cap_mb "
         "counts MiB, 2^20 = 1,048,576 bytes."),
)


def _dp_cases(specs):
    def cases(gen):
        return [Case(f"{w} ranks, bucket_cap_mb={cap}, {steps} steps", (w, seed_from(gen), steps, cap))
                for w, cap, steps in specs]
    return cases


# bucket_cap_mb=0.017 cuts the 8 tensors (38,672 bytes) into buckets of 4,484 and 5,184 elements;
# 0.017 × 10^6 bytes would cut them at 4,420 (a megabyte of 10^6 bytes instead of 2^20 shows).
register(
    Check("OverlappedDP", "matches_ddp", "K steps give the same parameters as DDP",
          _dp_cases([(2, 0.02, 4), (3, 0.01, 4)]), _DDPReference, run=_run_matches_ddp,
          hints=_MATCHES_HINTS, timeout=CHECK_TIMEOUT, points=2, levels=("rank", "parameter tensor")),
    Check("OverlappedDP", "overlaps_backward",
          "buckets are all-reduced asynchronously while backward still runs",
          _dp_cases([(2, 0.017, 3), (2, 25.0, 3)]), _DDPReference, run=_run_overlap,
          hints=_OVERLAP_HINTS, timeout=CHECK_TIMEOUT, points=2),
)
