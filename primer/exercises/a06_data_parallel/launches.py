"""What the distributed checks of assignment 06 share: the deadlines, the caching of the
reference's launches, the conversion of the workers' outputs, and the seeded models, data and
shards that the workers build."""

from __future__ import annotations

import copy
import mmap

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from primer.exercises._common import seeded
from primer.grading import Case
from primer.launch import DeadlockError

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


class CallCounts:
    """How many times each rank entered and left some torch.distributed functions, in memory that
    the forked ranks share: after a deadlock, which ranks reached which call names its cause.

    The parent makes it and passes it to `launch`; each worker calls `watch(rank)` before the
    learner's code; when the launch raises DeadlockError, `explain(error)` says what the counts
    show, or gives the launcher's error back when they show nothing certain.
    """

    # What a rank that never called a collective should have done (send is point-to-point).
    ADVICE = {"broadcast": "the ranks that receive call it too, not only src",
              "all_reduce": "every rank contributes its gradient and receives the average, so "
                            "call it on every rank, not only on rank 0"}

    def __init__(self, world_size: int, names: tuple[str, ...]):
        self.world_size, self.names = world_size, names
        # [rank][name][entered, left], each slot written by one rank only: no lock needed. An
        # anonymous shared mapping, which the forked ranks inherit (no file, no /dev/shm).
        # Then, per rank: 1 + the first rank it sent to that is not its right neighbour; 1 + the
        # index of the first watched function it called with None instead of a tensor; how many
        # isend requests it dropped without waiting for them.
        # And 1000 · (k + 1) + m for the first chunk(k) that gave m ≠ k chunks.
        self._memory = mmap.mmap(-1, 8 * world_size * (len(names) * 2 + 4))
        self._counts = np.frombuffer(self._memory, dtype=np.int64)
        self._astray, self._given_none, self._dropped, self._chunked = (
            self._counts[world_size * (len(names) * 2 + k):][:world_size] for k in range(4))

    def _slot(self, rank: int, j: int, left: bool) -> int:
        return (rank * len(self.names) + j) * 2 + left

    def watch(self, rank: int) -> None:
        """In a worker: count the calls of dist.<name> (and distributed_c10d.<name>)."""
        from torch.distributed import distributed_c10d

        for j, name in enumerate(self.names):
            original = getattr(distributed_c10d, name)

            def counted(*args, _original=original, _j=j, _name=name, **kwargs):
                self._counts[self._slot(rank, _j, False)] += 1
                if (args[0] if args else kwargs.get("tensor", 0)) is None and not self._given_none[rank]:
                    self._given_none[rank] = _j + 1
                if _name in ("send", "isend"):
                    dst = args[1] if len(args) > 1 else kwargs.get("dst", kwargs.get("group_dst"))
                    if isinstance(dst, int) and dst != (rank + 1) % self.world_size \
                            and not self._astray[rank]:
                        self._astray[rank] = dst + 1
                out = _original(*args, **kwargs)
                self._counts[self._slot(rank, _j, True)] += 1
                return _Request(out, self._dropped, rank) if _name == "isend" and out else out
            setattr(dist, name, counted)
            setattr(distributed_c10d, name, counted)

    def watch_chunk(self, rank: int) -> None:
        """In a worker: note a tensor.chunk(k) (or torch.chunk) that gives fewer than k chunks."""
        original = torch.Tensor.chunk

        def chunk(tensor, chunks, dim=0):
            out = original(tensor, chunks, dim)
            if len(out) != chunks and not self._chunked[rank]:
                self._chunked[rank] = 1000 * (chunks + 1) + len(out)
            return out
        torch.Tensor.chunk = chunk
        torch.chunk = chunk

    def calls(self, name: str) -> list[tuple[int, int]]:
        j = self.names.index(name)
        return [(int(self._counts[self._slot(r, j, False)]), int(self._counts[self._slot(r, j, True)]))
                for r in range(self.world_size)]

    def explain(self, error: Exception) -> Exception:
        """The launch's error (DeadlockError or WorkerError), or one that names its cause."""
        named = self._explain_deadlock(error) if isinstance(error, DeadlockError) else None
        astray = [(r, int(d) - 1) for r, d in enumerate(self._astray) if d]
        forbidden = "may use only" in str(error)  # ring_allreduce's collectives: said already
        none = [(r, self.names[int(j) - 1]) for r, j in enumerate(self._given_none) if j]
        if named is None and none:
            r, name = none[0]
            named = type(error)(
                f"rank {r} of {self.world_size} called dist.{name}(None): a parameter that does "
                "not require grad (frozen) has no gradient, its .grad is None; skip the "
                "parameters whose p.grad is None.")
        chunked = [(r, int(c) // 1000 - 1, int(c) % 1000) for r, c in enumerate(self._chunked) if c]
        if named is None and chunked and not forbidden:
            r, k, m = chunked[0]
            named = type(error)(
                f"rank {r} of {self.world_size}: tensor.chunk({k}) gave {m} chunks, not {k} "
                "(chunk() cuts pieces of ⌈n/k⌉ elements and leaves out the empty ones); "
                "tensor_split(W) always gives W chunks, some of them empty when n < W "
                f"(then {str(error).splitlines()[0]})")
        if named is None and astray and not forbidden:
            r, d = astray[0]
            first = str(error).split("\n", 1)[0]
            named = type(error)(
                f"rank {r} of {self.world_size} sent to rank {d}, not to its right neighbour "
                f"{(r + 1) % self.world_size}: in the ring, rank r sends to (r + 1) mod W and "
                f"receives from (r − 1) mod W, or the ranks disagree on what each message holds "
                f"(then {first})")
        return named or error

    def _explain_deadlock(self, error: DeadlockError) -> DeadlockError | None:
        for name in self.names:
            calls = self.calls(name)
            never = [r for r, (entered, _) in enumerate(calls) if not entered]
            if name in self.ADVICE and never and len(never) < self.world_size:
                did = [r for r in range(self.world_size) if r not in never]
                return DeadlockError(
                    f"deadlock: {_ranks(never)} of {self.world_size} never called dist.{name}, "
                    f"which {_ranks(did)} called: every rank must call dist.{name} for each "
                    f"tensor, in the same order ({self.ADVICE[name]}).")
            if name == "send" and all(entered > left for entered, left in calls):
                return DeadlockError(
                    "deadlock: every rank was waiting in a blocking dist.send at once, so none "
                    "reached its recv. Send with req = dist.isend(...), then dist.recv(...), then "
                    "req.wait().")
        dropped = [r for r, n in enumerate(self._dropped) if n]
        if dropped:
            return DeadlockError(
                f"deadlock: {_ranks(dropped)} of {self.world_size} let go of dist.isend requests "
                "without calling their wait(), and a rank waited for a message that never came: "
                "a message is only sure to be delivered once req.wait() has returned. Keep each "
                "request: req = dist.isend(...), then dist.recv(...), then req.wait().")
        return None


class _Request:
    """An isend's work handle that counts, in `dropped[rank]`, being let go of unwaited."""

    def __init__(self, work, dropped, rank):
        self._work, self._dropped, self._rank, self._waited = work, dropped, rank, False

    def wait(self, *args, **kwargs):
        self._waited = True
        return self._work.wait(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._work, name)

    def __del__(self):
        if not self._waited:
            self._dropped[self._rank] += 1


def _ranks(ranks: list[int]) -> str:
    return f"rank{'s' * (len(ranks) > 1)} {', '.join(map(str, ranks))}"


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
    with seeded(seed):
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
