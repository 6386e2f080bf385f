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
    # (7, 3, 5) first: on it the known mistakes all give different counts (on 1×1×1 several agree)
    sizes = [(7, 3, 5), (1, 1, 1), (32, 784, 128), (2048, 4096, 4096), (1_000_000, 12288, 49152)]
    sizes.append(tuple(int(v) for v in torch.randint(1, 5000, (3,), generator=gen)))
    return [Case(f"batch={b:,}, d_in={i:,}, d_out={o:,}", (b, i, o)) for b, i, o in sizes]


def _run_index(k):
    def run(fn, case):
        out = fn(*case.args)
        if not (isinstance(out, (tuple, list)) and len(out) == 2):
            return out
        count = out[k]
        if isinstance(count, int) and not isinstance(count, bool):
            return count
        return f"a {type(count).__name__}, not a Python int"
    return run


def _flops_macs(batch, d_in, d_out):
    return batch * d_in * d_out, 2 * batch * d_in * d_out


def _flops_weight_only(batch, d_in, d_out):
    return 2 * batch * d_in * d_out, 2 * batch * d_in * d_out


def _flops_with_forward(batch, d_in, d_out):
    return 2 * batch * d_in * d_out, 6 * batch * d_in * d_out


def _flops_no_batch(batch, d_in, d_out):
    return 2 * d_in * d_out, 4 * d_in * d_out


def _flops_floats(batch, d_in, d_out):
    return 2.0 * batch * d_in * d_out, 4.0 * batch * d_in * d_out


def _flops_no_first_add(batch, d_in, d_out):
    return batch * d_out * (2 * d_in - 1), 2 * batch * d_out * (2 * d_in - 1)


def _flops_with_bias(batch, d_in, d_out):
    forward = 2 * batch * d_in * d_out + batch * d_out
    return forward, 2 * forward


_NO_FIRST_ADD = Hint(_flops_no_first_add, "this matches 2·d_in − 1 FLOPs per dot product (no "
                     "addition for the first term); torch's counter, like this notebook, counts "
                     "2 FLOPs per multiply-add: 2·d_in per dot product.")
_NO_BATCH = Hint(_flops_no_batch, "this matches a count without the batch: every one of the B "
                 "examples is multiplied by W, so the count has a factor B.")
_FLOATS = Hint(_flops_floats, "this matches counts that are floats (2.0 * …, or a product with "
               "a float); return Python ints.")


register(
    Check("linear_flops", "forward", "counts 2 FLOPs per multiply-add of x Wᵀ",
          _linear_flops_cases, _reference_linear_flops, run=_run_index(0),
          hints=(Hint(_flops_macs, "this matches counting a multiply-add as one FLOP; it is "
                      "two (a multiplication and an addition)."), _NO_FIRST_ADD, _NO_BATCH, _FLOATS,
                 Hint(_flops_with_bias, "this matches adding B·d_out FLOPs for a bias: the "
                      "layer here has none (y = x Wᵀ), so count the matrix product alone, "
                      "2·B·d_in·d_out."))),
    Check("linear_flops", "backward", "counts the two products of the backward (∂x and ∂W)",
          _linear_flops_cases, _reference_linear_flops, run=_run_index(1),
          # One product at 2 FLOPs per multiply-add and two products at 1 give the same backward
          # count, 2·B·d_in·d_out: one hint says what that count misses (the forward check names
          # a multiply-add counted as one FLOP on its own).
          hints=(Hint(_flops_weight_only, "this matches a backward count of 2·B·d_in·d_out, "
                      "half the right one: the backward computes two products of the forward's "
                      "size, ∂L/∂x = (∂L/∂y) W and ∂L/∂W = (∂L/∂y)ᵀ x, each at 2 FLOPs per "
                      "multiply-add: 4·B·d_in·d_out."),
                 Hint(_flops_with_forward, "this matches 6·B·d_in·d_out, the forward and the "
                      "backward together; return the backward's FLOPs alone (its two products)."),
                 _NO_FIRST_ADD, _NO_BATCH, _FLOATS)),
)
