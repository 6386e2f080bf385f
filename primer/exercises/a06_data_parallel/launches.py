"""What the distributed checks of assignment 06 share: the deadlines, the caching of the
reference's launches, the conversion of the workers' outputs, and the seeded models, data and
shards that the workers build."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from primer.grading import Case

# The process group's timeout in the checks: a send, recv or collective that waits this long is
# reported as a deadlock. Small collectives take milliseconds, so this is a wide margin even on
# a loaded machine. The check's own alarm (CHECK_TIMEOUT) must outlast the launch's deadline
# (LAUNCH_TIMEOUT plus the launcher's grace of a few seconds) so that the launcher reports first.
LAUNCH_TIMEOUT = 4.0
CHECK_TIMEOUT = 20.0


def _reference_cached(run):
    """`run`, remembering the reference's outputs per case.

    A reference's outputs depend only on the case, and each costs a launch of several processes.
    The notebook evaluates each case once, but the test suite evaluates the same cases for the
    solution, every mutant and every alternative: there the reference runs once per case.
    """
    cache: dict = {}

    def cached(obj, case: Case):
        if not getattr(obj, "_primer_reference", False):
            return run(obj, case)
        key = (case.args, tuple(sorted(case.kwargs.items())))
        if key not in cache:
            cache[key] = run(obj, case)
        return copy.deepcopy(cache[key])
    cached.__name__ = run.__name__
    cached.__doc__ = run.__doc__
    return cached


def _reference(obj):
    """Mark a reference object, whose outputs `_reference_cached` may remember."""
    obj._primer_reference = True
    return obj


def _tensors(x):
    """numpy arrays from the workers -> torch tensors (what `compare` expects), recursively."""
    if isinstance(x, np.ndarray):
        return torch.from_numpy(x)
    if isinstance(x, list):
        return [_tensors(v) for v in x]
    if isinstance(x, tuple):
        return tuple(_tensors(v) for v in x)
    if isinstance(x, dict):
        return {k: _tensors(v) for k, v in x.items()}
    return x


def _numpy(tensors) -> list[np.ndarray]:
    return [t.detach().numpy().copy() for t in tensors]


def _seeded_model(seed: int, *widths: int, batchnorm: bool = False) -> nn.Module:
    """An MLP with tanh between its Linear layers (and a BatchNorm1d after the first, if asked)."""
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
            if i:
                layers.append(nn.Tanh())
            layers.append(nn.Linear(d_in, d_out))
            if batchnorm and i == 0:
                bn = nn.BatchNorm1d(d_out)
                bn.running_mean.normal_()
                bn.running_var.uniform_(0.5, 2.0)
                bn.num_batches_tracked.fill_(seed % 997)  # differs between ranks
                layers.append(bn)
    return nn.Sequential(*layers)


def _data(seed: int, n: int, d_in: int, d_out: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_in, generator=g), torch.randn(n, d_out, generator=g)


def _shard(x: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    return x[rank::world_size]  # DistributedSampler's interleaving (shuffle=False)
