"""Assignment 01, count_parameters: mistakes a learner might make, and correct answers written differently."""

import math

import torch
from torch import nn

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- count_parameters


@mutant("count_parameters", hint="shared parameter", fails=("shared_and_frozen",))
def count_per_module(model):
    return sum(p.numel() for m in model.modules() for p in m.parameters(recurse=False))


@mutant("count_parameters", hint="requires_grad=False", fails=("shared_and_frozen",))
def count_frozen_too(model):
    return sum(p.numel() for p in model.parameters())


@mutant("count_parameters", hint="only the weights")
def count_weights_only(model):
    return sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight"))


@mutant("count_parameters", hint="parameter tensors")
def count_tensors(model):
    return len([p for p in model.parameters() if p.requires_grad])


@alternative("count_parameters")
def count_by_identity(model):
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        if p.requires_grad:
            seen[id(p)] = math.prod(p.shape)
    return sum(seen.values())


# Appended (issue "feedback that names what learners get wrong"): each names its mistake.


@mutant("count_parameters", hint="first dimension", fails=("plain",))
def count_first_dims(model):
    return sum(len(p) for p in model.parameters() if p.requires_grad)


@mutant("count_parameters", hint="state_dict()", fails=("plain",))
def count_state_dict(model):
    return sum(v.numel() for v in model.state_dict().values())


@mutant("count_parameters", hint="children's parameters only", fails=("plain",))
def count_children_only(model):
    return sum(p.numel() for c in model.children() for p in c.parameters() if p.requires_grad)


@mutant("count_parameters", hint="each parameter shape once", fails=("plain",))
def count_unique_shapes(model):
    seen = {}
    for p in model.parameters():
        if p.requires_grad:
            seen[tuple(p.shape)] = p.numel()
    return sum(seen.values())


@mutant("count_parameters", hint="have a .grad", fails=("plain",))
def count_with_grad(model):
    return sum(p.numel() for p in model.parameters() if p.grad is not None)


@mutant("count_parameters", hint="return a Python int", fails=("plain",))
def count_as_tensor(model):
    return torch.tensor(sum(p.numel() for p in model.parameters() if p.requires_grad))


@alternative("count_parameters")
def count_by_data_ptr(model):
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        if p.requires_grad:
            seen[p.data_ptr()] = p.numel()
    return sum(seen.values())


@alternative("count_parameters")
def count_by_parameters_to_vector(model):
    trainable = [p for p in model.parameters() if p.requires_grad]
    return int(nn.utils.parameters_to_vector(trainable).numel()) if trainable else 0
