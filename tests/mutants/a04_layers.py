"""Assignment 04: mistakes a learner might make, and correct answers written differently.

Order matters for tests/test_nbgrader_e2e.py, which replaces the first exercise (notebook order)
that has a mutant failing *all* of that exercise's checks, and expects the student to lose that
exercise's points only. LinearFunction and Linear are used by later exercises (Linear calls
LinearFunction; SwiGLU and MLPBlock are built from Linear), so a mutant failing all their checks
would also cost those exercises' points. Every LinearFunction and Linear mutant here therefore
passes at least one of its checks (tests/test_a04_layers.py checks this), and the end-to-end
test uses the first relu mutant (nothing is built on relu). That mutant is pasted into the
notebook as the learner's cell, so it uses nothing but the notebook's imports.
"""

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from tests.mutants import alternative, mutant


def _rows(t):
    return t.reshape(-1, t.shape[-1])


class _Lin(torch.autograd.Function):
    """A correct LinearFunction, for the module variants below (stands in for the learner's)."""

    @staticmethod
    def forward(ctx, x, w, b=None):
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        return F.linear(x, w, b)

    @staticmethod
    def backward(ctx, g):
        x, w = ctx.saved_tensors
        return g @ w, _rows(g).T @ _rows(x), _rows(g).sum(0) if ctx.has_bias else None


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

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)


# --------------------------------------------------------------------------- relu


@mutant("relu", hint="leaky ReLU")  # the mutant the end-to-end test uses: keep it first
def relu_leaky(x):
    return torch.where(x > 0, x, 0.01 * x)


@mutant("relu", hint="|x|")
def relu_abs(x):
    return torch.abs(x)


@mutant("relu", fails=("values",))
def relu_clamp_max(x):
    return x.clamp(max=0)


@alternative("relu")
def relu_clamp(x):
    return x.clamp(min=0)


@alternative("relu")
def relu_maximum(x):
    return torch.maximum(x, torch.zeros_like(x))


# --------------------------------------------------------------------------- gelu


@mutant("gelu", hint="0.044715", fails=("tanh",))
def gelu_wrong_tanh_constant(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.0447 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="√(2/π)", fails=("tanh",))
def gelu_sqrt2_over_pi(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2) / math.pi * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="sigmoid approximation", fails=("exact", "tanh"))
def gelu_sigmoid(x, approximate="none"):
    return x * torch.sigmoid(1.702 * x)


@mutant("gelu", hint="erf(x)", fails=("exact",))
def gelu_erf_without_sqrt2(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x))


@mutant("gelu", hint="approximate='tanh' use the tanh formula", fails=("tanh",))
def gelu_ignores_approximate(x, approximate="none"):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", fails=("exact", "tanh", "gradient"))
def gelu_relu(x, approximate="none"):
    return torch.relu(x)


@alternative("gelu")
def gelu_with_erfc_and_sigmoid(x, approximate="none"):
    if approximate == "tanh":
        # ½(1 + tanh(u)) = σ(2u)
        u = math.sqrt(2 / math.pi) * (x + 0.044715 * x * x * x)
        return x * torch.sigmoid(2 * u)
    return 0.5 * x * torch.erfc(-x * math.sqrt(0.5))


@alternative("gelu")
def gelu_with_normal_cdf(x, approximate="none"):
    if approximate == "none":
        return x * torch.special.ndtr(x)
    c = (2 / math.pi) ** 0.5
    return 0.5 * x * (1.0 + torch.tanh(c * (x + 0.044715 * torch.pow(x, 3))))


# --------------------------------------------------------------------------- silu


@mutant("silu", hint="overflows", fails=("values",))
def silu_exp_ratio(x):
    return x * torch.exp(x) / (1 + torch.exp(x))


@mutant("silu", hint="gradient is NaN", fails=("gradient",))
def silu_over_one_plus_exp(x):
    return x / (1 + torch.exp(-x))


@mutant("silu", hint="σ(x)")
def silu_sigmoid_only(x):
    return torch.sigmoid(x)


@alternative("silu")
def silu_with_tanh_and_a_warning(x):
    warnings.warn("a harmless warning from the learner's code: it must not cost points")
    return 0.5 * x * (1 + torch.tanh(0.5 * x))


@alternative("silu")
def silu_with_logsigmoid(x):
    return x * torch.exp(F.logsigmoid(x))


# --------------------------------------------------------------------------- SwiGLU


class _SwiGLUBase(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)


@mutant("SwiGLU", hint="sigmoid gate", fails=("forward", "backward"))
class swiglu_sigmoid(_SwiGLUBase):
    def forward(self, x):
        return self.w2(torch.sigmoid(self.w1(x)) * self.w3(x))


@mutant("SwiGLU", hint="SiLU to W3 x", fails=("forward",))
class swiglu_gate_on_wrong_branch(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.silu(self.w3(x)) * self.w1(x))


@mutant("SwiGLU", hint="GELU", fails=("forward",))
class swiglu_gelu(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.gelu(self.w1(x)) * self.w3(x))


@mutant("SwiGLU", fails=("forward", "backward"))
class swiglu_with_biases(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff)
        self.w2 = nn.Linear(d_ff, d_model)
        self.w3 = nn.Linear(d_model, d_ff)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


@mutant("SwiGLU", fails=("backward",))
class swiglu_detached_gate(_SwiGLUBase):
    """Right values, but the gate is detached, so no gradient reaches W1 through it."""

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)).detach() * self.w3(x))


@alternative("SwiGLU")
class swiglu_functional(nn.Module):
    """Weights held by torch's nn.Linear, the product written with F.linear and torch.sigmoid."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)

    def forward(self, x):
        a = F.linear(x, self.w1.weight)
        return F.linear(a * torch.sigmoid(a) * F.linear(x, self.w3.weight), self.w2.weight)


class _NoBiasLinear(nn.Module):
    def __init__(self, d_in, d_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(d_out, d_in).uniform_(-d_in ** -0.5, d_in ** -0.5))

    def forward(self, x):
        return _Lin.apply(x, self.weight, None)


@alternative("SwiGLU")
class swiglu_own_linear(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1, self.w3 = _NoBiasLinear(d_model, d_ff), _NoBiasLinear(d_model, d_ff)
        self.w2 = _NoBiasLinear(d_ff, d_model)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


# --------------------------------------------------------------------------- LayerNormFunction


def _ln_dims(x, normalized_shape):
    return tuple(range(x.dim() - len(normalized_shape), x.dim()))


class _LNBase(torch.autograd.Function):
    """Correct backward, from x̂ and 1/σ saved by the forward; subclasses change the forward."""

    @staticmethod
    def backward(ctx, grad_output):
        xhat, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        batch = tuple(range(grad_output.dim() - len(dims)))
        g = grad_output if weight is None else grad_output * weight
        gx = rstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        gw = None if weight is None else (grad_output * xhat).sum(batch)
        gb = None if weight is None else grad_output.sum(batch)
        return gx, None, gw, gb, None


def _ln_finish(ctx, x, normalized_shape, weight, bias, xhat, rstd):
    ctx.save_for_backward(xhat, rstd, weight)
    ctx.dims = _ln_dims(x, normalized_shape)
    return xhat if weight is None else xhat * weight + bias


@mutant("LayerNormFunction", hint="unbiased variance", fails=("forward", "large_mean"))
class ln_unbiased(_LNBase):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        mu = x.mean(dims, keepdim=True)
        var = x.var(dims, keepdim=True)  # unbiased by default: divides by D - 1
        rstd = 1 / torch.sqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)


@mutant("LayerNormFunction", hint="outside the square root", fails=("forward",))
class ln_eps_outside_sqrt(_LNBase):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        mu = x.mean(dims, keepdim=True)
        sigma = ((x - mu) ** 2).mean(dims, keepdim=True).sqrt()
        rstd = 1 / (sigma + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)


@mutant("LayerNormFunction", hint="last dimension only", fails=("forward",))
class ln_last_dim_only(_LNBase):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        mu = x.mean(-1, keepdim=True)
        var = ((x - mu) ** 2).mean(-1, keepdim=True)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)


@mutant("LayerNormFunction", hint="batch dimension", fails=("forward", "large_mean"))
class ln_over_batch(_LNBase):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        mu = x.mean(0, keepdim=True)
        var = ((x - mu) ** 2).mean(0, keepdim=True)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)


@mutant("LayerNormFunction", hint="one-pass variance", fails=("large_mean",))
class ln_one_pass_variance(_LNBase):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        mu = x.mean(dims, keepdim=True)
        var = (x * x).mean(dims, keepdim=True) - mu * mu
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)


@mutant("LayerNormFunction", hint="x·(1/σ) - μ/σ", fails=("large_mean",))
class ln_scale_before_subtracting(_LNBase):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, x * rstd - mu * rstd, rstd)


@mutant("LayerNormFunction", hint="constants", fails=("backward", "gradcheck"))
class ln_backward_ignores_statistics(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)

    @staticmethod
    def backward(ctx, grad_output):
        xhat, rstd, weight = ctx.saved_tensors
        batch = tuple(range(grad_output.dim() - len(ctx.dims)))
        g = grad_output if weight is None else grad_output * weight
        gw = None if weight is None else (grad_output * xhat).sum(batch)
        gb = None if weight is None else grad_output.sum(batch)
        return g * rstd, None, gw, gb, None


@mutant("LayerNormFunction", fails=("backward", "gradcheck"))
class ln_backward_forgets_variance_term(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)

    @staticmethod
    def backward(ctx, grad_output):
        xhat, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        batch = tuple(range(grad_output.dim() - len(dims)))
        g = grad_output if weight is None else grad_output * weight
        gw = None if weight is None else (grad_output * xhat).sum(batch)
        gb = None if weight is None else grad_output.sum(batch)
        return rstd * (g - g.mean(dims, keepdim=True)), None, gw, gb, None


@mutant("LayerNormFunction", fails=("backward", "gradcheck"))
class ln_weight_grad_missing_xhat(_LNBase):
    """dL/dγ written as the sum of g (like dL/dβ), forgetting the factor x̂."""

    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)

    @staticmethod
    def backward(ctx, grad_output):
        gx, _, gw, gb, _ = _LNBase.backward(ctx, grad_output)
        return gx, None, gb, gb, None


@alternative("LayerNormFunction")
class ln_chain_rule_through_mean_and_var(torch.autograd.Function):
    """The backward written step by step through var and mean (the textbook chain rule),
    with torch.var_mean (Welford, stable) in the forward."""

    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        xc = x - mu
        inv = 1.0 / torch.sqrt(var + eps)
        ctx.save_for_backward(xc, inv, weight)
        ctx.dims, ctx.has_bias = dims, bias is not None
        y = xc * inv
        if weight is not None:
            y = y * weight
        if bias is not None:
            y = y + bias
        return y

    @staticmethod
    def backward(ctx, dy):
        xc, inv, weight = ctx.saved_tensors
        dims = ctx.dims
        n = math.prod(xc.shape[d] for d in dims)
        batch = tuple(range(dy.dim() - len(dims)))
        dxhat = dy if weight is None else dy * weight
        dvar = (dxhat * xc).sum(dims, keepdim=True) * -0.5 * inv ** 3
        dmu = -(dxhat * inv).sum(dims, keepdim=True) - 2.0 * dvar * xc.mean(dims, keepdim=True)
        dx = dxhat * inv + dvar * 2.0 * xc / n + dmu / n
        dw = None if weight is None else (dy * xc * inv).sum(batch)
        db = dy.sum(batch) if ctx.has_bias else None
        return dx, None, dw, db, None


@alternative("LayerNormFunction")
class ln_flattened_rows(torch.autograd.Function):
    """Reshapes to (rows, D), works on rows, reshapes back."""

    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        d = math.prod(normalized_shape)
        x2 = x.reshape(-1, d)
        mu = x2.sum(1, keepdim=True) / d
        xc = x2 - mu
        rstd = (xc.square().sum(1, keepdim=True) / d + eps).rsqrt()
        xhat = xc * rstd
        w2 = None if weight is None else weight.reshape(1, d)
        b2 = None if bias is None else bias.reshape(1, d)
        ctx.save_for_backward(xhat, rstd, w2)
        ctx.shapes = (x.shape, None if weight is None else weight.shape)
        y = xhat
        if w2 is not None:
            y = y * w2
        if b2 is not None:
            y = y + b2
        return y.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_output):
        xhat, rstd, w2 = ctx.saved_tensors
        x_shape, w_shape = ctx.shapes
        g = grad_output.reshape(xhat.shape)
        gh = g if w2 is None else g * w2
        gx = rstd * (gh - gh.mean(1, keepdim=True) - xhat * (gh * xhat).mean(1, keepdim=True))
        gw = None if w2 is None else (g * xhat).sum(0).reshape(w_shape)
        gb = None if w2 is None else g.sum(0).reshape(w_shape)
        return gx.reshape(x_shape), None, gw, gb, None


# --------------------------------------------------------------------------- LayerNorm (module)


class _LNFn(torch.autograd.Function):
    """A correct LayerNormFunction, for the module variants below (stands in for the learner's)."""

    forward = staticmethod(ln_flattened_rows.forward)
    backward = staticmethod(ln_flattened_rows.backward)


@mutant("LayerNorm", fails=("forward",))
class layernorm_ignores_eps(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape = shape
        self.weight = nn.Parameter(torch.ones(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape)) if elementwise_affine else None

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, 1e-5)


@mutant("LayerNorm", hint="all ones", fails=("init",))
class layernorm_random_affine(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.rand(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.rand(shape)) if elementwise_affine else None

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, self.eps)


@mutant("LayerNorm", fails=("init", "forward"))
class layernorm_always_affine(nn.Module):
    """Registers weight and bias even when elementwise_affine=False."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.ones(shape))
        self.bias = nn.Parameter(torch.zeros(shape))

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, self.eps)


@mutant("LayerNorm", fails=("forward",))
class layernorm_int_shape_only(nn.Module):
    """Normalizes over the last dimension only, whatever normalized_shape says."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape)) if elementwise_affine else None

    def forward(self, x):
        y = _LNFn.apply(x, (x.shape[-1],), None, None, self.eps)
        return y if self.weight is None else y * self.weight + self.bias


@alternative("LayerNorm")
class layernorm_register_parameter(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        if isinstance(normalized_shape, int):
            normalized_shape = [normalized_shape]
        self.normalized_shape = tuple(normalized_shape)
        self.eps = eps
        if elementwise_affine:
            self.weight = nn.Parameter(torch.empty(self.normalized_shape))
            self.bias = nn.Parameter(torch.empty(self.normalized_shape))
            nn.init.ones_(self.weight)
            nn.init.zeros_(self.bias)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, self.eps)


@alternative("LayerNorm")
class layernorm_with_functional(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        self.shape = torch.Size([normalized_shape] if isinstance(normalized_shape, int)
                                else normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(self.shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(self.shape)) if elementwise_affine else None

    def forward(self, x):
        return F.layer_norm(x, self.shape, self.weight, self.bias, self.eps)


# --------------------------------------------------------------------------- MLPBlock


class _TorchSwiGLU(_SwiGLUBase):
    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class _BlockBase(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.ffn = _TorchSwiGLU(d_model, d_ff)


@mutant("MLPBlock", hint="without the residual")
class block_no_residual(_BlockBase):
    def forward(self, x):
        return self.ffn(self.norm(x))


@mutant("MLPBlock", hint="post-norm")
class block_post_norm(_BlockBase):
    def forward(self, x):
        return self.norm(x + self.ffn(x))


@mutant("MLPBlock", hint="normalized input")
class block_residual_from_normalized(_BlockBase):
    def forward(self, x):
        h = self.norm(x)
        return h + self.ffn(h)


@mutant("MLPBlock", hint="normalize the input of SwiGLU")
class block_no_norm(_BlockBase):
    def forward(self, x):
        return x + self.ffn(x)


@mutant("MLPBlock", fails=("backward",))
class block_residual_detached(_BlockBase):
    def forward(self, x):
        return x.detach() + self.ffn(self.norm(x))


@alternative("MLPBlock")
class block_with_add(_BlockBase):
    def forward(self, x):
        return torch.add(self.ffn(self.norm(x)), x)


@alternative("MLPBlock")
class block_own_parts(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.norm = layernorm_register_parameter(d_model)
        self.ffn = swiglu_own_linear(d_model, d_ff)

    def forward(self, x):
        residual = x
        x = self.norm(x)
        x = self.ffn(x)
        return residual + x
