"""ring_allreduce: a sum all-reduce from point-to-point sends only; its sums and its traffic."""

from __future__ import annotations

import math

import torch
import torch.distributed as dist

from primer.exercises._common import seed_from
from primer.grading import Case, Check, Hint, register
from primer.launch import DeadlockError, WorkerError, launch
from primer.rules import forbid

from .launches import CHECK_TIMEOUT, LAUNCH_TIMEOUT, CallCounts, _reference, _reference_cached

# The collectives, saved before the ring check replaces them (the reference uses the real one).
_ALL_REDUCE = dist.all_reduce

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


# The process group's own collectives (dist.group.WORLD.allreduce([t]), ...), forbidden too.
_PROCESS_GROUP_FORBIDDEN = ("allreduce", "allreduce_coalesced", "allgather",
                            "allgather_into_tensor_coalesced", "_allgather_base", "reduce_scatter",
                            "_reduce_scatter_base", "broadcast",
                            "reduce", "alltoall", "alltoall_base", "gather", "scatter")


def _forbid_collectives(process_group: bool = True) -> None:
    """In a worker: collectives raise, so that ring_allreduce can use point-to-point only: by
    every name a learner may reach them (dist.x, torch.distributed.distributed_c10d.x, and the
    process group object's methods)."""
    from torch._C._distributed_c10d import ProcessGroup
    from torch.distributed import distributed_c10d

    def forbidden(name):
        def call(*args, **kwargs):
            raise RuntimeError(f"ring_allreduce may use only dist.isend, dist.irecv, dist.send "
                               f"and dist.recv; it called dist.{name}")
        return call
    for name in _FORBIDDEN:
        setattr(dist, name, forbidden(name))
        setattr(distributed_c10d, name, forbidden(name))
    for name in _PROCESS_GROUP_FORBIDDEN if process_group else ():
        if hasattr(ProcessGroup, name):
            setattr(ProcessGroup, name, forbidden(f"group.WORLD.{name}"))


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


def _ring_worker(rank, world_size, fn, shape, seed, calls):
    g = torch.Generator().manual_seed(seed + rank)
    tensor = torch.randn(*shape, generator=g)
    # The workers are forked: this changes nothing in the notebook. The reference's saved
    # dist.all_reduce goes through the process group's own allreduce, which stays for it.
    _forbid_collectives(process_group=not getattr(fn, "_primer_reference", False))
    sent = _record_sends()
    calls.watch(rank)
    calls.watch_chunk(rank)
    fn(tensor)
    return {"tensor": tensor.numpy().copy(), "sent": sent}


@_reference_cached
def _run_ring(fn, case: Case):
    world_size, shape, seed = case.args
    results = _launch_ring(world_size, fn, shape, seed)
    return [torch.from_numpy(r["tensor"]) for r in results]


def _launch_ring(world_size, fn, shape, seed):
    """The ring's launch; a deadlock of blocking sends, or a failure after a send to the wrong
    neighbour, is named as such (CallCounts)."""
    calls = CallCounts(world_size, ("send", "isend"))
    try:
        return launch(_ring_worker, world_size, fn, shape, seed, calls, timeout=LAUNCH_TIMEOUT)
    except (DeadlockError, WorkerError) as error:
        raise calls.explain(error) from None


_TRAFFIC = ("the ranks each rank sent to (a ring: only the next one, (r + 1) mod W)",
            "no message larger than ⌈n/W⌉ elements",
            "at most 2(W−1)·⌈n/W⌉ elements sent per rank",
            "at least 2(W−1)·⌊n/W⌋ elements sent per rank (the sum travels around the ring)")


def _run_ring_traffic(fn, case: Case):
    """Properties of what each rank sent. A ring, by definition, sends 2(W−1) messages of at most
    ⌈n/W⌉ elements, all to the next rank; sending whole tensors, or everything to one rank that
    sums and sends back, is correct but is not a ring and moves more data."""
    world_size, shape, seed = case.args
    if fn is RING_DEFINITION:
        return {_TRAFFIC[0]: [[(rank + 1) % world_size] for rank in range(world_size)],
                **{key: True for key in _TRAFFIC[1:]}}
    results = _launch_ring(world_size, fn, shape, seed)
    n, chunk = math.prod(shape), math.ceil(math.prod(shape) / world_size)
    sends = [r["sent"] for r in results]
    return {
        _TRAFFIC[0]: [sorted({dst for dst, _ in s}) for s in sends],
        _TRAFFIC[1]: all(size <= chunk for s in sends for _, size in s) and n > 0,
        _TRAFFIC[2]: all(sum(size for _, size in s) <= 2 * (world_size - 1) * chunk for s in sends),
        _TRAFFIC[3]: all(sum(size for _, size in s) >= 2 * (world_size - 1) * (n // world_size)
                         for s in sends),
    }


def _ring_cases(specs):
    def cases(gen):
        return [Case(f"{w} ranks, tensor of shape {shape}" + (
                    " (fewer elements than ranks: some of the W chunks of tensor_split(W) are "
                    "empty)" if math.prod(shape) < w else ""), (w, shape, seed_from(gen)))
                for w, shape in specs]
    return cases


def _ring_mistake(all_gather_start: int = 1, drop_remainder: bool = False, gather: bool = True,
                  gather_adds: bool = False, scatter_overwrites: bool = False,
                  all_gather_shift: int = 0, extra_scatter_step: bool = False):
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
        for step in range(world - 1 + extra_scatter_step):
            send, recv = (rank - step) % world, (rank - step - 1) % world
            request = dist.isend(chunks[send], right)
            incoming = torch.empty_like(chunks[recv])
            dist.recv(incoming, left)
            request.wait()
            if scatter_overwrites:
                chunks[recv].copy_(incoming)
            else:
                chunks[recv] += incoming
        if gather:
            for step in range(world - 1):
                send = (rank + all_gather_start - step) % world
                recv = (rank - step - all_gather_shift) % world
                request = dist.isend(chunks[send].clone(), right)
                incoming = torch.empty_like(chunks[recv])
                dist.recv(incoming, left)
                request.wait()
                if gather_adds:
                    chunks[recv] += incoming
                else:
                    chunks[recv].copy_(incoming)
        return tensor
    return ring


def _ring_backwards(tensor):
    """The ring in the other direction: rank r sends to r − 1 (sums right, traffic not)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    to, frm = (rank - 1) % world, (rank + 1) % world
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(world - 1):
            if phase == "reduce-scatter":
                send, recv = (rank + step) % world, (rank + step + 1) % world
            else:
                send, recv = (rank - 1 + step) % world, (rank + step) % world
            request = dist.isend(chunks[send].clone(), to)
            incoming = torch.empty_like(chunks[recv])
            dist.recv(incoming, frm)
            request.wait()
            if phase == "reduce-scatter":
                chunks[recv] += incoming
            else:
                chunks[recv].copy_(incoming)
    return tensor


def _ring_whole_tensors(tensor):
    """The whole tensor passed around the ring W − 1 times (sums right, traffic not)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    total, current = tensor.clone(), tensor.clone()
    for _ in range(world - 1):
        incoming = torch.empty_like(current)
        request = dist.isend(current, (rank + 1) % world)
        dist.recv(incoming, (rank - 1) % world)
        request.wait()
        total += incoming
        current = incoming
    return tensor.copy_(total)


_TRAFFIC_HINTS = (
    Hint(_ring_backwards, "this matches a ring that runs backwards: rank r sends to (r − 1) mod W; "
         "the text's ring sends to the right, (r + 1) mod W, and receives from (r − 1) mod W."),
    Hint(_ring_whole_tensors, "this matches passing the whole tensor around the ring: the ring "
         "sends chunks of about n/W elements (tensor_split(W)), 2(W − 1) of them per rank."),
    Hint(_ring_mistake(extra_scatter_step=True), "this matches a reduce-scatter of W "
         "steps: it takes W − 1 (s = 0, ..., W − 2), as does the all-gather, so that each rank "
         "sends 2(W − 1) chunks in all."),
)


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
    Hint(_ring_mistake(gather_adds=True), "this matches an all-gather that adds the chunk it "
         "receives: the chunks it passes on are already complete sums, so the all-gather "
         "overwrites (copy_) its chunk instead of adding to it."),
    Hint(_ring_mistake(scatter_overwrites=True), "this matches a reduce-scatter that overwrites "
         "its chunk with the one it receives: in the reduce-scatter, add the received chunk into "
         "your own (+=), so that every contribution is summed."),
    Hint(_ring_mistake(all_gather_start=0, all_gather_shift=1), "this matches an all-gather "
         "that sends and receives the reduce-scatter's chunks (c_(r−s), into c_(r−s−1)): in the "
         "all-gather, rank r sends the complete chunk c_((r+1−s) mod W) and overwrites "
         "c_((r−s) mod W)."),
)
# On 2 ranks a reduce-scatter that overwrites and an all-gather that repeats the reduce-scatter's
# chunks give the same result: one sentence for both there (on 3 and 4 ranks they differ).
_BOTH = ("this matches a ring that loses contributions: in the reduce-scatter, add (+=) the "
         "chunk you receive into your own; in the all-gather, send the complete chunk "
         "c_((r+1−s) mod W) and overwrite c_((r−s) mod W) with what you receive.")
_TWO_RANK_HINTS = tuple(Hint(h.mistake, _BOTH) if i >= len(_RING_HINTS) - 2 else h
                        for i, h in enumerate(_RING_HINTS))

register(
    Check("ring_allreduce", "two_ranks", "sums like dist.all_reduce on 2 ranks",
          _ring_cases([(2, (8,)), (2, (1001,))]), _reference_ring, run=_run_ring,
          hints=_TWO_RANK_HINTS, timeout=CHECK_TIMEOUT, points=2, levels=("rank",)),
    Check("ring_allreduce", "uneven", "sums like dist.all_reduce on 3 and 4 ranks, any size",
          _ring_cases([(3, (10,)), (4, (7,)), (4, (5, 3)), (3, (2,))]), _reference_ring,
          run=_run_ring, hints=_RING_HINTS, timeout=CHECK_TIMEOUT, points=2, levels=("rank",)),
    Check("ring_allreduce", "traffic", "sends 2(W−1) chunks of ⌈n/W⌉ elements to the next rank",
          _ring_cases([(3, (12,)), (4, (10,))]), RING_DEFINITION, run=_run_ring_traffic,
          hints=_TRAFFIC_HINTS, timeout=CHECK_TIMEOUT, levels=("rank",)),
)

# The ring replaces gloo's all-reduce.
forbid("ring_allreduce", "torch.distributed.all_reduce", "torch.distributed.distributed_c10d.all_reduce")
