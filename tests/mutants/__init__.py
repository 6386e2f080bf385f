"""Implementations a learner might write, used to test the graders.

One package per assignment, named like its spec package in primer/exercises/, with a module per
exercise or group of exercises (imported by the package in the notebook's order). In it:

    @mutant("cross_entropy", hint="log-sum-exp")   # wrong: must fail at least one check, and
    def ce_without_max(...): ...                  # the failure must mention `hint` if given

    @alternative("cross_entropy")                 # right but written differently: must pass
    def ce_with_logsumexp(...): ...

The decorated function or class is what the learner would define under the exercise's name.
A mutant whose every failure is a deadlock says so: `@mutant(..., deadlocks=True)` (Variant).
"""

from __future__ import annotations

import importlib
import math
import pkgutil
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Variant:
    assignment: str  # module name, e.g. "a01_parameterized_functions"
    exercise: str
    obj: Any
    correct: bool
    hint: str | None = None  # a substring the failure message must contain
    fails: tuple[str, ...] = ()  # check names that must fail (default: at least one)
    # Every check it fails ends in a deadlock. tests/test_exercises.py runs such a mutant with a
    # short process-group timeout: a deadlock is one at any timeout, and each check it must fail
    # would otherwise wait out the 4 s the checks allow a slow but correct program.
    deadlocks: bool = False

    @property
    def id(self) -> str:
        return f"{self.exercise}-{getattr(self.obj, '__name__', 'obj')}"


VARIANTS: list[Variant] = []


def _module_name(obj) -> str:
    """The assignment's name: tests.mutants.a02_gradient_descent.sgd -> a02_gradient_descent."""
    return obj.__module__.split(".")[2]


def mutant(exercise: str, hint: str | None = None, fails: tuple[str, ...] = (), deadlocks: bool = False):
    def register(obj):
        VARIANTS.append(Variant(_module_name(obj), exercise, obj, False, hint, fails, deadlocks))
        return obj
    return register


def alternative(exercise: str):
    def register(obj):
        VARIANTS.append(Variant(_module_name(obj), exercise, obj, True))
        return obj
    return register


def as_cell(source: str, name: str, module: str, **names):
    """The object `name` that `source` defines, compiled as a notebook cell is, in `module` (the
    variant's assignment). The tripwires of forbid() (primer/rules.py, installed by `import
    primer`) count only calls made from a learner's cell, so a variant that calls a forbidden
    function must be written this way."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    import primer  # noqa: F401  (registers the checks and installs the tripwires)

    namespace = {"__name__": module, "math": math, "torch": torch, "F": F, "nn": nn, **names}
    exec(compile(source, f"<cell {name}>", "exec"), namespace)
    return namespace[name]


def load_all() -> list[Variant]:
    for info in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{info.name}")
    return VARIANTS
