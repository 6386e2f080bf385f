"""What the checks of assignment 07 share: the record of every rank's communication, the seeded
layers and data the workers build, the slices each rank holds, and the derivations' sentinels.

The launch and check deadlines, the caching of the reference's launches and the conversion of the
workers' outputs are assignment 06's (a06_data_parallel/launches.py): the same launcher, the same
contract.
"""

from __future__ import annotations

import torch
from torch import nn

from primer.exercises._common import seeded
from primer.exercises.a06_data_parallel.launches import (  # noqa: F401  (re-exported)
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    _numpy,
    _reference,
    _reference_cached,
    _tensors,
)

# The process group's methods, which every route to a collective or a message goes through
# (dist.all_reduce, torch.distributed.nn.functional.*, dist.isend, batch_isend_irecv, ...), by the
# name the record gives them.
_METHODS = {
    "allreduce": "all_reduce", "allreduce_coalesced": "all_reduce",
    "allgather": "all_gather", "allgather_coalesced": "all_gather",
    "allgather_into_tensor_coalesced": "all_gather", "_allgather_base": "all_gather",
    "all_gather_single": "all_gather", "all_gather_single_coalesced": "all_gather",
    "reduce_scatter": "reduce_scatter", "reduce_scatter_single": "reduce_scatter",
    "reduce_scatter_single_coalesced": "reduce_scatter",
    "reduce_scatter_tensor_coalesced": "reduce_scatter", "_reduce_scatter_base": "reduce_scatter",
    "broadcast": "broadcast", "reduce": "reduce", "alltoall": "all_to_all",
    "alltoall_base": "all_to_all", "all_to_all_single": "all_to_all", "gather": "gather",
    "scatter": "scatter", "send": "send", "recv": "recv", "recv_anysource": "recv",
}


def _numel(x) -> int:
    """Elements of the first tensor argument: a tensor, or (nested) lists of them, the first one."""
    while isinstance(x, (list, tuple)) and x:
        x = x[0]
    return x.numel() if isinstance(x, torch.Tensor) else 0


class Traffic:
    """In a worker: a record of every collective and message this rank issues.

    Each entry is (phase, operation, elements, peer): `phase` is whatever the check set last
    ("forward", "backward", "step", ...), `elements` the size of the tensor this rank contributes
    (for an all-gather, its own part; for a send, the message), `peer` the destination of a send or
    the source of a recv (None for a collective). Only the outermost call counts (one collective
    that calls another is one collective). The workers are forked: nothing changes in the notebook.
    """

    def __init__(self):
        from torch._C._distributed_c10d import ProcessGroup

        self.phase = ""
        self.log: list[tuple[str, str, int, int | None]] = []
        self._depth = 0
        for method, name in _METHODS.items():
            if hasattr(ProcessGroup, method):
                setattr(ProcessGroup, method, self._recording(getattr(ProcessGroup, method), name))

    def _recording(self, original, name):
        def method(group, *args, **kwargs):
            if self._depth == 0 and self.phase:
                peer = args[1] if name in ("send", "recv") and len(args) > 1 else None
                self.log.append((self.phase, name, _numel(args[0] if args else None),
                                 peer if isinstance(peer, int) else None))
            self._depth += 1
            try:
                return original(group, *args, **kwargs)
            finally:
                self._depth -= 1
        return method

    def collectives(self, phase: str) -> list[str]:
        """The collectives of `phase`, in order, as "all_reduce of 12 elements"."""
        return [f"{name} of {n} elements" for p, name, n, _ in self.log
                if p == phase and name not in ("send", "recv")]

    def elements(self, phase: str | None = None) -> int:
        """Elements this rank contributed to collectives and sends (all phases by default)."""
        return sum(n for p, name, n, _ in self.log if name != "recv" and phase in (None, p))


def part(n: int, rank: int, world_size: int) -> slice:
    """The contiguous block of n // world_size indices that rank `rank` holds."""
    size = n // world_size
    return slice(rank * size, (rank + 1) * size)


def seeded_linear(seed: int, d_in: int, d_out: int) -> nn.Linear:
    with seeded(seed):
        return nn.Linear(d_in, d_out)


def seeded_data(seed: int, *shapes) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=g) for shape in shapes]


def load_part(layer, name: str, value: torch.Tensor, who: str, what: str) -> torch.Tensor:
    """Copy `value` (this rank's part of a full tensor) into `layer.<name>`; a clear error when the
    layer has no such parameter or holds a part of another shape."""
    p = getattr(layer, name, None)
    if not isinstance(p, torch.Tensor):
        raise ValueError(f"{who} has no tensor attribute `{name}`: keep this rank's part of the "
                         f"full layer's {name} in self.{name} (an nn.Parameter)")
    if tuple(p.shape) != tuple(value.shape):
        raise ValueError(f"{who}.{name} has shape {tuple(p.shape)}; this rank should hold {what}, "
                         f"of shape {tuple(value.shape)}")
    with torch.no_grad():
        p.copy_(value)
    return p


def grad_or_none(t: torch.Tensor):
    return None if t.grad is None else t.grad.detach().numpy().copy()


class Derivation:
    """A check's reference that is computed in the check's own process (by torch, without
    launching anything): the unsplit layer, sequential training, single-process AdamW."""

    def __init__(self, what: str):
        self.what = what

    def __repr__(self):
        return self.what
