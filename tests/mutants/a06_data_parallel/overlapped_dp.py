"""Assignment 06, OverlappedDP: mistakes and correct answers written differently."""

import torch
import torch.distributed as dist
from torch import nn

from tests.mutants import alternative, mutant


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
    """Waits by itself at the end of backward (autograd's queue_callback, as DDP does), and one
    flat buffer per bucket."""

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        params = [p for p in model.parameters() if p.requires_grad]
        cap = bucket_cap_mb * 2**20
        self.buckets, current, size = [], [], 0
        for p in reversed(params):
            current.append(p)
            size += p.numel() * p.element_size()
            if size >= cap:
                self.buckets.append(current)
                current, size = [], 0
        if current:
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


@mutant("OverlappedDP", hint="at most bucket_cap_mb", fails=("overlaps_backward",))
class OverlappedDPBucketsAtMostTheCap(nn.Module):
    """Waits by itself at the end of backward (autograd's queue_callback, as DDP does), buckets
    filled until the next parameter would overflow them (the text says: at least the cap; this
    was an alternative before the check recorded the buckets)."""

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


class _Buckets(nn.Module):
    """Buckets, hooks and the final wait, with switches for the mistakes below."""

    REVERSE, DIVIDE, WAIT, RESET, ASYNC, IN_HOOK = True, True, True, True, True, True
    MB, BYTES, COPY_BACK = 2**20, True, True

    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__()
        self.module = model
        params = list(model.parameters())
        cap = bucket_cap_mb * self.MB
        self.buckets, current, size = [], [], 0
        for p in (params[::-1] if self.REVERSE else params):
            current.append(p)
            size += p.numel() * (p.element_size() if self.BYTES else 1)
            if size >= cap:
                self.buckets.append(current)
                current, size = [], 0
        self.buckets += [current] if current else []
        self.flats = [torch.empty(sum(p.numel() for p in b)) for b in self.buckets]
        self.where = {p: i for i, b in enumerate(self.buckets) for p in b}
        self.ready = [0] * len(self.buckets)
        self.work = [None] * len(self.buckets)
        for p in params:
            p.register_post_accumulate_grad_hook(self._ready)

    def _ready(self, p):
        i = self.where[p]
        self.ready[i] += 1
        if self.ready[i] == len(self.buckets[i]) and self.IN_HOOK:
            self._start(i)

    def _start(self, i):
        torch.cat([q.grad.reshape(-1) for q in self.buckets[i]], out=self.flats[i])
        self.work[i] = dist.all_reduce(self.flats[i], async_op=self.ASYNC)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    def finish_gradient_synchronization(self):
        if not self.IN_HOOK:
            for i in range(len(self.buckets)):
                self._start(i)
        world = dist.get_world_size() if self.DIVIDE else 1
        for flat, work, bucket in zip(self.flats, self.work, self.buckets):
            if self.WAIT and work is not None and self.ASYNC:
                work.wait()
            for q, part in zip(bucket, flat.split([q.numel() for q in bucket])):
                if self.COPY_BACK:
                    torch.div(part.view_as(q), world, out=q.grad)
        self.work = [None] * len(self.buckets)
        if self.RESET:
            self.ready = [0] * len(self.buckets)


@mutant("OverlappedDP", hint="order of model.parameters()", fails=("overlaps_backward",))
class OverlappedDPBucketsInForwardOrder(_Buckets):
    REVERSE = False


@mutant("OverlappedDP", fails=("overlaps_backward",))
class OverlappedDPNeverWaits(_Buckets):
    WAIT = False  # copies the flat tensors back whenever: the all-reduce may not have finished


@alternative("OverlappedDP")
class OverlappedDPPreallocated(_Buckets):
    """The text's recipe: flat tensors allocated once, torch.cat(out=), torch.div(out=)."""


@mutant("OverlappedDP", hint="summing the gradients", fails=("matches_ddp",))
class OverlappedDPForgetsToDivide(_Buckets):
    DIVIDE = False


@mutant("OverlappedDP", hint="only the first step", fails=("matches_ddp", "overlaps_backward"))
class OverlappedDPCountsNeverRestart(_Buckets):
    RESET = False


@mutant("OverlappedDP", hint="blocking all-reduce in the hook", fails=("overlaps_backward",))
class OverlappedDPBlockingAllReduce(_Buckets):
    ASYNC = False


@mutant("OverlappedDP", hint="after backward", fails=("overlaps_backward",))
class OverlappedDPAllReducesAfterBackward(_Buckets):
    IN_HOOK = False


@mutant("OverlappedDP", hint="10^6 bytes", fails=("overlaps_backward",))
class OverlappedDPDecimalMegabytes(_Buckets):
    MB = 10**6


@mutant("OverlappedDP", hint="counted in elements", fails=("overlaps_backward",))
class OverlappedDPCapInElements(_Buckets):
    BYTES = False


@mutant("OverlappedDP", hint="never averaged", fails=("matches_ddp",))
class OverlappedDPNeverCopiesBack(_Buckets):
    COPY_BACK = False  # the flat tensors are reduced, p.grad keeps this rank's own gradient


@mutant("OverlappedDP", hint="one bucket per parameter", fails=("overlaps_backward",))
class OverlappedDPBucketPerTensor(_Buckets):
    def __init__(self, model, bucket_cap_mb=25.0):
        super().__init__(model, bucket_cap_mb=1e-9)  # every tensor is over the cap alone


@mutant("OverlappedDP", hint="waiting for each all-reduce in the hook", fails=("overlaps_backward",))
class OverlappedDPWaitsInTheHook(_Buckets):
    def _start(self, i):
        super()._start(i)
        self.work[i].wait()  # async_op=True, but backward stops here until the bucket is reduced


@mutant("OverlappedDP", hint="not only the last one", fails=("overlaps_backward",))
class OverlappedDPWaitsForTheLastOnly(_Buckets):
    def finish_gradient_synchronization(self):
        started = [w for w in self.work if w is not None]
        if started:
            started[-1].wait()
        self.work = [None] * len(self.work)  # the base class then waits for nothing
        super().finish_gradient_synchronization()
