"""Assignment 07, pipeline_forward_backward: mistakes and correct answers written differently."""

import torch
import torch.distributed as dist

from tests.mutants import alternative, mutant


def _receive(like, src):
    x = torch.empty_like(like)
    dist.recv(x, src=src)
    return x


def _gpipe(stage, micro_batches, targets, loss_fn, *, zero=False, divide=True):
    rank, world = dist.get_rank(), dist.get_world_size()
    m = len(micro_batches)
    ins, outs, works, total = [], [], [], 0.0
    for i in range(m):
        x = micro_batches[i] if rank == 0 else _receive(micro_batches[i], rank - 1).requires_grad_()
        y = stage(x)
        if rank == world - 1:
            y = loss_fn(y, targets[i]) / (m if divide else 1)
            total += y.item()
        else:
            works.append(dist.isend(y.detach(), dst=rank + 1))
        ins.append(x)
        outs.append(y)
    for i in range(m):
        if zero:
            stage.zero_grad()  # "a fresh gradient for each micro-batch"
        if rank == world - 1:
            outs[i].backward()
        else:
            outs[i].backward(_receive(outs[i], rank + 1))
        if rank > 0:
            works.append(dist.isend(ins[i].grad, dst=rank - 1))
    for w in works:
        w.wait()
    return total if rank == world - 1 else None


@mutant("pipeline_forward_backward", hint="last micro-batch alone", fails=("matches_sequential",))
def pipeline_zeroes_between_micro_batches(stage, micro_batches, targets, loss_fn):
    return _gpipe(stage, micro_batches, targets, loss_fn, zero=True)


@mutant("pipeline_forward_backward", hint="m times too large", fails=("matches_sequential",))
def pipeline_sums_the_losses(stage, micro_batches, targets, loss_fn):
    return _gpipe(stage, micro_batches, targets, loss_fn, divide=False)


@mutant("pipeline_forward_backward", hint="one micro-batch at a time", fails=("schedule",))
def pipeline_one_micro_batch_at_a_time(stage, micro_batches, targets, loss_fn):
    rank, world = dist.get_rank(), dist.get_world_size()
    total = 0.0
    for x, t in zip(micro_batches, targets):
        if rank > 0:
            x = _receive(x, rank - 1).requires_grad_()
        y = stage(x)
        if rank == world - 1:
            loss = loss_fn(y, t) / len(micro_batches)
            total += loss.item()
            loss.backward()
        else:
            dist.send(y.detach(), dst=rank + 1)
            y.backward(_receive(y, rank + 1))
        if rank > 0:
            dist.send(x.grad, dst=rank - 1)
    return total if rank == world - 1 else None


@mutant("pipeline_forward_backward", hint="whole batch in one pass", fails=("schedule",))
def pipeline_whole_batch(stage, micro_batches, targets, loss_fn):
    return _gpipe(stage, [torch.cat(micro_batches)], [torch.cat(targets)], loss_fn)


@mutant("pipeline_forward_backward", hint="deadlock", fails=("matches_sequential", "schedule"),
        deadlocks=True)
def pipeline_receives_before_sending(stage, micro_batches, targets, loss_fn):
    rank, world = dist.get_rank(), dist.get_world_size()
    m = len(micro_batches)
    total = 0.0
    for x, t in zip(micro_batches, targets):
        if rank > 0:
            x = _receive(x, rank - 1).requires_grad_()
        y = stage(x)
        if rank == world - 1:
            loss = loss_fn(y, t) / m
            total += loss.item()
            loss.backward()
        else:
            grad = _receive(y, rank + 1)  # waits for a gradient of an activation not sent yet
            dist.send(y.detach(), dst=rank + 1)
            y.backward(grad)
        if rank > 0:
            dist.send(x.grad, dst=rank - 1)
    return total if rank == world - 1 else None


@mutant("pipeline_forward_backward", fails=("matches_sequential", "schedule"))
def pipeline_forgets_requires_grad(stage, micro_batches, targets, loss_fn):
    rank, world = dist.get_rank(), dist.get_world_size()
    m = len(micro_batches)
    ins, outs, total = [], [], 0.0
    for i in range(m):
        x = micro_batches[i] if rank == 0 else _receive(micro_batches[i], rank - 1)
        y = stage(x)
        if rank == world - 1:
            y = loss_fn(y, targets[i]) / m
            total += y.item()
        else:
            dist.send(y.detach(), dst=rank + 1)
        ins.append(x)
        outs.append(y)
    for i in range(m):
        if rank == world - 1:
            outs[i].backward()
        else:
            outs[i].backward(_receive(outs[i], rank + 1))
        if rank > 0:
            dist.send(ins[i].grad, dst=rank - 1)  # None: the received x never required grad
    return total if rank == world - 1 else None


@alternative("pipeline_forward_backward")
def pipeline_one_forward_one_backward(stage, micro_batches, targets, loss_fn):
    """1F1B: after P − r − 1 warm-up forwards, each stage alternates one forward, one backward,
    so that at most P − r micro-batches are in flight (less activation memory than GPipe)."""
    rank, world = dist.get_rank(), dist.get_world_size()
    m = len(micro_batches)
    warmup = min(world - rank - 1, m)
    ins, outs, works = {}, {}, []
    losses = []

    def forward(i):
        x = micro_batches[i] if rank == 0 else _receive(micro_batches[i], rank - 1).requires_grad_()
        y = stage(x)
        if rank == world - 1:
            y = loss_fn(y, targets[i]) / m
            losses.append(y.detach())
        else:
            works.append(dist.isend(y.detach(), dst=rank + 1))
        ins[i], outs[i] = x, y

    def backward(i):
        y = outs.pop(i)
        if rank == world - 1:
            y.backward()
        else:
            y.backward(_receive(y, rank + 1))
        x = ins.pop(i)
        if rank > 0:
            works.append(dist.isend(x.grad, dst=rank - 1))

    for i in range(warmup):
        forward(i)
    for i in range(m - warmup):
        forward(warmup + i)
        backward(i)
    for i in range(m - warmup, m):
        backward(i)
    for w in works:
        w.wait()
    return torch.stack(losses).sum() if rank == world - 1 else None


@alternative("pipeline_forward_backward")
def pipeline_batched_messages_reverse_backward(stage, micro_batches, targets, loss_fn):
    """GPipe with batch_isend_irecv, and the backwards in reverse micro-batch order (as GPipe's
    paper draws them); any order accumulates the same gradients."""
    rank, world = dist.get_rank(), dist.get_world_size()
    m = len(micro_batches)
    ins, outs, total = [], [], 0.0
    for i in range(m):
        if rank == 0:
            x = micro_batches[i]
        else:
            x = torch.empty_like(micro_batches[i])
            for w in dist.batch_isend_irecv([dist.P2POp(dist.irecv, x, rank - 1)]):
                w.wait()
            x.requires_grad_()
        y = stage(x)
        if rank == world - 1:
            y = loss_fn(y, targets[i]) * (1.0 / m)
            total = total + y.item()
        else:
            for w in dist.batch_isend_irecv([dist.P2POp(dist.isend, y.detach(), rank + 1)]):
                w.wait()
        ins.append(x)
        outs.append(y)
    for i in reversed(range(m)):
        if rank == world - 1:
            outs[i].backward()
        else:
            grad = torch.empty_like(outs[i])
            dist.irecv(grad, src=rank + 1).wait()
            outs[i].backward(grad)
        if rank > 0:
            dist.isend(ins[i].grad, dst=rank - 1).wait()
    return total if rank == world - 1 else None
