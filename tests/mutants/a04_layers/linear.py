"""Assignment 04: variants of LinearFunction and Linear (every mutant passes at least one check:
later exercises are built on them, see __init__.py)."""

import math

import torch
import torch.nn.functional as F
from torch import nn

from tests.mutants import alternative, as_cell, mutant

from .stand_ins import _Lin, _rows

# --------------------------------------------------------------------------- LinearFunction
# Not mutants: a bias gradient summed over dim 0 only, of shape (T, out) for a (B, T, in) input,
# or a weight gradient left as one (out, in) matrix per batch row. autograd sums a gradient
# that broadcasts to the input's shape, so both give the right answer.


@mutant("LinearFunction", hint="missing bias gradient", fails=("backward", "gradcheck"))
class linear_no_bias_grad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        return x @ weight.T + (0 if bias is None else bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        return grad_output @ weight, _rows(grad_output).T @ _rows(x), None


@mutant("LinearFunction", hint="transposed weight gradient", fails=("backward", "gradcheck"))
class linear_grad_weight_transposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = torch.matmul(x, weight.t())
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        g = _rows(grad_output)
        return grad_output @ weight, _rows(x).T @ g, g.sum(0) if ctx.has_bias else None


@mutant("LinearFunction", hint="g @ Wᵀ", fails=("backward", "gradcheck"))
class linear_grad_input_transposed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        g = _rows(grad_output)
        return grad_output @ weight.T, g.T @ _rows(x), g.sum(0) if ctx.has_bias else None


@mutant("LinearFunction", hint="leaving out the bias", fails=("forward", "gradcheck"))
class linear_forward_forgets_bias(torch.autograd.Function):
    """Forward without the bias, backward right: passes the backward check, fails the others."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return x @ weight.T

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        g = _rows(grad_output)
        return grad_output @ weight, g.T @ _rows(x), g.sum(0) if ctx.has_bias else None


@mutant("LinearFunction", hint="mean of the upstream gradient", fails=("backward", "gradcheck"))
class linear_bias_grad_mean(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        g = _rows(grad_output)
        return grad_output @ weight, g.T @ _rows(x), g.mean(0) if ctx.has_bias else None


# Right gradients once autograd has summed them (see the note above); the backward check now
# reports the shapes the backward itself returns.
@mutant("LinearFunction", hint="over dim 0 only", fails=("leading_dims",))
class linear_bias_grad_summed_over_dim0(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        gw = _rows(grad_output).T @ _rows(x)
        return grad_output @ weight, gw, grad_output.sum(0) if ctx.has_bias else None


@mutant("LinearFunction", hint="one weight gradient per batch element", fails=("leading_dims",))
class linear_weight_grad_per_batch_element(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        gb = _rows(grad_output).sum(0) if ctx.has_bias else None
        return grad_output @ weight, grad_output.transpose(-1, -2) @ x, gb


# Not a mutant here, for the same reason: calling F.linear (forbidden) fails every check.


@mutant("LinearFunction", hint="reshape the result back", fails=("leading_dims",))
class linear_for_matrices_only(torch.autograd.Function):
    """Right for (N, in) inputs; for (..., in) the output stays flattened to (N, out)."""

    @staticmethod
    def forward(ctx, x, weight, bias=None):
        x = x.reshape(-1, x.shape[-1])
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = x @ weight.T
        return y if bias is None else y + bias

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        return grad_output @ weight, grad_output.T @ x, grad_output.sum(0) if ctx.has_bias else None


@mutant("LinearFunction", hint="returns the upstream gradient itself", fails=("backward",))
class linear_bias_grad_not_summed(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.linear(x, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        gw = _rows(grad_output).T @ _rows(x)
        return grad_output @ weight, gw, grad_output if ctx.has_bias else None


@alternative("LinearFunction")
class linear_with_einsum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight, bias)
        y = torch.einsum("...i,oi->...o", x, weight)
        if bias is not None:
            y = y + bias
        return y

    @staticmethod
    def backward(ctx, grad_output):
        x, weight, bias = ctx.saved_tensors
        grad_x = torch.einsum("...o,oi->...i", grad_output, weight)
        grad_w = torch.einsum("...o,...i->oi", grad_output, x)
        grad_b = None
        if bias is not None:
            grad_b = grad_output.sum(dim=tuple(range(grad_output.dim() - 1)))
        return grad_x, grad_w, grad_b


@alternative("LinearFunction")
class linear_with_addmm_and_needs_input_grad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        x2 = x.reshape(-1, x.shape[-1])
        y = torch.addmm(bias, x2, weight.t()) if bias is not None else x2.mm(weight.t())
        return y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx, grad_output):
        x, weight = ctx.saved_tensors
        g2 = grad_output.reshape(-1, grad_output.shape[-1])
        grads = [None, None, None]
        if ctx.needs_input_grad[0]:
            grads[0] = g2.mm(weight).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            grads[1] = g2.t().mm(x.reshape(-1, x.shape[-1]))
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grads[2] = g2.sum(0)
        return tuple(grads)


# --------------------------------------------------------------------------- Linear (module)
# Not mutants here (each fails every check of Linear, and later exercises are built on it, see
# __init__.py): ignoring bias=False, plain tensors instead of nn.Parameter, and wrapping an
# nn.Linear (forbidden). All three are caught, and named by the failure message.


class _LinearBase(nn.Module):
    def forward(self, x):
        return _Lin.apply(x, self.weight, self.bias)


@mutant("Linear", hint="normal distribution", fails=("init",))
class linear_normal_init(_LinearBase):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / math.sqrt(in_features))
        self.bias = nn.Parameter(torch.randn(out_features) / math.sqrt(in_features)) if bias else None


@mutant("Linear", hint="1/in_features", fails=("init",))
class linear_bound_one_over_in(_LinearBase):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = 1 / in_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-k, k))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-k, k)) if bias else None


@mutant("Linear", hint="too wide", fails=("init",))
class linear_xavier_uniform(_LinearBase):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(out_features, in_features)))
        k = 1 / math.sqrt(in_features)
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-k, k)) if bias else None


@mutant("Linear", hint="bias initialized to zero", fails=("init",))
class linear_zero_bias(_LinearBase):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-k, k))
        self.bias = nn.Parameter(torch.zeros(out_features)) if bias else None


@mutant("Linear", hint="U(0, k)", fails=("init",))
class linear_rand_not_centered(_LinearBase):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.rand(out_features, in_features) * k)
        self.bias = nn.Parameter(torch.rand(out_features) * k) if bias else None


@mutant("Linear", hint="x @ W", fails=("forward",))
class linear_multiplies_by_w_not_wt(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-k, k))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-k, k)) if bias else None

    def forward(self, x):
        y = x @ self.weight
        return y if self.bias is None else y + self.bias


@mutant("Linear", fails=("forward",))
class linear_bias_registered_but_unused(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-k, k))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-k, k)) if bias else None

    def forward(self, x):
        return _Lin.apply(x, self.weight, None)


linear_forward_F_linear = mutant("Linear", hint="asks you not to use", fails=("forward",))(as_cell(
    """
class linear_forward_F_linear(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = 1 / math.sqrt(in_features)
        self.weight = nn.Parameter(torch.empty(out_features, in_features).uniform_(-k, k))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-k, k)) if bias else None

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)
""", "linear_forward_F_linear", __name__))


@alternative("Linear")
class linear_kaiming_like_torch(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        if bias:
            self.bias = nn.Parameter(torch.empty(out_features))
        else:
            self.register_parameter("bias", None)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(in_features)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        return _Lin.apply(x, self.weight, self.bias)


@alternative("Linear")
class linear_rand_scaled(nn.Module):
    def __init__(self, in_features, out_features, bias=True):
        super().__init__()
        k = in_features ** -0.5
        self.weight = nn.Parameter((2 * torch.rand(out_features, in_features) - 1) * k)
        self.bias = nn.Parameter((2 * torch.rand(out_features) - 1) * k) if bias else None

    def forward(self, x):  # (F.linear is forbidden here: the product written out)
        y = x @ self.weight.T
        return y if self.bias is None else y + self.bias


# --------------------------------------------------------------------------- LinearFunction, appended
# (the testers' answers). Each passes the forward check.


class _LinRightForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias=None):
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        y = x @ weight.T
        return y if bias is None else y + bias


@mutant("LinearFunction", hint="dividing the weight gradient by the number of rows",
        fails=("backward", "gradcheck"))
class linear_weight_grad_mean(_LinRightForward):
    @staticmethod
    def backward(ctx, grad_output):
        x, w = ctx.saved_tensors
        g2, x2 = _rows(grad_output), _rows(x)
        return grad_output @ w, g2.T @ x2 / x2.shape[0], (g2.sum(0) if ctx.has_bias else None)


@mutant("LinearFunction", hint="first leading index only", fails=("leading_dims",))
class linear_weight_grad_first_index(_LinRightForward):
    @staticmethod
    def backward(ctx, grad_output):
        x, w = ctx.saved_tensors
        gw = grad_output.transpose(-1, -2) @ x
        while gw.dim() > 2:
            gw = gw[0]
        return grad_output @ w, gw, _rows(grad_output).sum(0) if ctx.has_bias else None


def _as_the_learners(cls, name):
    """`cls` renamed for the test ids: it was defined as LinearFunction, the learner's name, which
    autograd's messages about what backward returns quote."""
    cls.__name__ = cls.__qualname__ = name
    return cls


def _zero_bias_grad():
    class LinearFunction(_LinRightForward):
        @staticmethod
        def backward(ctx, grad_output):
            x, w = ctx.saved_tensors
            g2, x2 = _rows(grad_output), _rows(x)
            gb = g2.sum(0) if ctx.has_bias else torch.zeros(w.shape[0], dtype=w.dtype)
            return grad_output @ w, g2.T @ x2, gb
    return _as_the_learners(LinearFunction, "linear_zero_tensor_for_missing_bias")


def _two_grads():
    class LinearFunction(_LinRightForward):
        @staticmethod
        def backward(ctx, grad_output):
            x, w = ctx.saved_tensors
            return grad_output @ w, _rows(grad_output).T @ _rows(x)
    return _as_the_learners(LinearFunction, "linear_returns_two_gradients")


mutant("LinearFunction", hint="zero tensor as the bias gradient",
       fails=("backward", "gradcheck"))(_zero_bias_grad())
mutant("LinearFunction", hint="returns two gradients", fails=("backward", "gradcheck"))(_two_grads())
