"""ColumnParallelLinear and RowParallelLinear: one nn.Linear split over the ranks by its weight's
rows (output features) or columns (input features); forward and backward equal the unsplit layer's.

The contract the notebook states: the layer keeps this rank's part of the full layer's weight and
bias in `self.weight` and `self.bias`; the checks build an unsplit `nn.Linear` from a seed, copy
each rank's part into them, and compare every rank's output, input gradient and parameter
gradients with the unsplit layer's (the derivation: the same layer in one process, sliced).
Rank r holds the contiguous block r of the rows (column-parallel) or columns (row-parallel).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from
from primer.grading import Case, Check, Hint, register
from primer.launch import launch

from .workers import (
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    Derivation,
    _tensors,
    grad_or_none,
    load_part,
    part,
    seeded_data,
    seeded_linear,
)

UNSPLIT = Derivation("the unsplit nn.Linear")
_KEYS = ("output", "input gradient", "weight gradient", "bias gradient")
_BATCH = 3


def _unsplit(seed: int, d_in: int, d_out: int):
    """The full layer's output and gradients for the upstream gradient g (loss = sum(y * g))."""
    full = seeded_linear(seed, d_in, d_out)
    x, g = seeded_data(seed + 1, (_BATCH, d_in), (_BATCH, d_out))
    x.requires_grad_()
    y = full(x)
    (y * g).sum().backward()
    return full, x, g, y.detach(), x.grad, full.weight.grad, full.bias.grad


def _column_worker(rank, world_size, cls, seed, d_in, d_out, gather):
    full, x, g, *_ = _unsplit(seed, d_in, d_out)
    rows = part(d_out, rank, world_size)
    who = "ColumnParallelLinear"
    layer = cls(d_in, d_out, rank, world_size, gather_output=gather)
    weight = load_part(layer, "weight", full.weight[rows], who, f"rows {rows.start}–{rows.stop - 1}"
                       f" of the full {tuple(full.weight.shape)} weight")
    bias = load_part(layer, "bias", full.bias[rows], who, f"elements {rows.start}–"
                     f"{rows.stop - 1} of the full bias")
    x = x.detach().clone().requires_grad_()
    upstream = g if gather else g[:, rows]
    y = layer(x)
    _expect_shape(y, upstream, f"gather_output={gather}")
    (y * upstream).sum().backward()
    return dict(zip(_KEYS, (y.detach().numpy().copy(), grad_or_none(x), grad_or_none(weight),
                            grad_or_none(bias))))


def _row_worker(rank, world_size, cls, seed, d_in, d_out, parallel_input):
    full, x, g, *_ = _unsplit(seed, d_in, d_out)
    cols = part(d_in, rank, world_size)
    who = "RowParallelLinear"
    layer = cls(d_in, d_out, rank, world_size, input_is_parallel=parallel_input)
    weight = load_part(layer, "weight", full.weight[:, cols], who, f"columns {cols.start}–"
                       f"{cols.stop - 1} of the full {tuple(full.weight.shape)} weight")
    bias = load_part(layer, "bias", full.bias, who, "the whole bias")
    x = (x[:, cols] if parallel_input else x).detach().clone().requires_grad_()
    y = layer(x)
    _expect_shape(y, g, "the output of every rank")
    (y * g).sum().backward()
    return dict(zip(_KEYS, (y.detach().numpy().copy(), grad_or_none(x), grad_or_none(weight),
                            grad_or_none(bias))))


def _expect_shape(y, like, what):
    if not isinstance(y, torch.Tensor) or y.shape != like.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"the layer returned {shape}; with {what} it should return a tensor of "
                         f"shape {tuple(like.shape)}")


def _expected(seed, d_in, d_out, world_size, column, flag):
    """Each rank's part of the unsplit layer's output and gradients."""
    _, _, _, y, dx, dw, db = _unsplit(seed, d_in, d_out)
    out = []
    for rank in range(world_size):
        if column:
            rows = part(d_out, rank, world_size)
            out.append(dict(zip(_KEYS, (y if flag else y[:, rows], dx, dw[rows], db[rows]))))
        else:
            cols = part(d_in, rank, world_size)
            out.append(dict(zip(_KEYS, (y, dx[:, cols] if flag else dx, dw[:, cols], db))))
    return [{k: v.clone() for k, v in r.items()} for r in out]


def _run(worker, column):
    def run(cls, case: Case):
        """Every rank's output, input gradient and parameter gradients."""
        world_size, seed, flag = case.args
        d_in, d_out = (5, 8) if column else (8, 5)
        if cls is UNSPLIT:
            return _expected(seed, d_in, d_out, world_size, column, flag)
        return _tensors(launch(worker, world_size, cls, seed, d_in, d_out, flag,
                               timeout=LAUNCH_TIMEOUT))
    run.__name__ = f"_run_{'column' if column else 'row'}"
    return run


_run_column = _run(_column_worker, column=True)
_run_row = _run(_row_worker, column=False)


# --------------------------------------------------------------------------- the mistakes

def _op(kind: str, t: torch.Tensor) -> torch.Tensor:
    rank, world = dist.get_rank(), dist.get_world_size()
    if kind == "identity":
        return t.view_as(t)  # a new tensor object: a Function may not hand back its input
    if kind in ("sum", "avg"):
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM if kind == "sum" else dist.ReduceOp.AVG)
        return t
    if kind == "gather":
        parts = [torch.empty_like(t) for _ in range(world)]
        dist.all_gather(parts, t.contiguous())
        return torch.cat(parts, dim=-1)
    if kind == "split":
        return t.chunk(world, dim=-1)[rank].contiguous()
    if kind == "sum_split":  # torch.distributed.nn.functional.all_gather's backward sums
        return _op("split", _op("sum", t))
    raise ValueError(kind)


class _Comm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, forward, backward):
        ctx.backward_kind = backward
        return _op(forward, x)

    @staticmethod
    def backward(ctx, g):
        return _op(ctx.backward_kind, g), None, None


def _divisible(n: int, world_size: int, name: str):
    if n % world_size:
        raise ValueError(f"{name}={n} is not divisible by world_size={world_size}")


class _Column(nn.Module):
    """A column-parallel layer, correct unless a flag says otherwise."""

    def __init__(self, in_features, out_features, rank, world_size, gather_output=True, *,
                 into="sum", gather_backward="split", check=True):
        super().__init__()
        if check:
            _divisible(out_features, world_size, "out_features")
        self.gather, self.into, self.gather_backward = gather_output, into, gather_backward
        self.weight = nn.Parameter(torch.empty(out_features // world_size, in_features))
        self.bias = nn.Parameter(torch.empty(out_features // world_size))

    def forward(self, x):
        y = F.linear(_Comm.apply(x, "identity", self.into), self.weight, self.bias)
        return _Comm.apply(y, "gather", self.gather_backward) if self.gather else y


class _Row(nn.Module):
    """A row-parallel layer, correct unless a flag says otherwise."""

    def __init__(self, in_features, out_features, rank, world_size, input_is_parallel=False, *,
                 split="chunk", reduce="sum", reduce_backward="identity", bias_first=False,
                 check=True):
        super().__init__()
        if check:
            _divisible(in_features, world_size, "in_features")
        self.rank, self.world = rank, world_size
        self.parallel, self.split, self.reduce = input_is_parallel, split, reduce
        self.reduce_backward, self.bias_first = reduce_backward, bias_first
        self.weight = nn.Parameter(torch.empty(out_features, in_features // world_size))
        self.bias = nn.Parameter(torch.empty(out_features))

    def forward(self, x):
        if not self.parallel:
            if self.split == "chunk":
                x = _Comm.apply(x, "split", "gather")
            elif self.split == "slice":  # autograd's slice: zeros in the other ranks' columns
                x = x.chunk(self.world, dim=-1)[self.rank]
            else:  # "strided"
                x = x[:, self.rank::self.world]
        y = F.linear(x, self.weight, self.bias if self.bias_first else None)
        y = _Comm.apply(y, self.reduce, self.reduce_backward)
        return y if self.bias_first else y + self.bias


def _variant(cls, **flags):
    def make(*args, **kwargs):
        return cls(*args, **kwargs, **flags)
    return make


_COLUMN_HINTS = (
    Hint(_variant(_Column, into="identity"), "the input gradient is only this rank's part "
         "(its rows of W): every rank's part of x's gradient must be summed. The input's copy "
         "is the identity forward and an all-reduce (sum) of the gradient in backward."),
    Hint(_variant(_Column, into="avg"), "this matches averaging the ranks' input gradients: "
         "they are parts of one sum (each rank holds different rows of W), so all-reduce them "
         "with SUM, not AVG."),
    Hint(_variant(_Column, gather_backward="sum_split"), "the gradients are world_size times "
         "too large: the backward of the all-gather must hand each rank its slice of the "
         "output's gradient, not sum it over ranks (torch.distributed.nn.functional.all_gather's "
         "backward sums: every rank already holds the whole gradient)."),
)

_ROW_HINTS = (
    Hint(_variant(_Row, bias_first=True), "this matches adding the bias on every rank before the "
         "all-reduce: the sum then holds world_size copies of it. Add the bias once, after the "
         "all-reduce."),
    Hint(_variant(_Row, reduce="identity"), "every rank returned only its own partial product "
         "x_r W_r^T: the ranks' partial outputs must be summed (all-reduce) in forward."),
    Hint(_variant(_Row, reduce="avg"), "this matches averaging the partial outputs: they are "
         "the terms of one sum over the input features, so all-reduce them with SUM, not AVG."),
    Hint(_variant(_Row, reduce_backward="sum"), "the gradients of x and the weight are "
         "world_size times too large: the backward of the forward's all-reduce is the identity "
         "(every rank already holds the whole output gradient), not another all-reduce "
         "(torch.distributed.nn.functional.all_reduce's backward sums)."),
    Hint(_variant(_Row, split="slice"), "x's gradient holds only this rank's columns (zeros "
         "elsewhere): the split of the input must all-gather the gradient in backward."),
    Hint(_variant(_Row, split="strided"), "this matches splitting the input by strides "
         "(x[:, rank::world_size]): split it into contiguous blocks, the same columns as this "
         "rank's columns of the weight."),
)


def _cases(flags):
    def cases(gen):
        return [Case(f"{w} ranks, {name}={flag}", (w, seed_from(gen), flag))
                for w, name, flag in flags]
    return cases


# --------------------------------------------------------------------------- divisibility

_RAISED, _NAMED = "exception raised", "the message says both numbers"


def _run_divisible(cls, case: Case):
    """What constructing the layer on every rank raised, when the split does not divide."""
    d_in, d_out, world_size, column = case.args
    if cls is UNSPLIT:
        return {_RAISED: ["ValueError"] * world_size, _NAMED: True}
    n = d_out if column else d_in
    raised, named = [], True
    for rank in range(world_size):
        try:
            cls(d_in, d_out, rank, world_size)
            raised.append("nothing")
        except NotImplementedError:
            raise  # the released stub: "not implemented yet", not a wrong exception
        except Exception as exc:  # the check's point: which exception, with which message
            raised.append(type(exc).__name__)
            named = named and str(n) in str(exc) and str(world_size) in str(exc)
    return {_RAISED: raised, _NAMED: named and "nothing" not in raised}


def _divisible_cases(column):
    def cases(gen):
        w = 4
        n = w * (2 + int(torch.randint(0, 3, (1,), generator=gen))) + 2
        d_in, d_out = (5, n) if column else (n, 5)
        name = "out_features" if column else "in_features"
        return [Case(f"{name}={n} on {w} ranks", (d_in, d_out, w, column))]
    return cases


_DIVISIBLE_HINTS = (
    Hint(_variant(_Column, check=False), "the constructor accepted the split: check that "
         "out_features % world_size == 0 and raise ValueError (saying both numbers) if not."),
    Hint(_variant(_Row, check=False), "the constructor accepted the split: check that "
         "in_features % world_size == 0 and raise ValueError (saying both numbers) if not."),
)

register(
    Check("ColumnParallelLinear", "gathered",
          "with gather_output=True: every rank's output and gradients equal the unsplit layer's",
          _cases([(2, "gather_output", True), (4, "gather_output", True)]), UNSPLIT,
          run=_run_column, hints=_COLUMN_HINTS, timeout=CHECK_TIMEOUT, points=2,
          levels=("rank",)),
    Check("ColumnParallelLinear", "split_output",
          "with gather_output=False: each rank's slice of the output, and the full input gradient",
          _cases([(4, "gather_output", False)]), UNSPLIT, run=_run_column, hints=_COLUMN_HINTS,
          timeout=CHECK_TIMEOUT, levels=("rank",)),
    Check("ColumnParallelLinear", "indivisible", "rejects out_features not divisible by the "
          "world size with a ValueError", _divisible_cases(True), UNSPLIT, run=_run_divisible,
          hints=_DIVISIBLE_HINTS[:1]),
    Check("RowParallelLinear", "parallel_input",
          "with input_is_parallel=True: every rank's output and gradients equal the unsplit layer's",
          _cases([(2, "input_is_parallel", True), (4, "input_is_parallel", True)]), UNSPLIT,
          run=_run_row, hints=_ROW_HINTS, timeout=CHECK_TIMEOUT, points=2, levels=("rank",)),
    Check("RowParallelLinear", "full_input",
          "with input_is_parallel=False: splits the input, and gathers its gradient",
          _cases([(4, "input_is_parallel", False)]), UNSPLIT, run=_run_row, hints=_ROW_HINTS,
          timeout=CHECK_TIMEOUT, levels=("rank",)),
    Check("RowParallelLinear", "indivisible", "rejects in_features not divisible by the "
          "world size with a ValueError", _divisible_cases(False), UNSPLIT, run=_run_divisible,
          hints=_DIVISIBLE_HINTS[1:]),
)
