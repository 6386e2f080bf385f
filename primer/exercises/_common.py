"""Small helpers shared by the exercise specs: seeded inputs and models."""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def randn(gen: torch.Generator, *shape, dtype=torch.float32, scale: float = 1.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=dtype) * scale


def randint(gen: torch.Generator, high: int, *shape) -> torch.Tensor:
    return torch.randint(0, high, shape, generator=gen)


def seed_from(gen: torch.Generator) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=gen))


@contextlib.contextmanager
def seeded(gen_or_seed):
    """Run a block under a fixed global seed (module initialisation uses the global RNG).

    Only the CPU's generator is seeded: torch.manual_seed also queues a seeding of each
    accelerator backend (CUDA, XPU, MTIA) with a formatted stack trace for each, about 3 ms a
    call under pytest, and the checks seed thousands of times. The values are the same."""
    seed = gen_or_seed if isinstance(gen_or_seed, int) else seed_from(gen_or_seed)
    with torch.random.fork_rng(devices=[]):
        torch.random.default_generator.manual_seed(seed)
        yield


def mlp(gen: torch.Generator, *widths: int, activation=nn.Tanh) -> nn.Sequential:
    """Linear layers of the given widths with an activation between them, seeded."""
    layers: list[nn.Module] = []
    with seeded(gen):
        for i, (d_in, d_out) in enumerate(zip(widths[:-1], widths[1:])):
            if i:
                layers.append(activation())
            layers.append(nn.Linear(d_in, d_out))
    return nn.Sequential(*layers)
