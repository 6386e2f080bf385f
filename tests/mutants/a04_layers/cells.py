"""Variants compiled as notebook cells are: the tripwires of forbid() (primer/rules.py) only see
calls made from a learner's cell, so a mutant that calls a forbidden function must be one."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from primer import exercises, rules  # noqa: F401  (importing exercises declares what they forbid)

rules.install()  # test_exercises.py evaluates without get_check(), which would install them


def cell(source: str, name: str, module: str, **names):
    """The object `name` defined by `source`, compiled as a notebook cell, in `module`."""
    namespace = {"__name__": module, "math": math, "torch": torch, "F": F, "nn": nn, **names}
    exec(compile(source, f"<cell {name}>", "exec"), namespace)
    return namespace[name]
