"""Assignment 01, count_parameters: mistakes a learner might make, and correct answers written differently."""

import math

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


@mutant("count_parameters")
def count_tensors(model):
    return len([p for p in model.parameters() if p.requires_grad])


@alternative("count_parameters")
def count_by_identity(model):
    seen = {}
    for _, p in model.named_parameters(remove_duplicate=False):
        if p.requires_grad:
            seen[id(p)] = math.prod(p.shape)
    return sum(seen.values())
