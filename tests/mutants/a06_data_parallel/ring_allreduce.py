"""Assignment 06, ring_allreduce: mistakes and correct answers written differently."""

import torch
import torch.distributed as dist

from tests.mutants import alternative, mutant


@mutant("ring_allreduce", hint="waiting in a blocking dist.send", fails=("two_ranks", "uneven", "traffic"),
        deadlocks=True)
def ring_with_blocking_sends(tensor):
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    right, left = (rank + 1) % world, (rank - 1) % world
    for step in range(world - 1):
        incoming = torch.empty_like(chunks[(rank - step - 1) % world])
        dist.send(chunks[(rank - step) % world], right)  # every rank sends first: nobody receives
        dist.recv(incoming, left)
        chunks[(rank - step - 1) % world] += incoming
    for step in range(world - 1):
        dist.send(chunks[(rank + 1 - step) % world], right)
        dist.recv(chunks[(rank - step) % world], left)
    return tensor


@mutant("ring_allreduce", hint="wrong chunk", fails=("two_ranks", "uneven"))
def ring_sends_the_wrong_chunk(tensor):
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    right, left = (rank + 1) % world, (rank - 1) % world
    for step in range(world - 1):
        req = dist.isend(chunks[(rank - step) % world], right)
        incoming = torch.empty_like(chunks[(rank - step - 1) % world])
        dist.recv(incoming, left)
        req.wait()
        chunks[(rank - step - 1) % world] += incoming
    for step in range(world - 1):
        outgoing = chunks[(rank - step) % world].clone()  # should be (rank + 1 - step)
        req = dist.isend(outgoing, right)
        dist.recv(chunks[(rank - step) % world], left)
        req.wait()
    return tensor


@mutant("ring_allreduce", hint="all-gather phase", fails=("two_ranks", "uneven"))
def ring_reduce_scatter_only(tensor):
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    for step in range(world - 1):
        req = dist.isend(chunks[(rank - step) % world], (rank + 1) % world)
        incoming = torch.empty_like(chunks[(rank - step - 1) % world])
        dist.recv(incoming, (rank - 1) % world)
        req.wait()
        chunks[(rank - step - 1) % world] += incoming
    return tensor


@mutant("ring_allreduce", hint="n mod W", fails=("uneven",))
def ring_drops_the_remainder(tensor):
    rank, world = dist.get_rank(), dist.get_world_size()
    flat = tensor.view(-1)
    size = flat.numel() // world
    chunks = [flat[i * size:(i + 1) * size] for i in range(world)]
    for step in range(world - 1):
        req = dist.isend(chunks[(rank - step) % world], (rank + 1) % world)
        incoming = torch.empty_like(chunks[(rank - step - 1) % world])
        dist.recv(incoming, (rank - 1) % world)
        req.wait()
        chunks[(rank - step - 1) % world] += incoming
    for step in range(world - 1):
        req = dist.isend(chunks[(rank + 1 - step) % world], (rank + 1) % world)
        dist.recv(chunks[(rank - step) % world], (rank - 1) % world)
        req.wait()
    return tensor


@mutant("ring_allreduce", hint="may use only", fails=("two_ranks", "uneven"))
def ring_with_the_library_collective(tensor):
    dist.all_reduce(tensor)
    return tensor


@mutant("ring_allreduce", hint="in place", fails=("two_ranks", "uneven"))
def ring_out_of_place(tensor):
    rank, world = dist.get_rank(), dist.get_world_size()
    total = tensor.clone()
    for peer in range(world):
        if peer != rank:
            req = dist.isend(tensor, peer)
            incoming = torch.empty_like(tensor)
            dist.recv(incoming, peer)
            req.wait()
            total += incoming
    return total  # the input tensor itself is unchanged


@mutant("ring_allreduce", fails=("traffic",))
def ring_everyone_sends_everything(tensor):
    # Correct sums, but every rank sends the whole tensor to every other rank: (W−1)·n elements.
    rank, world = dist.get_rank(), dist.get_world_size()
    original = tensor.clone()
    requests = [dist.isend(original, peer) for peer in range(world) if peer != rank]
    for peer in range(world):
        if peer != rank:
            incoming = torch.empty_like(tensor)
            dist.recv(incoming, peer)
            tensor += incoming
    for r in requests:
        r.wait()
    return tensor


@alternative("ring_allreduce")
def ring_with_batched_p2p(tensor):
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    right, left = (rank + 1) % world, (rank - 1) % world
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(world - 1):
            if phase == "reduce-scatter":
                send_i, recv_i = (rank - step) % world, (rank - step - 1) % world
            else:
                send_i, recv_i = (rank + 1 - step) % world, (rank - step) % world
            incoming = torch.empty_like(chunks[recv_i])
            ops = [dist.P2POp(dist.isend, chunks[send_i], right),
                   dist.P2POp(dist.irecv, incoming, left)]
            for r in dist.batch_isend_irecv(ops):
                r.wait()
            if phase == "reduce-scatter":
                chunks[recv_i] += incoming
            else:
                chunks[recv_i].copy_(incoming)
    return tensor


@mutant("ring_allreduce", fails=("traffic",))
def ring_to_the_left(tensor):
    """The ring in the other direction (to r − 1): correct sums, but the text's ring sends to
    r + 1 (formerly an alternative; the traffic check now says where messages go)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    flat = tensor.view(-1)
    size = -(-flat.numel() // world)
    chunks = [flat[i * size:(i + 1) * size] for i in range(world)]
    to, frm = (rank - 1) % world, (rank + 1) % world
    for step in range(world - 1):
        send_i, recv_i = (rank + step) % world, (rank + step + 1) % world
        incoming = torch.empty_like(chunks[recv_i])
        reqs = [dist.isend(chunks[send_i], to), dist.irecv(incoming, frm)]
        for r in reqs:
            r.wait()
        chunks[recv_i] += incoming
    for step in range(world - 1):
        send_i, recv_i = (rank - 1 + step) % world, (rank + step) % world
        reqs = [dist.isend(chunks[send_i], to), dist.irecv(chunks[recv_i], frm)]
        for r in reqs:
            r.wait()
    return tensor


def _ring_phases(tensor, gather_adds=False, scatter_overwrites=False, split=None):
    rank, world = dist.get_rank(), dist.get_world_size()
    flat = tensor.view(-1)
    chunks = list(split(flat, world) if split else flat.tensor_split(world))
    right, left = (rank + 1) % world, (rank - 1) % world
    for step in range(world - 1):
        recv_i = (rank - step - 1) % world
        req = dist.isend(chunks[(rank - step) % world].clone(), right)
        incoming = torch.empty_like(chunks[recv_i])
        dist.recv(incoming, left)
        req.wait()
        if scatter_overwrites:
            chunks[recv_i].copy_(incoming)
        else:
            chunks[recv_i] += incoming
    for step in range(world - 1):
        recv_i = (rank - step) % world
        req = dist.isend(chunks[(rank + 1 - step) % world].clone(), right)
        incoming = torch.empty_like(chunks[recv_i])
        dist.recv(incoming, left)
        req.wait()
        if gather_adds:
            chunks[recv_i] += incoming
        else:
            chunks[recv_i].copy_(incoming)
    return tensor


@mutant("ring_allreduce", hint="all-gather that adds", fails=("two_ranks", "uneven"))
def ring_all_gather_adds(tensor):
    return _ring_phases(tensor, gather_adds=True)


@mutant("ring_allreduce", hint="in the reduce-scatter, add", fails=("two_ranks", "uneven"))
def ring_reduce_scatter_overwrites(tensor):
    return _ring_phases(tensor, scatter_overwrites=True)


@mutant("ring_allreduce", hint="may use only", fails=("two_ranks", "uneven", "traffic"))
def ring_with_the_process_group_allreduce(tensor):
    dist.group.WORLD.allreduce([tensor]).wait()  # the collective, reached through the group
    return tensor


@mutant("ring_allreduce", hint="may use only", fails=("two_ranks", "uneven", "traffic"))
def ring_with_distributed_c10d_all_reduce(tensor):
    from torch.distributed import distributed_c10d

    distributed_c10d.all_reduce(tensor)
    return tensor


@mutant("ring_allreduce", hint="tensor_split(W) always gives W chunks", fails=("uneven",))
def ring_with_torch_chunk(tensor):
    # torch.chunk gives fewer than W chunks for small sizes (5 elements on 4 ranks: 2, 2, 1).
    return _ring_phases(tensor, split=lambda flat, world: flat.chunk(world))


@mutant("ring_allreduce", hint="passing the whole tensor around the ring", fails=("traffic",))
def ring_passes_whole_tensors(tensor):
    # Correct sums, but the whole tensor goes around the ring: (W−1)·n elements per rank.
    rank, world = dist.get_rank(), dist.get_world_size()
    total, current = tensor.clone(), tensor.clone()
    for _ in range(world - 1):
        incoming = torch.empty_like(current)
        req = dist.isend(current, (rank + 1) % world)
        dist.recv(incoming, (rank - 1) % world)
        req.wait()
        total += incoming
        current = incoming
    tensor.copy_(total)
    return tensor


@alternative("ring_allreduce")
def ring_with_irecv_and_isend(tensor):
    """Both directions non-blocking, and the all-gather received straight into the chunk."""
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.reshape(-1).tensor_split(world))
    right, left = (rank + 1) % world, (rank - 1) % world
    for step in range(world - 1):
        incoming = torch.empty_like(chunks[(rank - step - 1) % world])
        for r in [dist.irecv(incoming, left), dist.isend(chunks[(rank - step) % world], right)]:
            r.wait()
        chunks[(rank - step - 1) % world].add_(incoming)
    for step in range(world - 1):
        for r in [dist.irecv(chunks[(rank - step) % world], left),
                  dist.isend(chunks[(rank + 1 - step) % world], right)]:
            r.wait()
    return tensor


@mutant("ring_allreduce", hint="runs backwards", fails=("traffic",))
def ring_backwards_with_tensor_split(tensor):
    """Sends to r − 1, receives from r + 1, with mirrored chunk indices: correct sums."""
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    to, frm = (rank - 1) % world, (rank + 1) % world
    for step in range(world - 1):
        incoming = torch.empty_like(chunks[(rank + step + 1) % world])
        req = dist.isend(chunks[(rank + step) % world], to)
        dist.recv(incoming, frm)
        req.wait()
        chunks[(rank + step + 1) % world] += incoming
    for step in range(world - 1):
        req = dist.isend(chunks[(rank - 1 + step) % world].clone(), to)
        dist.recv(chunks[(rank + step) % world], frm)
        req.wait()
    return tensor


@mutant("ring_allreduce", hint="complete chunk c_((r+1−s) mod W)", fails=("two_ranks", "uneven"))
def ring_all_gather_repeats_the_reduce_scatter_chunks(tensor):
    # The reduce-scatter loop copied for the all-gather, with += changed to copy_.
    rank, world = dist.get_rank(), dist.get_world_size()
    chunks = list(tensor.view(-1).tensor_split(world))
    right, left = (rank + 1) % world, (rank - 1) % world
    for phase in ("reduce-scatter", "all-gather"):
        for step in range(world - 1):
            recv_i = (rank - step - 1) % world
            incoming = torch.empty_like(chunks[recv_i])
            req = dist.isend(chunks[(rank - step) % world].clone(), right)
            dist.recv(incoming, left)
            req.wait()
            if phase == "reduce-scatter":
                chunks[recv_i] += incoming
            else:
                chunks[recv_i].copy_(incoming)
    return tensor


@mutant("ring_allreduce", hint="reduce-scatter of W steps", fails=("traffic",))
def ring_with_one_scatter_step_too_many(tensor):
    """Sums right (the extra step's sum is overwritten by the all-gather), one chunk too many."""
    world, me = dist.get_world_size(), dist.get_rank()
    parts = tensor.view(-1).tensor_split(world)
    for phase, steps in (("scatter", world), ("gather", world - 1)):
        for s in range(steps):
            out_i = (me - s) % world if phase == "scatter" else (me + 1 - s) % world
            in_i = (me - s - 1) % world if phase == "scatter" else (me - s) % world
            buf = torch.empty_like(parts[in_i])
            req = dist.isend(parts[out_i], dst=(me + 1) % world)
            dist.recv(buf, src=(me - 1) % world)
            req.wait()
            if phase == "scatter":
                parts[in_i].add_(buf)
            else:
                parts[in_i].copy_(buf)
    return tensor


@mutant("ring_allreduce", hint="not to its right neighbour", fails=("uneven",))
def ring_reversed_with_the_texts_chunks(tensor):
    """The text's chunk indices, but sent to the left: on 3 ranks the chunks' sizes disagree."""
    world, me = dist.get_world_size(), dist.get_rank()
    parts = tensor.view(-1).tensor_split(world)
    to, frm = (me - 1) % world, (me + 1) % world
    for s in range(world - 1):
        buf = torch.empty_like(parts[(me - s - 1) % world])
        req = dist.isend(parts[(me - s) % world], to)
        dist.recv(buf, frm)
        req.wait()
        parts[(me - s - 1) % world].add_(buf)
    for s in range(world - 1):
        buf = torch.empty_like(parts[(me - s) % world])
        req = dist.isend(parts[(me + 1 - s) % world], to)
        dist.recv(buf, frm)
        req.wait()
        parts[(me - s) % world].copy_(buf)
    return tensor


@alternative("ring_allreduce")
def ring_pipelined_in_segments(tensor):
    """The text's optional speed-up: each reduce-scatter chunk sent as segments (here of at most
    2 numbers, so that the small test tensors have several), all isends first, then each segment
    received into one reused buffer and added."""
    segment = 2
    world, me = dist.get_world_size(), dist.get_rank()
    parts = tensor.view(-1).tensor_split(world)
    right, left = (me + 1) % world, (me - 1) % world
    scratch = torch.empty(segment, dtype=tensor.dtype)
    for s in range(world - 1):
        requests = [dist.isend(piece, right) for piece in parts[(me - s) % world].split(segment)]
        for piece in parts[(me - s - 1) % world].split(segment):
            buffer = scratch[:piece.numel()]
            dist.recv(buffer, left)
            piece.add_(buffer)
        for request in requests:
            request.wait()
    for s in range(world - 1):
        request = dist.isend(parts[(me + 1 - s) % world], right)
        dist.recv(parts[(me - s) % world], left)
        request.wait()
    return tensor
