"""Assignment 06, primer §3.5–3.6: data parallelism with gloo, from notebook cells.

Every distributed check runs the learner's object on several gloo ranks with `primer.launch`
(forked workers, a short deadline) and compares with torch.distributed itself: its collectives,
`DistributedSampler` and `DistributedDataParallel`. A check's `run` does the whole procedure
(build the per-rank model from a seed, train K steps, ...) inside the workers and returns plain
tensors. A learner whose ranks deadlock fails with a message that says "deadlock" within
`LAUNCH_TIMEOUT` seconds; a rank that raises fails with that rank's error.
Mutants used to test these checks: tests/mutants/a06_data_parallel.py.
"""

from __future__ import annotations

import copy
import math
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DistributedSampler

from primer.exercises._common import randint, seed_from
from primer.grading import Case, Check, Hint, register
from primer.launch import launch
from primer.rules import forbid

# The process group's timeout in the checks: a send, recv or collective that waits this long is
# reported as a deadlock. Small collectives take milliseconds, so this is a wide margin even on
# a loaded machine. The check's own alarm (CHECK_TIMEOUT) must outlast the launch's deadline
# (LAUNCH_TIMEOUT plus the launcher's grace of a few seconds) so that the launcher reports first.
LAUNCH_TIMEOUT = 4.0
CHECK_TIMEOUT = 20.0

# The collectives, saved before the ring check replaces them (the reference uses the real one).
_ALL_REDUCE = dist.all_reduce


def _reference_cached(run):
    """`run`, remembering the reference's outputs per case.

    A reference's outputs depend only on the case, and each costs a launch of several processes.
    The notebook evaluates each case once, but the test suite evaluates the same cases for the
    solution, every mutant and every alternative: there the reference runs once per case.
    """
    cache: dict = {}

    def cached(obj, case: Case):
        if not getattr(obj, "_primer_reference", False):
            return run(obj, case)
        key = (case.args, tuple(sorted(case.kwargs.items())))
        if key not in cache:
            cache[key] = run(obj, case)
        return copy.deepcopy(cache[key])
    cached.__name__ = run.__name__
    cached.__doc__ = run.__doc__
    return cached


def _reference(obj):
    """Mark a reference object, whose outputs `_reference_cached` may remember."""
    obj._primer_reference = True
    return obj


def _tensors(x):
    """numpy arrays from the workers -> torch tensors (what `compare` expects), recursively."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, list):
        return [_tensors(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_tensors(v) for v in x)
    if isinstance(x, dict):
        return {k: _tensors(v) for k, v in x.items()}
    return x


def _numpy(tensors) -> list[np.ndarray]:
    return [t.detach().numpy().copy() for t in tensors]


def _seeded_model(seed: int, *widths: int, batchnorm: bool = False) -> nn.Module:
    """An MLP with tanh between its Linear layers (and a BatchNorm1d after the first, if asked)."""
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
            if i:
                layers.append(nn.Tanh())
            layers.append(nn.Linear(d_in, d_out))
            if batchnorm and i == 0:
                bn = nn.BatchNorm1d(d_out)
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
                bn.num_batches_tracked.fill_(seed % 1000)
                layers.append(bn)
    return nn.Sequential(*layers)


def _data(seed: int, n: int, d_in: int, d_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g), torch.randn(n, d_out, generator=g)


# Imported once by the grading sandbox before it forks a run per submission: DDP and optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

# --------------------------------------------------------------------------- shard_indices


def _reference_shard(n: int, rank: int, world_size: int) -> list[int]:
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False,
                                 drop_last=True)
    return list(sampler)


def _as_int_list(out):
    if isinstance(out, torch.Tensor):
        return [int(v) for v in out.reshape(-1).tolist()]
    if isinstance(out, (list, tuple, range, np.ndarray)):
        try:
            return [int(v) for v in out]
        except (TypeError, ValueError):
            return out
    return out


def _run_shards(fn, case: Case):
    """Every rank's shard: a list (over ranks) of lists of indices."""
    n, world_size = case.args
    return [_as_int_list(fn(n, rank, world_size)) for rank in range(world_size)]


def _shard_cases(uneven: bool):
    def cases(gen):
        out = []
        for world_size in (2, 3, 4):
            per_rank = 2 + int(randint(gen, 5))
            extra = 1 + int(randint(gen, world_size - 1)) if uneven else 0
            n = per_rank * world_size + extra
            out.append(Case(f"n={n}, world_size={world_size}", (n, world_size)))
        if uneven:
            out.append(Case("n=3, world_size=4 (fewer samples than ranks)", (3, 4)))
        return out
    return cases


def _shard_blocks(n, rank, world_size):
    per_rank = n // world_size
    return list(range(rank * per_rank, (rank + 1) * per_rank))


def _shard_keep_remainder(n, rank, world_size):
    return list(range(rank, n, world_size))


def _shard_padded(n, rank, world_size):
    return list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False))


_SHARD_HINTS = (
    Hint(_shard_blocks, "this matches contiguous blocks (rank r takes r·n/W ... (r+1)·n/W − 1); "
         "DistributedSampler interleaves: rank r takes r, r + W, r + 2W, ..."),
    Hint(_shard_keep_remainder, "this matches keeping the last n mod W samples, so the shards "
         "have unequal sizes; with drop_last=True they are dropped and every rank gets ⌊n/W⌋."),
    Hint(_shard_padded, "this matches drop_last=False: the sampler pads by repeating samples; "
         "with drop_last=True the remainder is dropped instead."),
)

register(
    Check("shard_indices", "even", "interleaves indices like DistributedSampler when W divides n",
          _shard_cases(uneven=False), _reference_shard, run=_run_shards, hints=_SHARD_HINTS),
    Check("shard_indices", "uneven", "drops the remainder so every rank gets ⌊n/W⌋ indices",
          _shard_cases(uneven=True), _reference_shard, run=_run_shards, hints=_SHARD_HINTS),
)

# --------------------------------------------------------------------------- broadcast_parameters


@_reference
def _reference_broadcast(model: nn.Module, src: int = 0) -> None:
    with torch.no_grad():
        for tensor in model.state_dict().values():
            dist.broadcast(tensor, src)


def _broadcast_worker(rank, world_size, fn, seed, src, batchnorm):
    # Every rank initializes its replica from a different seed: only a broadcast makes them equal.
    model = _seeded_model(seed + 1000 * rank, 5, 7, 3, batchnorm=batchnorm)
    if src is None:
        fn(model)
    else:
        fn(model, src=src)
    return _numpy(model.state_dict().values())


@_reference_cached
def _run_broadcast(fn, case: Case):
    world_size, seed, src, batchnorm = case.args
    return _tensors(launch(_broadcast_worker, world_size, fn, seed, src, batchnorm,
                           timeout=LAUNCH_TIMEOUT))


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


_BROADCAST_HINTS = (
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
          exact=True, hints=_BROADCAST_HINTS, timeout=CHECK_TIMEOUT),
    Check("broadcast_parameters", "any_source", "every rank ends with rank src's weights",
          _broadcast_cases([(2, 1), (3, 2)]), _reference_broadcast, run=_run_broadcast,
          exact=True, hints=_BROADCAST_HINTS, timeout=CHECK_TIMEOUT),
    Check("broadcast_parameters", "buffers", "broadcasts buffers (BatchNorm statistics) too",
          _broadcast_cases([(2, 1), (3, 0)], batchnorm=True), _reference_broadcast,
          run=_run_broadcast, exact=True, hints=_BROADCAST_HINTS, timeout=CHECK_TIMEOUT),
)

# --------------------------------------------------------------------------- allreduce_gradients

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


def _shard(x: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    return x[rank::world_size]  # DistributedSampler's interleaving (shuffle=False)


def _gradients_worker(rank, world_size, fn, seed, frozen):
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
    return _tensors(launch(_gradients_worker, world_size, fn, seed, frozen, timeout=LAUNCH_TIMEOUT))


def _train(model, x, y, steps: int, sync: Callable | None):
    opt = torch.optim.SGD(model.parameters(), lr=0.2)
    for _ in range(steps):
        opt.zero_grad()
        F.mse_loss(model(x), y).backward()
        if sync is not None:
            sync(model)
        opt.step()
    return _numpy(model.parameters())


def _training_worker(rank, world_size, fn, seed, steps):
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
    return _tensors(launch(_training_worker, world_size, fn, seed, steps, timeout=LAUNCH_TIMEOUT))


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


_ALLREDUCE_HINTS = (
    Hint(_allreduce_sum, "this matches summing the gradients: divide by the world size to get "
         "the average (or use op=ReduceOp.AVG)."),
    Hint(_allreduce_reduce_to_rank0, "only rank 0 received the averaged gradient (dist.reduce): "
         "use dist.all_reduce so that every rank takes the same step."),
)

register(
    Check("allreduce_gradients", "averages", "leaves the average gradient over ranks on every rank",
          _gradient_cases, _reference_allreduce_gradients, run=_run_gradients,
          hints=_ALLREDUCE_HINTS, timeout=CHECK_TIMEOUT, points=2),
    Check("allreduce_gradients", "matches_single_process",
          "K data-parallel steps on shards equal K single-process steps on the full batch",
          _training_cases, FULL_BATCH, run=_run_training, hints=_ALLREDUCE_HINTS,
          timeout=CHECK_TIMEOUT, points=2),
)

# --------------------------------------------------------------------------- ring_allreduce

_FORBIDDEN = ("all_reduce", "all_gather", "all_gather_into_tensor", "reduce_scatter",
              "reduce_scatter_tensor", "broadcast", "reduce", "all_to_all", "all_to_all_single",
              "gather", "scatter", "all_gather_object", "broadcast_object_list")


@_reference
def _reference_ring(tensor: torch.Tensor) -> torch.Tensor:
    _ALL_REDUCE(tensor)  # torch's own sum all-reduce (the saved function: see _ring_worker)
    return tensor


class _RingDefinition:
    """The reference of `traffic`: what a ring sends, by its definition (see _run_ring_traffic)."""

    def __repr__(self):
        return "the ring algorithm's traffic"


RING_DEFINITION = _RingDefinition()


def _forbid_collectives() -> None:
    """In a worker: collectives raise, so that ring_allreduce can use point-to-point only."""
    def forbidden(name):
        def call(*args, **kwargs):
            raise RuntimeError(f"ring_allreduce may use only dist.isend, dist.irecv, dist.send "
                               f"and dist.recv; it called dist.{name}")
        return call
    for name in _FORBIDDEN:
        setattr(dist, name, forbidden(name))


def _record_sends() -> list[tuple[int, int]]:
    """In a worker: remember (destination, number of elements) of every send."""
    from torch.distributed import distributed_c10d

    sent: list[tuple[int, int]] = []
    for name in ("send", "isend"):
        original = getattr(distributed_c10d, name)

        def recording(tensor, dst=None, *args, _original=original, **kwargs):
            sent.append((int(dst if dst is not None else kwargs.get("group_dst", -1)),
                         tensor.numel()))
            return _original(tensor, dst, *args, **kwargs)
        # Both names: P2POp (batch_isend_irecv) accepts only distributed_c10d's own isend.
        setattr(dist, name, recording)
        setattr(distributed_c10d, name, recording)
    return sent


def _ring_worker(rank, world_size, fn, shape, seed):
    g = torch.Generator().manual_seed(seed + rank)
    tensor = torch.randn(*shape, generator=g)
    _forbid_collectives()  # the workers are forked: this changes nothing in the notebook
    sent = _record_sends()
    fn(tensor)
    return {"tensor": tensor.numpy().copy(), "sent": sent}


@_reference_cached
def _run_ring(fn, case: Case):
    world_size, shape, seed = case.args
    results = launch(_ring_worker, world_size, fn, shape, seed, timeout=LAUNCH_TIMEOUT)
    return [torch.from_numpy(r["tensor"]) for r in results]


_TRAFFIC = ("sends to one neighbour only", "no message larger than ⌈n/W⌉ elements",
            "at most 2(W−1)·⌈n/W⌉ elements sent per rank")


def _run_ring_traffic(fn, case: Case):
    """Properties of what each rank sent. A ring, by definition, sends 2(W−1) messages of at most
    ⌈n/W⌉ elements, all to the next rank; sending whole tensors, or everything to one rank that
    sums and sends back, is correct but is not a ring and moves more data."""
    world_size, shape, seed = case.args
    if fn is RING_DEFINITION:
        return {key: True for key in _TRAFFIC}
    results = launch(_ring_worker, world_size, fn, shape, seed, timeout=LAUNCH_TIMEOUT)
    n, chunk = math.prod(shape), math.ceil(math.prod(shape) / world_size)
    sends = [r["sent"] for r in results]
    return {
        _TRAFFIC[0]: all(len({dst for dst, _ in s}) <= 1 for s in sends),
        _TRAFFIC[1]: all(size <= chunk for s in sends for _, size in s) and n > 0,
        _TRAFFIC[2]: all(sum(size for _, size in s) <= 2 * (world_size - 1) * chunk for s in sends),
    }


def _ring_cases(specs):
    def cases(gen):
        return [Case(f"{w} ranks, tensor of shape {shape}", (w, shape, seed_from(gen)))
                for w, shape in specs]
    return cases


def _ring_mistake(all_gather_start: int = 1, drop_remainder: bool = False, gather: bool = True):
    """A ring with one thing wrong (the hints below)."""
    def ring(tensor):
        rank, world = dist.get_rank(), dist.get_world_size()
        flat = tensor.view(-1)
        if drop_remainder:
            size = flat.numel() // world
            chunks = [flat[i * size:(i + 1) * size] for i in range(world)]
        else:
            chunks = list(flat.tensor_split(world))
        right, left = (rank + 1) % world, (rank - 1) % world
        for step in range(world - 1):
            send, recv = (rank - step) % world, (rank - step - 1) % world
            request = dist.isend(chunks[send], right)
            incoming = torch.empty_like(chunks[recv])
            dist.recv(incoming, left)
            request.wait()
            chunks[recv] += incoming
        if gather:
            for step in range(world - 1):
                send, recv = (rank + all_gather_start - step) % world, (rank - step) % world
                request = dist.isend(chunks[send].clone(), right)
                incoming = torch.empty_like(chunks[recv])
                dist.recv(incoming, left)
                request.wait()
                chunks[recv].copy_(incoming)
        return tensor
    return ring


def _ring_unchanged(tensor):
    return tensor.clone()


_RING_HINTS = (
    Hint(_ring_unchanged, "your tensor was not changed: ring_allreduce sums in place, into the "
         "tensor it is given (like dist.all_reduce)."),
    Hint(_ring_mistake(gather=False), "only one chunk per rank holds the full sum: after the "
         "reduce-scatter phase, an all-gather phase must pass the finished chunks around the ring."),
    Hint(_ring_mistake(all_gather_start=0), "this matches an all-gather that starts from the "
         "wrong chunk: after reduce-scatter, rank r holds the complete sum of chunk (r + 1) mod W; "
         "that is the chunk to send first."),
    Hint(_ring_mistake(drop_remainder=True), "the last n mod W elements were not summed: when W "
         "does not divide n, the chunks differ in size (tensor_split, or sizes ⌈n/W⌉ and ⌊n/W⌋)."),
)

register(
    Check("ring_allreduce", "two_ranks", "sums like dist.all_reduce on 2 ranks",
          _ring_cases([(2, (8,)), (2, (1001,))]), _reference_ring, run=_run_ring,
          hints=_RING_HINTS, timeout=CHECK_TIMEOUT, points=2),
    Check("ring_allreduce", "uneven", "sums like dist.all_reduce on 3 and 4 ranks, any size",
          _ring_cases([(3, (10,)), (4, (7,)), (4, (5, 3)), (3, (2,))]), _reference_ring,
          run=_run_ring, hints=_RING_HINTS, timeout=CHECK_TIMEOUT, points=2),
    Check("ring_allreduce", "traffic", "sends 2(W−1) chunks of ⌈n/W⌉ elements to the next rank",
          _ring_cases([(3, (12,)), (4, (10,))]), RING_DEFINITION, run=_run_ring_traffic,
          timeout=CHECK_TIMEOUT),
)

# --------------------------------------------------------------------------- OverlappedDP

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

# shard_indices: "without using DistributedSampler"; the ring replaces gloo's all-reduce.
forbid("shard_indices", "torch.utils.data.distributed.DistributedSampler")
forbid("ring_allreduce", "torch.distributed.all_reduce", "torch.distributed.distributed_c10d.all_reduce")
