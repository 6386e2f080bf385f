"""minibatches: one epoch's shuffled index batches (the partition, then the exact order)."""

from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from primer.exercises._common import seeded
from primer.exercises.a02_gradient_descent.cases import _int
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- minibatches
#
# Contract: one call is one epoch. perm = torch.randperm(n, generator=generator), then the
# batches are perm[0:b], perm[b:2b], ... (the last one holds what is left). Properties are graded
# separately from the exact order, so a learner who shuffles another way is told which part holds.


def _reference_minibatches(n, batch_size, generator):
    return torch.randperm(n, generator=generator).split(batch_size)


def _minibatch_cases(gen):
    # (10, 6): perm.chunk(2) cuts 5 + 5, not 6 + 4 (on the first three, chunk and split agree)
    sizes = [(10, 3), (12, 4), (7, 10), (1, 1), (10, 6), (_int(gen, 20, 200), _int(gen, 2, 32))]
    return [Case(f"n={n}, batch_size={b}", (n, b, _int(gen, 0, 2**31 - 1))) for n, b in sizes]


@contextlib.contextmanager
def _seeded_python_and_numpy(seed):
    """Python's and NumPy's global RNGs seeded for the block, then restored: a learner who
    shuffles with them gets the same order as the hint that does."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    random.seed(seed)
    np.random.seed(seed)
    try:
        yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _epochs(fn, case, count=2):
    """`count` epochs drawn from one generator; the global RNGs (torch's, Python's, NumPy's) are
    fixed too, for the hints."""
    n, batch_size, seed = case.args
    generator = torch.Generator().manual_seed(seed)
    with seeded(seed + 1), _seeded_python_and_numpy(seed + 1):
        return [list(fn(n, batch_size, generator)) for _ in range(count)]


def _run_minibatch_properties(fn, case):
    n = case.args[0]
    epochs = _epochs(fn, case)
    out = {}
    for e, batches in enumerate(epochs, 1):
        batches = [torch.as_tensor(b) for b in batches]
        flat = torch.cat([b.reshape(-1) for b in batches]) if batches else torch.zeros(0)
        out[f"epoch {e}: batch sizes"] = [int(b.numel()) for b in batches]
        out[f"epoch {e}: every index 0..n-1 exactly once"] = bool(
            flat.numel() == n and torch.equal(flat.sort().values.long(), torch.arange(n)))
    orders = [torch.cat([torch.as_tensor(b).reshape(-1) for b in batches]).long()
              if batches else torch.zeros(0, dtype=torch.long) for batches in epochs]
    out["epoch 1 shuffled (not 0, 1, 2, ... in order)"] = not torch.equal(
        orders[0], torch.arange(orders[0].numel()))
    out["epoch 2 in another order than epoch 1"] = not torch.equal(orders[0], orders[1])
    return out


def _run_minibatch_order(fn, case):
    epochs = _epochs(fn, case)
    return {f"epoch {e}": [torch.as_tensor(b) for b in batches]
            for e, batches in enumerate(epochs, 1)}


def _minibatch_order_cases(gen):
    return [Case(f"{c.label}: expected torch.randperm(n, generator=generator) cut into "
                 "consecutive batches", c.args) for c in _minibatch_cases(gen) if c.args[0] > 1]


def _mb_with_replacement(n, batch_size, generator):
    return torch.randint(0, n, (n,), generator=generator).split(batch_size)


def _mb_drop_last(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    return [perm[i:i + batch_size] for i in range(0, n - batch_size + 1, batch_size)]


def _mb_global_rng(n, batch_size, generator):
    return torch.randperm(n).split(batch_size)


def _mb_not_shuffled(n, batch_size, generator):
    return torch.arange(n).split(batch_size)


def _mb_fixed_seed(n, batch_size, generator):
    """The mistake: a new generator with a fixed seed, so every epoch has the same order."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(0)).split(batch_size)


def _mb_chunked(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    return perm.chunk(-(-n // batch_size))


def _mb_shuffled_batches(n, batch_size, generator):
    """The mistake: the batches of 0..n−1 in a shuffled order, not the examples shuffled."""
    batches = torch.arange(n).split(batch_size)
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


def _mb_python_shuffle(n, batch_size, generator):
    """The mistake: Python's global RNG, which knows nothing of `generator`."""
    order = list(range(n))
    random.shuffle(order)
    return torch.tensor(order).split(batch_size)


def _mb_python_sample(n, batch_size, generator):
    return torch.tensor(random.sample(range(n), n)).split(batch_size)


def _mb_numpy_permutation(n, batch_size, generator):
    return torch.from_numpy(np.random.permutation(n)).split(batch_size)


_OTHER_RNG = ("this matches shuffling with Python's random (or NumPy's np.random), a global RNG "
              "that ignores the `generator` you are given; shuffle with torch: "
              "torch.randperm(n, generator=generator).")

_MB_HINTS = (
    Hint(_mb_with_replacement, "this matches drawing indices with replacement "
         "(torch.randint): some examples repeat and others are never seen in the epoch. Shuffle "
         "a permutation instead."),
    Hint(_mb_drop_last, "this matches dropping the last, smaller batch; keep it."),
    Hint(_mb_global_rng, "this matches torch.randperm(n) without the generator; pass "
         "generator=generator so that the shuffle is reproducible."),
    Hint(_mb_not_shuffled, "the indices are not shuffled: 0, 1, 2, ... in order."),
    Hint(_mb_fixed_seed, "this matches a new generator (or seed) on every call, so every epoch "
         "has the same order; draw from the `generator` you are given, which moves on between "
         "calls: torch.randperm(n, generator=generator)."),
    Hint(_mb_chunked, "this matches perm.chunk(k), which cuts k pieces of about equal size; the "
         "batches are batch_size long except the last: perm.split(batch_size) or "
         "perm[i:i + batch_size]."),
    Hint(_mb_shuffled_batches, "this matches shuffling the order of the batches of 0..n−1, so "
         "each batch holds neighbouring indices; shuffle the examples: cut "
         "torch.randperm(n, generator=generator) into consecutive batches."),
    Hint(_mb_python_shuffle, _OTHER_RNG),
    Hint(_mb_python_sample, _OTHER_RNG),
    Hint(_mb_numpy_permutation, _OTHER_RNG),
)

register(
    Check("minibatches", "partition",
          "yields every index exactly once per epoch, in batches of batch_size (the last may "
          "be smaller), shuffled, in a new order each epoch", _minibatch_cases, _reference_minibatches,
          run=_run_minibatch_properties, hints=_MB_HINTS),
    Check("minibatches", "order",
          "shuffles with torch.randperm(n, generator=generator), cut into consecutive batches",
          _minibatch_order_cases, _reference_minibatches, run=_run_minibatch_order, exact=True,
          hints=_MB_HINTS),
)
