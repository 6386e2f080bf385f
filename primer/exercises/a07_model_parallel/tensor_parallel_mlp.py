"""tensor_parallel_mlp: Megatron's MLP, a column-parallel layer, GELU and a row-parallel layer,
with exactly one all-reduce in the forward pass and one in the backward pass.

Rank r is given its rows of the first layer (w1, b1), its columns of the second (w2) and the
second's whole bias b2; the input x is the same on every rank. The checks compare every rank's
output and gradients with the unsplit MLP's (torch, in one process), and count the collectives
each rank issues in forward and in backward (workers.Traffic, inside the workers).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import seed_from
from primer.grading import Case, Check, Hint, register
from primer.launch import launch

from .parallel_linear import _Comm
from .workers import (
    CHECK_TIMEOUT,
    LAUNCH_TIMEOUT,
    Derivation,
    Traffic,
    _tensors,
    grad_or_none,
    part,
    seeded_data,
    seeded_linear,
)

UNSPLIT_MLP = Derivation("the unsplit MLP (nn.Linear, GELU, nn.Linear)")
_D, _HIDDEN, _BATCH = 4, 16, 3
_KEYS = ("output", "input gradient", "w1 gradient", "b1 gradient", "w2 gradient", "b2 gradient")
_FORWARD, _BACKWARD = "collectives in forward", "collectives in backward"


def _unsplit(seed: int):
    fc1, fc2 = seeded_linear(seed, _D, _HIDDEN), seeded_linear(seed + 1, _HIDDEN, _D)
    x, g = seeded_data(seed + 2, (_BATCH, _D), (_BATCH, _D))
    x.requires_grad_()
    y = fc2(F.gelu(fc1(x)))
    (y * g).sum().backward()
    return fc1, fc2, x, g, y.detach()


def _mlp_worker(rank, world_size, fn, seed):
    fc1, fc2, x, g, _ = _unsplit(seed)
    rows = part(_HIDDEN, rank, world_size)
    shards = [nn.Parameter(t.detach().clone()) for t in
              (fc1.weight[rows], fc1.bias[rows], fc2.weight[:, rows], fc2.bias)]
    x = x.detach().clone().requires_grad_()
    traffic = Traffic()
    traffic.phase = "forward"
    y = fn(x, *shards)
    traffic.phase = ""
    if not isinstance(y, torch.Tensor) or y.shape != g.shape:
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"tensor_parallel_mlp returned {shape}; every rank should return the "
                         f"whole output, of shape {tuple(g.shape)}")
    traffic.phase = "backward"
    (y * g).sum().backward()
    traffic.phase = ""
    values = [y.detach().numpy().copy(), grad_or_none(x), *map(grad_or_none, shards)]
    return {"values": dict(zip(_KEYS, values)),
            "collectives": {_FORWARD: traffic.collectives("forward"),
                            _BACKWARD: traffic.collectives("backward")}}


def _expected(seed: int, world_size: int):
    fc1, fc2, x, _, y = _unsplit(seed)
    out = []
    for rank in range(world_size):
        rows = part(_HIDDEN, rank, world_size)
        grads = (x.grad, fc1.weight.grad[rows], fc1.bias.grad[rows], fc2.weight.grad[:, rows],
                 fc2.bias.grad)
        out.append(dict(zip(_KEYS, [t.clone() for t in (y, *grads)])))
    return out


def _run_values(fn, case: Case):
    """Every rank's output and gradients."""
    world_size, seed = case.args
    if fn is UNSPLIT_MLP:
        return _expected(seed, world_size)
    return [_tensors(r["values"]) for r in launch(_mlp_worker, world_size, fn, seed,
                                                  timeout=LAUNCH_TIMEOUT)]


def _run_collectives(fn, case: Case):
    """Every rank's collectives, in forward and in backward, with their sizes."""
    world_size, seed = case.args
    if fn is UNSPLIT_MLP:  # Megatron's MLP: one all-reduce of the output (batch × d) each way
        once = [f"all_reduce of {_BATCH * _D} elements"]
        return [{_FORWARD: once, _BACKWARD: once} for _ in range(world_size)]
    return [r["collectives"] for r in launch(_mlp_worker, world_size, fn, seed,
                                             timeout=LAUNCH_TIMEOUT)]


# --------------------------------------------------------------------------- the mistakes

def _mlp_mistake(into="sum", after_first="none", after_second="sum", second_backward="identity",
                 bias_first=False, gather_hidden=False):
    """Megatron's MLP, correct unless an argument says otherwise. `after_first` and `after_second`
    are what follows each layer's matrix product in forward ("sum": an all-reduce)."""
    def mlp(x, w1, b1, w2, b2):
        h = F.linear(_Comm.apply(x, "identity", into), w1, b1)
        if after_first == "sum":
            h = _Comm.apply(h, "sum", "identity")
        h = F.gelu(h)
        if gather_hidden:  # gathered between the layers, then split again for the second
            h = _Comm.apply(_Comm.apply(h, "gather", "split"), "split", "gather")
        y = F.linear(h, w2, b2 if bias_first else None)
        if after_second == "sum":
            y = _Comm.apply(y, "sum", second_backward)
        return y if bias_first else y + b2
    return mlp


_WRONG_LAYER = _mlp_mistake(after_first="sum", after_second="none")
_BOTH_LAYERS = _mlp_mistake(after_first="sum")
_NO_INPUT_SUM = _mlp_mistake(into="identity")
_BACKWARD_SUMS = _mlp_mistake(second_backward="sum")
_BIAS_FIRST = _mlp_mistake(bias_first=True)
_GATHERED = _mlp_mistake(gather_hidden=True)

_S_WRONG = ("this matches an all-reduce after the first (column-parallel) layer instead of the "
            "second: each rank's hidden units are different ones, never summed; the partial "
            "products of the second (row-parallel) layer are what must be summed.")
_S_BOTH = ("this matches an all-reduce after both layers: the first layer's outputs are split "
           "by hidden unit (nothing to sum); all-reduce only the second layer's output.")
_S_INPUT = ("x's gradient is only this rank's part: copying x into the parallel region is the "
            "identity in forward and an all-reduce (sum) of the gradient in backward.")
_S_BACKWARD = ("the second layer's gradients came back world_size times too large: the backward "
               "of the output's all-reduce is the identity, not another all-reduce.")
_S_BIAS = ("this matches adding b2 on every rank before the all-reduce: the sum then holds "
           "world_size copies of it; add b2 once, after the all-reduce.")

_VALUE_HINTS = tuple(Hint(m, s) for m, s in ((_WRONG_LAYER, _S_WRONG), (_BOTH_LAYERS, _S_BOTH),
                     (_NO_INPUT_SUM, _S_INPUT), (_BACKWARD_SUMS, _S_BACKWARD),
                     (_BIAS_FIRST, _S_BIAS)))
_COUNT_HINTS = _VALUE_HINTS[:4] + (
    Hint(_GATHERED, "this matches gathering the hidden activations between the layers "
         "(gather_output=True, then input_is_parallel=False): it gives the right values with "
         "an all-gather more each way. Keep the hidden activations split: the column-parallel "
         "layer's slices are exactly the row-parallel layer's inputs."),
)


def _cases(worlds):
    def cases(gen):
        return [Case(f"{w} ranks, d={_D}, hidden={_HIDDEN}, batch {_BATCH}", (w, seed_from(gen)))
                for w in worlds]
    return cases


register(
    Check("tensor_parallel_mlp", "matches_unsplit",
          "every rank's output and gradients equal the unsplit MLP's", _cases((2, 4)),
          UNSPLIT_MLP, run=_run_values, hints=_VALUE_HINTS, timeout=CHECK_TIMEOUT, points=2,
          levels=("rank",)),
    Check("tensor_parallel_mlp", "one_allreduce_each_way",
          "exactly one all-reduce (of the output) in forward and one in backward",
          _cases((2,)), UNSPLIT_MLP, run=_run_collectives, hints=_COUNT_HINTS,
          timeout=CHECK_TIMEOUT, points=2, levels=("rank",)),
)
