"""Assignment 07, tensor_parallel_mlp: mistakes and correct answers written differently."""

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F

from tests.mutants import alternative, mutant

from .parallel_linear import _all_reduce_copy, _AllReduceGrad, _Gather, _Split, _Sum


@mutant("tensor_parallel_mlp", hint="after the first (column-parallel) layer",
        fails=("matches_unsplit",))
def mlp_allreduce_in_the_first_layer(x, w1, b1, w2, b2):
    h = F.gelu(_Sum.apply(F.linear(_AllReduceGrad.apply(x), w1, b1)))
    return F.linear(h, w2, b2)


@mutant("tensor_parallel_mlp", hint="after both layers",
        fails=("matches_unsplit", "one_allreduce_each_way"))
def mlp_allreduce_in_both_layers(x, w1, b1, w2, b2):
    h = F.gelu(_Sum.apply(F.linear(_AllReduceGrad.apply(x), w1, b1)))
    return _Sum.apply(F.linear(h, w2)) + b2


@mutant("tensor_parallel_mlp", hint="x's gradient is only this rank's part",
        fails=("matches_unsplit", "one_allreduce_each_way"))
def mlp_without_the_input_copy(x, w1, b1, w2, b2):
    return _Sum.apply(F.linear(F.gelu(F.linear(x, w1, b1)), w2)) + b2


@mutant("tensor_parallel_mlp", hint="world_size times too large",
        fails=("matches_unsplit", "one_allreduce_each_way"))
def mlp_with_library_allreduce(x, w1, b1, w2, b2):
    h = F.gelu(F.linear(_AllReduceGrad.apply(x), w1, b1))
    return dist_nn.all_reduce(F.linear(h, w2)) + b2


@mutant("tensor_parallel_mlp", hint="adding b2 on every rank", fails=("matches_unsplit",))
def mlp_bias_before_the_allreduce(x, w1, b1, w2, b2):
    h = F.gelu(F.linear(_AllReduceGrad.apply(x), w1, b1))
    return _Sum.apply(F.linear(h, w2, b2))


@mutant("tensor_parallel_mlp", hint="gathering the hidden activations",
        fails=("one_allreduce_each_way",))
def mlp_gathers_the_hidden_layer(x, w1, b1, w2, b2):
    h = _Gather.apply(F.gelu(F.linear(_AllReduceGrad.apply(x), w1, b1)))  # the whole hidden layer
    return _Sum.apply(F.linear(_Split.apply(h), w2)) + b2


@mutant("tensor_parallel_mlp", fails=("matches_unsplit",))
def mlp_tanh_gelu(x, w1, b1, w2, b2):
    h = F.gelu(F.linear(_AllReduceGrad.apply(x), w1, b1), approximate="tanh")
    return _Sum.apply(F.linear(h, w2)) + b2



@mutant("tensor_parallel_mlp", fails=("matches_unsplit", "one_allreduce_each_way"))
def mlp_without_communication(x, w1, b1, w2, b2):
    # each rank returns its own partial product: no all-reduce either way (written standalone, so
    # that the end-to-end tests can paste it into a notebook)
    h = F.gelu(x @ w1.T + b1)
    return h @ w2.T + b2


class _AsyncSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        y = y.clone()
        dist.all_reduce(y, async_op=True).wait()
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad


@alternative("tensor_parallel_mlp")
def mlp_with_a_hook_and_async_allreduce(x, w1, b1, w2, b2):
    x = x.view_as(x)
    x.register_hook(_all_reduce_copy)  # the copy into the parallel region, as a hook
    h = F.gelu(x @ w1.T + b1)
    return _AsyncSum.apply(h @ w2.T) + b2
