"""Assignment 06: mistakes a learner might make, and correct answers written differently.

Each is what a learner would define in the notebook (the notebook's first cell imports torch,
torch.distributed as dist, nn, F, ...); they run inside the launched gloo workers.
"""

import warnings

import torch
import torch.distributed as dist
from torch import nn

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- shard_indices


@mutant("shard_indices", hint="contiguous blocks", fails=("even", "uneven"))
def shard_blocks(n, rank, world_size):
    per_rank = n // world_size
    return list(range(rank * per_rank, (rank + 1) * per_rank))


@mutant("shard_indices", hint="unequal sizes", fails=("uneven",))
def shard_keeps_remainder(n, rank, world_size):
    return list(range(rank, n, world_size))


@mutant("shard_indices", hint="drop_last=False", fails=("uneven",))
def shard_pads_like_the_default_sampler(n, rank, world_size):
    per_rank = -(-n // world_size)
    indices = list(range(n))
    indices += indices[:per_rank * world_size - n]
    return indices[rank::world_size]


@mutant("shard_indices", fails=("even",))
def shard_off_by_one(n, rank, world_size):
    return list(range(rank + 1, n // world_size * world_size + 1, world_size))


@alternative("shard_indices")
def shard_as_tensor_slice(n, rank, world_size):
    usable = n - n % world_size
    return torch.arange(n)[rank:usable:world_size]


@alternative("shard_indices")
def shard_by_comprehension(n, rank, world_size):
    return [i for i in range(n // world_size * world_size) if i % world_size == rank]


# --------------------------------------------------------------------------- broadcast_parameters


@mutant("broadcast_parameters", fails=("from_rank_0", "any_source", "buffers"))
def broadcast_skipped(model, src=0):
    # "The ranks use the same code, so their weights are the same": not when seeds differ.
    return model


@mutant("broadcast_parameters", hint="rank 0's weights", fails=("any_source",))
def broadcast_always_from_zero(model, src=0):
    with torch.no_grad():
        for t in model.state_dict().values():
            dist.broadcast(t, 0)


@mutant("broadcast_parameters", hint="averaging the replicas", fails=("from_rank_0", "any_source"))
def broadcast_by_averaging(model, src=0):
    with torch.no_grad():
        for p in model.parameters():
            dist.all_reduce(p, op=dist.ReduceOp.AVG)


@mutant("broadcast_parameters", hint="buffers", fails=("buffers",))
def broadcast_parameters_only(model, src=0):
    for p in model.parameters():
        dist.broadcast(p.data, src)


@mutant("broadcast_parameters", fails=("from_rank_0",))
def broadcast_into_copies(model, src=0):
    for t in model.state_dict().values():
        dist.broadcast(t.clone(), src)  # the received values land in a temporary


@alternative("broadcast_parameters")
def broadcast_as_objects(model, src=0):
    box = [model.state_dict() if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    model.load_state_dict(box[0])


@alternative("broadcast_parameters")
def broadcast_params_then_buffers(model, src=0):
    for tensor in [*model.parameters(), *model.buffers()]:
        dist.broadcast(tensor.data, src=src)


# --------------------------------------------------------------------------- allreduce_gradients


@mutant("allreduce_gradients", hint="summing the gradients",
        fails=("averages", "matches_single_process"))
def allreduce_sums(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)


@mutant("allreduce_gradients", hint="only rank 0", fails=("averages", "matches_single_process"))
def allreduce_to_rank_zero_only(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.reduce(p.grad, dst=0)
            if dist.get_rank() == 0:
                p.grad /= dist.get_world_size()


@mutant("allreduce_gradients", fails=("averages", "matches_single_process"))
def allreduce_the_weights(model):
    for p in model.parameters():
        dist.all_reduce(p.data, op=dist.ReduceOp.AVG)


@mutant("allreduce_gradients", fails=("averages",))
def allreduce_crashes_on_frozen(model):
    for p in model.parameters():
        dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)  # p.grad is None for a frozen parameter


@alternative("allreduce_gradients")
def allreduce_flat_buffer(model):
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


@alternative("allreduce_gradients")
def allreduce_async_with_warning(model):
    warnings.warn("a harmless warning from a worker")
    handles = [dist.all_reduce(p.grad, op=dist.ReduceOp.AVG, async_op=True)
               for p in model.parameters() if p.grad is not None]
    for h in handles:
        h.wait()


@alternative("allreduce_gradients")
def allreduce_by_gathering(model):
    # all_gather_into_tensor prints a FutureWarning in torch 2.13: a warning costs no points.
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            everyone = torch.empty(world * p.grad.numel())
            dist.all_gather_into_tensor(everyone, p.grad.reshape(-1).contiguous())
            p.grad.copy_(everyone.view(world, -1).mean(0).view_as(p.grad))


# --------------------------------------------------------------------------- ring_allreduce


@mutant("ring_allreduce", hint="deadlock", fails=("two_ranks", "uneven", "traffic"))
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
def ring_to_the_left(tensor):
    """The ring in the other direction, with irecv and chunk sizes ⌈n/W⌉."""
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


# --------------------------------------------------------------------------- OverlappedDP


@mutant("OverlappedDP", fails=("overlaps_backward",))
class OverlappedDPSyncAtTheEnd(nn.Module):
    """Right numbers, no overlap: everything is all-reduced after backward."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        for p in self.module.parameters():
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)


@mutant("OverlappedDP", fails=("overlaps_backward",))
class OverlappedDPBlockingHooks(nn.Module):
    """All-reduces from the hooks, but blocking: backward waits for every bucket."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(
                lambda p: dist.all_reduce(p.grad, op=dist.ReduceOp.AVG))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        pass


@mutant("OverlappedDP", fails=("overlaps_backward",))
class OverlappedDPPerParameter(nn.Module):
    """Asynchronous, but one all-reduce per parameter tensor: no buckets."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        self.handles = []
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p):
        p.grad /= dist.get_world_size()
        self.handles.append(dist.all_reduce(p.grad, async_op=True))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        for h in self.handles:
            h.wait()
        self.handles.clear()


def _buckets(model, bucket_cap_mb):
    buckets, current, size = [], [], 0
    for p in reversed(list(model.parameters())):
        current.append(p)
        size += p.numel() * p.element_size()
        if size >= bucket_cap_mb * 2**20:
            buckets.append(current)
            current, size = [], 0
    return buckets + ([current] if current else [])


@mutant("OverlappedDP", fails=("matches_ddp", "overlaps_backward"))
class OverlappedDPNeverResets(nn.Module):
    """Counts ready gradients per bucket but never resets the counts: only step 1 is synced."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        self.buckets = _buckets(model, bucket_cap_mb)
        self.ready = [0] * len(self.buckets)
        self.where = {p: i for i, b in enumerate(self.buckets) for p in b}
        self.work = []
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p):
        i = self.where[p]
        self.ready[i] += 1
        if self.ready[i] == len(self.buckets[i]):
            flat = torch.cat([q.grad.reshape(-1) for q in self.buckets[i]])
            self.work.append((i, flat, dist.all_reduce(flat, op=dist.ReduceOp.AVG, async_op=True)))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        for i, flat, handle in self.work:
            handle.wait()
            for q, v in zip(self.buckets[i],
                            torch._utils._unflatten_dense_tensors(flat, [q.grad for q in self.buckets[i]])):
                q.grad.copy_(v)
        self.work.clear()


@mutant("OverlappedDP", fails=("matches_ddp",))
class OverlappedDPSums(nn.Module):
    """Buckets and overlap right, but the gradients are summed, not averaged."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        self.buckets = _buckets(model, bucket_cap_mb)
        self.where = {p: i for i, b in enumerate(self.buckets) for p in b}
        self.ready = [0] * len(self.buckets)
        self.work = []
        for p in model.parameters():
            p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p):
        i = self.where[p]
        self.ready[i] += 1
        if self.ready[i] == len(self.buckets[i]):
            self.ready[i] = 0
            flat = torch.cat([q.grad.reshape(-1) for q in self.buckets[i]])
            self.work.append((i, flat, dist.all_reduce(flat, async_op=True)))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        for i, flat, handle in self.work:
            handle.wait()
            offset = 0
            for q in self.buckets[i]:
                q.grad.copy_(flat[offset:offset + q.numel()].view_as(q.grad))
                offset += q.numel()
        self.work.clear()


@alternative("OverlappedDP")
class OverlappedDPAutomatic(nn.Module):
    """Waits by itself at the end of backward (autograd's queue_callback, as DDP does), buckets
    filled until the next parameter would overflow them, and one flat buffer per bucket."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        params = [p for p in model.parameters() if p.requires_grad]
        cap = bucket_cap_mb * 2**20
        self.buckets, current, size = [], [], 0
        for p in reversed(params):
            nbytes = p.numel() * p.element_size()
            if current and size + nbytes > cap:
                self.buckets.append(current)
                current, size = [], 0
            current.append(p)
            size += nbytes
        self.buckets.append(current)
        self.index = {p: i for i, b in enumerate(self.buckets) for p in b}
        self.missing = [len(b) for b in self.buckets]
        self.work = {}
        self.queued = False
        for p in params:
            p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p):
        if not self.queued:
            self.queued = True
            torch.autograd.Variable._execution_engine.queue_callback(self._finish)
        i = self.index[p]
        self.missing[i] -= 1
        if self.missing[i] == 0:
            flat = torch._utils._flatten_dense_tensors([q.grad for q in self.buckets[i]])
            self.work[i] = (flat, dist.all_reduce(flat, op=dist.ReduceOp.AVG, async_op=True))

    def _finish(self):
        for i, (flat, handle) in self.work.items():
            handle.wait()
            grads = [q.grad for q in self.buckets[i]]
            for g, v in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads)):
                g.copy_(v)
        self.work.clear()
        self.missing = [len(b) for b in self.buckets]
        self.queued = False

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        pass  # done at the end of backward
