"""linear_flops: mistakes a learner might make, and correct answers."""

import math

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- linear_flops


@mutant("linear_flops", hint="one FLOP", fails=("forward", "backward"))
def flops_multiply_adds(batch, d_in, d_out):
    return batch * d_in * d_out, 2 * batch * d_in * d_out


@mutant("linear_flops", hint="half the right one", fails=("backward",))
def flops_backward_like_forward(batch, d_in, d_out):
    return 2 * batch * d_in * d_out, 2 * batch * d_in * d_out


@mutant("linear_flops", fails=("forward",))
def flops_with_bias(batch, d_in, d_out):
    return 2 * batch * d_in * d_out + batch * d_out, 4 * batch * d_in * d_out


@alternative("linear_flops")
def flops_from_shapes(batch, d_in, d_out):
    multiply_adds = math.prod((batch, d_in, d_out))
    products_in_backward = 2
    return 2 * multiply_adds, products_in_backward * 2 * multiply_adds


@mutant("linear_flops", hint="forward and the backward together", fails=("backward",))
def flops_backward_with_forward(batch, d_in, d_out):
    forward = 2 * batch * d_in * d_out
    return forward, forward + 2 * forward


@mutant("linear_flops", hint="without the batch", fails=("forward", "backward"))
def flops_per_example(batch, d_in, d_out):
    return 2 * d_in * d_out, 4 * d_in * d_out


@mutant("linear_flops", hint="2·d_in − 1", fails=("forward", "backward"))
def flops_exact_additions(batch, d_in, d_out):
    dot = d_in + (d_in - 1)  # d_in multiplications, d_in - 1 additions
    return batch * d_out * dot, 2 * batch * d_out * dot


@mutant("linear_flops", hint="return Python ints", fails=("forward", "backward"))
def flops_as_floats(batch, d_in, d_out):
    forward = 2.0 * batch * d_in * d_out
    return forward, 2 * forward


@alternative("linear_flops")
def flops_by_shifts(batch, d_in, d_out):
    macs = batch * d_in * d_out
    return macs << 1, macs << 2


# A mistake written by testers who had not seen the hints (appended: the order above is kept).


@mutant("linear_flops", hint="for a bias", fails=("forward",))
def flops_counting_a_bias(batch, d_in, d_out):
    forward = 2 * batch * d_in * d_out + batch * d_out
    return forward, 2 * forward


@alternative("linear_flops")
def flops_from_torch_counter(batch, d_in, d_out):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        W = torch.empty(d_out, d_in, requires_grad=True)
        x = torch.empty(batch, d_in, requires_grad=True)
        counter = FlopCounterMode(display=False)
        with counter:
            y = x @ W.T
        forward = counter.get_total_flops()
        with counter:
            y.backward(torch.ones_like(y))
        backward = counter.get_total_flops()
    return int(forward), int(backward)
