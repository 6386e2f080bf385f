"""Assignment 06, shard_indices: mistakes and correct answers written differently."""

import numpy as np
import torch

from tests.mutants import alternative, mutant


@mutant("shard_indices", hint="contiguous blocks", fails=("even", "uneven"))
def shard_blocks(n, rank, world_size):
    per_rank = n // world_size
    return list(range(rank * per_rank, (rank + 1) * per_rank))


@mutant("shard_indices", hint="unequal sizes", fails=("uneven",))
def shard_keeps_remainder(n, rank, world_size):
    return list(range(rank, n, world_size))


@mutant("shard_indices", hint="drop_last=False", fails=("uneven",))
def shard_pads_like_the_default_sampler(n, rank, world_size):
    per_rank = -(-n // world_size)
    indices = list(range(n))
    indices += indices[:per_rank * world_size - n]
    return indices[rank::world_size]


@mutant("shard_indices", fails=("even",))
def shard_off_by_one(n, rank, world_size):
    return list(range(rank + 1, n // world_size * world_size + 1, world_size))


@alternative("shard_indices")
def shard_as_tensor_slice(n, rank, world_size):
    usable = n - n % world_size
    return torch.arange(n)[rank:usable:world_size]


@alternative("shard_indices")
def shard_by_comprehension(n, rank, world_size):
    return [i for i in range(n // world_size * world_size) if i % world_size == rank]


@mutant("shard_indices", hint="first n mod W", fails=("uneven",))
def shard_drops_the_first_samples(n, rank, world_size):
    return list(range(n % world_size + rank, n, world_size))


@mutant("shard_indices", hint="one index too few", fails=("even", "uneven"))
def shard_one_short(n, rank, world_size):
    return list(range(rank, n, world_size))[:n // world_size - 1]


@alternative("shard_indices")
def shard_by_slicing_the_kept_range(n, rank, world_size):
    return list(range(n))[:n - n % world_size][rank::world_size]


@alternative("shard_indices")
def shard_by_reshaping_into_rows(n, rank, world_size):
    """The kept indices as rows of world_size, rank r's column (numpy ints made Python ints)."""
    per_rank = n // world_size
    return [int(i) for i in np.arange(per_rank * world_size).reshape(per_rank, world_size)[:, rank]]
