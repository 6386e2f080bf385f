"""Assignment 02, minibatches: mistakes a learner might make, and correct answers written
differently."""

import warnings

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- minibatches


@mutant("minibatches", hint="with replacement", fails=("partition",))
def mb_with_replacement(n, batch_size, generator):
    idx = torch.randint(0, n, (n,), generator=generator)
    return [idx[i:i + batch_size] for i in range(0, n, batch_size)]


@mutant("minibatches", hint="dropping the last", fails=("partition",))
def mb_drop_last(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    for i in range(n // batch_size):
        yield perm[i * batch_size:(i + 1) * batch_size]


@mutant("minibatches", hint="without the generator", fails=("order",))
def mb_global_rng(n, batch_size, generator):
    yield from torch.randperm(n).split(batch_size)


@mutant("minibatches", hint="not shuffled", fails=("order",))
def mb_in_order(n, batch_size, generator):
    yield from torch.arange(n).split(batch_size)


@mutant("minibatches", fails=("order",))
def mb_shuffled_another_way(n, batch_size, generator):
    perm = torch.rand(n, generator=generator).argsort()
    return list(perm.split(batch_size))


@mutant("minibatches", fails=("order",))
def mb_same_order_every_epoch(n, batch_size, generator):
    fresh = torch.Generator().manual_seed(generator.initial_seed())
    return torch.randperm(n, generator=fresh).split(batch_size)


@mutant("minibatches", fails=("partition",))
def mb_one_big_batch(n, batch_size, generator):
    return [torch.randperm(n, generator=generator)]


@alternative("minibatches")
def mb_split(n, batch_size, generator):
    return torch.randperm(n, generator=generator).split(batch_size)


@alternative("minibatches")
def mb_tensor_split_with_warning(n, batch_size, generator):
    warnings.warn("a harmless warning from the learner's code")
    perm = torch.randperm(n, generator=generator)
    return iter(perm.tensor_split(list(range(batch_size, n, batch_size))))


# --------------------------------------------------------------------------- added with the hints
# of the one-hint rule (appended after the mutants above).


@mutant("minibatches", hint="new generator (or seed) on every call", fails=("partition", "order"))
def mb_reseeds_every_call(n, batch_size, generator):
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(1234))
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


@mutant("minibatches", hint="perm.chunk(k)", fails=("partition",))
def mb_chunks(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    return list(perm.chunk(-(-n // batch_size)))


@mutant("minibatches", hint="shuffling the order of the batches", fails=("partition",))
def mb_shuffles_batches_not_examples(n, batch_size, generator):
    batches = list(torch.arange(n).split(batch_size))
    return [batches[i] for i in torch.randperm(len(batches), generator=generator)]


@alternative("minibatches")
def mb_while_loop(n, batch_size, generator):
    perm = torch.randperm(n, generator=generator)
    out, start = [], 0
    while start < n:
        out.append(perm[start:min(start + batch_size, n)])
        start += batch_size
    return out


# --------------------------------------------------------------------------- added with the hint
# for Python's and NumPy's global RNGs (blind testers' answers, ported).


@mutant("minibatches", hint="Python's random", fails=("order",))
def mb_random_shuffle(n, batch_size, generator):
    import random

    idx = list(range(n))
    random.shuffle(idx)
    perm = torch.tensor(idx)
    return [perm[i:i + batch_size] for i in range(0, n, batch_size)]


@mutant("minibatches", hint="Python's random", fails=("order",))
def mb_numpy_permutation(n, batch_size, generator):
    import numpy

    perm = numpy.random.permutation(n)
    return [torch.as_tensor(perm[i:i + batch_size]) for i in range(0, n, batch_size)]
