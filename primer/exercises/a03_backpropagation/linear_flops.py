"""linear_flops: the FLOPs of a Linear layer's forward and backward."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- linear_flops


def _reference_linear_flops(batch, d_in, d_out):
    """torch's FLOP counter on a bias-free Linear on the meta device (no memory, no compute):
    the forward, and the backward when the input needs its gradient too (a hidden layer)."""
    with torch.device("meta"):
        layer = nn.Linear(d_in, d_out, bias=False)
        x = torch.empty(batch, d_in, requires_grad=True)
    counter = FlopCounterMode(display=False)
    with counter:
        y = layer(x)
    forward = counter.get_total_flops()
    with counter:
        y.backward(torch.empty_like(y))
    return forward, counter.get_total_flops()


def _linear_flops_cases(gen):
    sizes = [(1, 1, 1), (32, 784, 128), (7, 3, 5), (2048, 4096, 4096), (1_000_000, 12288, 49152)]
    sizes.append(tuple(int(v) for v in torch.randint(1, 5000, (3,), generator=gen)))
    return [Case(f"batch={b:,}, d_in={i:,}, d_out={o:,}", (b, i, o)) for b, i, o in sizes]


def _run_index(k):
    def run(fn, case):
        out = fn(*case.args)
        return out[k] if isinstance(out, (tuple, list)) and len(out) == 2 else out
    return run


def _flops_macs(batch, d_in, d_out):
    return batch * d_in * d_out, 2 * batch * d_in * d_out


def _flops_weight_only(batch, d_in, d_out):
    return 2 * batch * d_in * d_out, 2 * batch * d_in * d_out


register(
    Check("linear_flops", "forward", "counts 2 FLOPs per multiply-add of x Wᵀ",
          _linear_flops_cases, _reference_linear_flops, run=_run_index(0),
          hints=(Hint(_flops_macs, "this matches counting a multiply-add as one FLOP; it is "
                      "two (a multiplication and an addition)."),)),
    Check("linear_flops", "backward", "counts the two products of the backward (∂x and ∂W)",
          _linear_flops_cases, _reference_linear_flops, run=_run_index(1),
          hints=(Hint(_flops_weight_only, "this matches counting only one product in the "
                      "backward; it computes two of the forward's size: ∂L/∂x = (∂L/∂y) W "
                      "and ∂L/∂W = (∂L/∂y)ᵀ x."),
                 Hint(_flops_macs, "this matches counting a multiply-add as one FLOP; it is "
                      "two (a multiplication and an addition)."))),
)
