"""Assignment 07, ColumnParallelLinear and RowParallelLinear: mistakes and correct answers
written differently."""

import torch
import torch.distributed as dist
import torch.distributed.nn.functional as dist_nn
import torch.nn.functional as F
from torch import nn

from tests.mutants import alternative, mutant


class _AllReduceGrad(torch.autograd.Function):
    """Identity forward; the gradient summed over ranks in backward."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class _Gather(torch.autograd.Function):
    """All-gather along the last dimension; backward keeps this rank's slice."""

    @staticmethod
    def forward(ctx, y):
        parts = [torch.empty_like(y) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, y.contiguous())
        return torch.cat(parts, dim=-1)

    @staticmethod
    def backward(ctx, grad):
        return grad.chunk(dist.get_world_size(), dim=-1)[dist.get_rank()].contiguous()


class _Sum(torch.autograd.Function):
    """All-reduce (sum) forward; identity backward."""

    @staticmethod
    def forward(ctx, y):
        y = y.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        return grad


class _Split(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x.chunk(dist.get_world_size(), dim=-1)[dist.get_rank()].contiguous()

    @staticmethod
    def backward(ctx, grad):
        return _Gather.apply(grad)


class _ColumnBase(nn.Module):
    def __init__(self, in_features, out_features, rank, world_size, gather_output=True):
        super().__init__()
        if out_features % world_size != 0:
            raise ValueError(f"out_features {out_features} must be divisible by the world size "
                             f"{world_size}")
        self.gather_output = gather_output
        self.weight = nn.Parameter(torch.zeros(out_features // world_size, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features // world_size))


@mutant("ColumnParallelLinear", hint="only this rank's part", fails=("gathered", "split_output"))
class column_without_input_allreduce(_ColumnBase):
    def forward(self, x):
        y = F.linear(x, self.weight, self.bias)  # x's gradient is never summed over ranks
        return _Gather.apply(y) if self.gather_output else y


@mutant("ColumnParallelLinear", hint="world_size times too large", fails=("gathered",))
class column_with_library_gather(_ColumnBase):
    def forward(self, x):
        y = F.linear(_AllReduceGrad.apply(x), self.weight, self.bias)
        if self.gather_output:
            y = torch.cat(dist_nn.all_gather(y), dim=-1)  # its backward sums over ranks
        return y


@mutant("ColumnParallelLinear", hint="averaging the ranks' input gradients",
        fails=("gathered", "split_output"))
class column_averages_input_gradient(_ColumnBase):
    def forward(self, x):
        x = x.view_as(x)
        x.register_hook(lambda g: _all_reduce_copy(g, dist.ReduceOp.AVG))
        y = F.linear(x, self.weight, self.bias)
        return _Gather.apply(y) if self.gather_output else y


def _all_reduce_copy(t, op=dist.ReduceOp.SUM):
    t = t.clone()
    dist.all_reduce(t, op=op)
    return t


@mutant("ColumnParallelLinear", fails=("split_output",))
class column_always_gathers(_ColumnBase):
    def forward(self, x):
        return _Gather.apply(F.linear(_AllReduceGrad.apply(x), self.weight, self.bias))


@mutant("ColumnParallelLinear", fails=("gathered",))
class column_holds_the_full_weight(nn.Module):
    def __init__(self, in_features, out_features, rank, world_size, gather_output=True):
        super().__init__()
        if out_features % world_size:
            raise ValueError(f"{out_features} % {world_size} != 0")
        self.rank, self.world_size, self.gather_output = rank, world_size, gather_output
        self.weight = nn.Parameter(torch.zeros(out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        w = self.weight.chunk(self.world_size)[self.rank]
        b = self.bias.chunk(self.world_size)[self.rank]
        y = F.linear(_AllReduceGrad.apply(x), w, b)
        return _Gather.apply(y) if self.gather_output else y


@mutant("ColumnParallelLinear", hint="accepted the split", fails=("indivisible",))
class column_without_the_divisibility_check(nn.Module):
    def __init__(self, in_features, out_features, rank, world_size, gather_output=True):
        super().__init__()
        self.gather_output = gather_output  # 10 // 4 = 2 rows each: two rows are lost
        self.weight = nn.Parameter(torch.zeros(out_features // world_size, in_features))
        self.bias = nn.Parameter(torch.zeros(out_features // world_size))

    def forward(self, x):
        y = F.linear(_AllReduceGrad.apply(x), self.weight, self.bias)
        return _Gather.apply(y) if self.gather_output else y


@mutant("ColumnParallelLinear", fails=("indivisible",))
class column_asserts_divisibility(_ColumnBase):
    def __init__(self, in_features, out_features, rank, world_size, gather_output=True):
        assert out_features % world_size == 0, "out_features must be divisible"
        super().__init__(in_features, out_features, rank, world_size, gather_output)

    def forward(self, x):
        y = F.linear(_AllReduceGrad.apply(x), self.weight, self.bias)
        return _Gather.apply(y) if self.gather_output else y


@alternative("ColumnParallelLinear")
class column_with_hooks_and_one_buffer(nn.Module):
    """The input's gradient summed by a tensor hook; the output gathered into one buffer."""

    def __init__(self, in_features, out_features, rank, world_size, gather_output=True):
        super().__init__()
        if out_features % world_size:
            raise ValueError(f"cannot split {out_features} output features over {world_size} "
                             "ranks")
        self.rank, self.world_size, self.gather_output = rank, world_size, gather_output
        self.weight = nn.Parameter(torch.randn(out_features // world_size, in_features))
        self.bias = nn.Parameter(torch.randn(out_features // world_size))

    def forward(self, x):
        x = x.view_as(x)
        x.register_hook(_all_reduce_copy)
        y = x @ self.weight.T + self.bias
        if not self.gather_output:
            return y
        return _GatherTransposed.apply(y)


class _GatherTransposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, y):
        world = dist.get_world_size()
        out = torch.empty(world * y.shape[1], y.shape[0], dtype=y.dtype)
        dist.all_gather_into_tensor(out, y.T.contiguous())
        return out.T.contiguous()

    @staticmethod
    def backward(ctx, grad):
        width = grad.shape[1] // dist.get_world_size()
        return grad.narrow(1, dist.get_rank() * width, width).contiguous()


class _RowBase(nn.Module):
    def __init__(self, in_features, out_features, rank, world_size, input_is_parallel=False):
        super().__init__()
        if in_features % world_size:
            raise ValueError(f"in_features={in_features} is not a multiple of "
                             f"world_size={world_size}")
        self.rank, self.world_size, self.input_is_parallel = rank, world_size, input_is_parallel
        self.weight = nn.Parameter(torch.zeros(out_features, in_features // world_size))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def split(self, x):
        return x if self.input_is_parallel else _Split.apply(x)


@mutant("RowParallelLinear", hint="adding the bias on every rank",
        fails=("parallel_input", "full_input"))
class row_bias_on_every_rank(_RowBase):
    def forward(self, x):
        return _Sum.apply(F.linear(self.split(x), self.weight, self.bias))


@mutant("RowParallelLinear", hint="world_size times too large",
        fails=("parallel_input", "full_input"))
class row_with_library_allreduce(_RowBase):
    def forward(self, x):
        return dist_nn.all_reduce(F.linear(self.split(x), self.weight)) + self.bias


@mutant("RowParallelLinear", hint="only its own partial product",
        fails=("parallel_input", "full_input"))
class row_without_allreduce(_RowBase):
    def forward(self, x):
        return F.linear(self.split(x), self.weight, self.bias)


@mutant("RowParallelLinear", hint="zeros elsewhere", fails=("full_input",))
class row_slices_the_input(_RowBase):
    def forward(self, x):
        if not self.input_is_parallel:
            width = x.shape[-1] // self.world_size
            x = x[:, self.rank * width:(self.rank + 1) * width]
        return _Sum.apply(F.linear(x, self.weight)) + self.bias


@mutant("RowParallelLinear", hint="by strides", fails=("full_input",))
class row_strided_split(_RowBase):
    def forward(self, x):
        if not self.input_is_parallel:
            x = x[:, self.rank::self.world_size]
        return _Sum.apply(F.linear(x, self.weight)) + self.bias


@mutant("RowParallelLinear", hint="accepted the split", fails=("indivisible",))
class row_without_the_divisibility_check(_RowBase):
    def __init__(self, in_features, out_features, rank, world_size, input_is_parallel=False):
        nn.Module.__init__(self)
        self.rank, self.world_size, self.input_is_parallel = rank, world_size, input_is_parallel
        self.weight = nn.Parameter(torch.zeros(out_features, in_features // world_size))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return _Sum.apply(F.linear(self.split(x), self.weight)) + self.bias


@alternative("RowParallelLinear")
class row_slice_then_sum_the_gradient(_RowBase):
    """The input sliced plainly (its gradient is zero outside this rank's columns), then x's
    gradient all-reduced by a hook: the sum of the zero-padded parts is the gathered gradient."""

    def forward(self, x):
        if not self.input_is_parallel:
            x = x.view_as(x)
            x.register_hook(_all_reduce_copy)
            width = x.shape[-1] // self.world_size
            x = x.narrow(-1, self.rank * width, width)
        partial = torch.matmul(x, self.weight.t())
        return torch.add(_Sum.apply(partial), self.bias)
