"""Assignment 06, broadcast_parameters: mistakes and correct answers written differently."""

import torch
import torch.distributed as dist

from tests.mutants import alternative, mutant


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


@mutant("broadcast_parameters", hint="never written back", fails=("from_rank_0", "any_source", "buffers"))
def broadcast_into_a_copy_per_tensor(model, src=0):
    with torch.no_grad():
        for t in model.state_dict().values():
            received = t.clone()
            dist.broadcast(received, src)  # lands in `received`, which nobody reads


@mutant("broadcast_parameters", hint="num_batches_tracked", fails=("buffers",))
def broadcast_floating_point_only(model, src=0):
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():  # skips BatchNorm's integer step counter
                dist.broadcast(t, src)


@mutant("broadcast_parameters", hint="replaced by new ones", fails=("from_rank_0", "any_source", "buffers"))
def broadcast_by_reassigning_data(model, src=0):
    with torch.no_grad():
        for p in model.parameters():
            received = p.detach().clone()
            dist.broadcast(received, src)
            p.data = received  # right values, but the model's tensor is a new one
        for b in model.buffers():
            dist.broadcast(b, src)


@mutant("broadcast_parameters", hint="never called", fails=("from_rank_0", "any_source", "buffers"),
        deadlocks=True)
def broadcast_only_on_the_source(model, src=0):
    if dist.get_rank() == src:  # the other ranks never call broadcast: a deadlock
        for t in model.state_dict().values():
            dist.broadcast(t, src)


@alternative("broadcast_parameters")
def broadcast_asynchronously(model, src=0):
    with torch.no_grad():
        works = [dist.broadcast(t, src, async_op=True) for t in model.state_dict().values()]
        for w in works:
            w.wait()
