"""Assignment 06, allreduce_gradients: mistakes and correct answers written differently."""

import warnings

import torch
import torch.distributed as dist

from tests.mutants import alternative, mutant


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


@mutant("allreduce_gradients", hint="its .grad is None", fails=("averages",))
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


@mutant("allreduce_gradients", hint="dividing twice", fails=("averages", "matches_single_process"))
def allreduce_averages_then_divides(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
            p.grad /= dist.get_world_size()  # AVG has divided already


@mutant("allreduce_gradients", hint="came back unchanged", fails=("averages", "matches_single_process"))
def allreduce_a_clone(model):
    for p in model.parameters():
        if p.grad is not None:
            g = p.grad.clone()
            dist.all_reduce(g)
            g /= dist.get_world_size()  # averaged, but p.grad never sees it


@mutant("allreduce_gradients", hint="came back unchanged", fails=("averages", "matches_single_process"))
def allreduce_the_parameters(model):
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                dist.all_reduce(p.data)
                p.data /= dist.get_world_size()


@mutant("allreduce_gradients", hint="dividing by the rank", fails=("averages", "matches_single_process"))
def allreduce_divides_by_rank(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad)
            p.grad /= dist.get_rank() + 1  # rank, not world size


@alternative("allreduce_gradients")
def allreduce_prescaled_and_reassigned(model):
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            g = p.grad / world
            dist.all_reduce(g)
            p.grad = g


@mutant("allreduce_gradients", hint="only rank 0", fails=("averages", "matches_single_process"))
def allreduce_reduce_and_divide_everywhere(model):
    world = dist.get_world_size()
    for p in model.parameters():
        if p.grad is not None:
            dist.reduce(p.grad, 0)
            p.grad.div_(world)


@mutant("allreduce_gradients", hint="by 2 whatever the number of ranks",
        fails=("averages", "matches_single_process"))
def allreduce_halves(model):
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad.mul_(0.5)
