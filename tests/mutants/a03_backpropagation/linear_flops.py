"""linear_flops: mistakes a learner might make, and correct answers."""

import math

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- linear_flops


@mutant("linear_flops", hint="one FLOP", fails=("forward", "backward"))
def flops_multiply_adds(batch, d_in, d_out):
    return batch * d_in * d_out, 2 * batch * d_in * d_out


@mutant("linear_flops", hint="only one product", fails=("backward",))
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
