"""shard_indices: the indices DistributedSampler gives each rank (shuffle=False, drop_last=True)."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DistributedSampler

from primer.exercises._common import randint
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid


def _reference_shard(n: int, rank: int, world_size: int) -> list[int]:
    sampler = DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False,
                                 drop_last=True)
    return list(sampler)


def _as_int_list(out):
    if isinstance(out, torch.Tensor):
        return [int(v) for v in out.reshape(-1).tolist()]
    if isinstance(out, (list, tuple, range, np.ndarray)):
        try:
            return [int(v) for v in out]
        except (TypeError, ValueError):
            return out
    return out


def _run_shards(fn, case: Case):
    """Every rank's shard: a list (over ranks) of lists of indices."""
    n, world_size = case.args
    return [_as_int_list(fn(n, rank, world_size)) for rank in range(world_size)]


def _shard_cases(uneven: bool):
    def cases(gen):
        out = []
        for world_size in (2, 3, 4):
            per_rank = 2 + int(randint(gen, 5))
            extra = 1 + int(randint(gen, world_size - 1)) if uneven else 0
            n = per_rank * world_size + extra
            out.append(Case(f"n={n}, world_size={world_size}", (n, world_size)))
        if uneven:
            out.append(Case("n=3, world_size=4 (fewer samples than ranks)", (3, 4)))
        return out
    return cases


def _shard_blocks(n, rank, world_size):
    per_rank = n // world_size
    return list(range(rank * per_rank, (rank + 1) * per_rank))


def _shard_keep_remainder(n, rank, world_size):
    return list(range(rank, n, world_size))


def _shard_padded(n, rank, world_size):
    return list(DistributedSampler(range(n), num_replicas=world_size, rank=rank, shuffle=False))


def _shard_drop_first(n, rank, world_size):
    return list(range(n % world_size + rank, n, world_size))


def _shard_one_short(n, rank, world_size):
    return list(range(rank, n, world_size))[:n // world_size - 1]


_SHARD_HINTS = (
    Hint(_shard_drop_first, "this matches dropping the first n mod W samples: drop_last drops "
         "the last ones, so rank r still starts at index r."),
    Hint(_shard_one_short, "every rank got one index too few: rank r takes r, r + W, ..., "
         "⌊n/W⌋ indices in all (check the end of your range)."),
    Hint(_shard_blocks, "this matches contiguous blocks (rank r takes r·n/W ... (r+1)·n/W − 1); "
         "DistributedSampler interleaves: rank r takes r, r + W, r + 2W, ..."),
    Hint(_shard_keep_remainder, "this matches keeping the last n mod W samples, so the shards "
         "have unequal sizes; with drop_last=True they are dropped and every rank gets ⌊n/W⌋."),
    Hint(_shard_padded, "this matches drop_last=False: the sampler pads by repeating samples; "
         "with drop_last=True the remainder is dropped instead."),
)

register(
    Check("shard_indices", "even", "interleaves indices like DistributedSampler when W divides n",
          _shard_cases(uneven=False), _reference_shard, run=_run_shards, hints=_SHARD_HINTS,
          levels=("rank", "position")),
    Check("shard_indices", "uneven", "drops the remainder so every rank gets ⌊n/W⌋ indices",
          _shard_cases(uneven=True), _reference_shard, run=_run_shards, hints=_SHARD_HINTS,
          levels=("rank", "position")),
)

# shard_indices: "without using DistributedSampler".
forbid("shard_indices", "torch.utils.data.distributed.DistributedSampler")
