"""Assignment 04: variants of LayerNormFunction (the module's are in layer_norm_module.py)."""

import math

import torch

from tests.mutants import alternative, as_cell, mutant

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


class _LNRightForward(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        dims = _ln_dims(x, normalized_shape)
        var, mu = torch.var_mean(x, dims, keepdim=True, unbiased=False)
        rstd = torch.rsqrt(var + eps)
        return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)


def _ln_backward_with(grad_x=None, params=None):
    """A backward with the input-gradient formula and/or the parameter gradients replaced."""
    def backward(ctx, grad_output):
        xhat, rstd, weight = ctx.saved_tensors
        dims = ctx.dims
        batch = tuple(range(grad_output.dim() - len(dims)))
        g = grad_output if weight is None else grad_output * weight
        if grad_x is None:
            gx = rstd * (g - g.mean(dims, keepdim=True) - xhat * (g * xhat).mean(dims, keepdim=True))
        else:
            gx = grad_x(g, grad_output, xhat, rstd, dims)
        gw, gb = (grad_output * xhat).sum(batch), grad_output.sum(batch)
        if params is not None:
            gw, gb = params(grad_output, xhat)
        return gx, None, None if weight is None else gw, None if weight is None else gb, None
    return staticmethod(backward)


@mutant("LayerNormFunction", hint="without the variance term", fails=("backward", "gradcheck"))
class ln_backward_no_variance_term(_LNRightForward):
    backward = _ln_backward_with(lambda g, go, xh, r, d: r * (g - g.mean(d, keepdim=True)))


@mutant("LayerNormFunction", hint="without the mean term", fails=("backward", "gradcheck"))
class ln_backward_no_mean_term(_LNRightForward):
    backward = _ln_backward_with(lambda g, go, xh, r, d: r * (g - xh * (g * xh).mean(d, keepdim=True)))


@mutant("LayerNormFunction", hint="without the factor r", fails=("backward", "gradcheck"))
class ln_backward_no_rstd(_LNRightForward):
    backward = _ln_backward_with(
        lambda g, go, xh, r, d: g - g.mean(d, keepdim=True) - xh * (g * xh).mean(d, keepdim=True))


@mutant("LayerNormFunction", hint="from g instead of ĝ", fails=("backward", "gradcheck"))
class ln_backward_forgets_gamma(_LNRightForward):
    backward = _ln_backward_with(
        lambda g, go, xh, r, d: r * (go - go.mean(d, keepdim=True) - xh * (go * xh).mean(d, keepdim=True)))


@mutant("LayerNormFunction", hint="is subtracted", fails=("backward", "gradcheck"))
class ln_backward_adds_variance_term(_LNRightForward):
    backward = _ln_backward_with(
        lambda g, go, xh, r, d: r * (g - g.mean(d, keepdim=True) + xh * (g * xh).mean(d, keepdim=True)))


@mutant("LayerNormFunction", hint="batch dimensions still in", fails=("backward",))
class ln_param_grads_per_row(_LNRightForward):
    backward = _ln_backward_with(params=lambda go, xh: (go * xh, go))


@mutant("LayerNormFunction", hint="over dim 0 only", fails=("backward",))
class ln_param_grads_over_dim0(_LNRightForward):
    backward = _ln_backward_with(params=lambda go, xh: ((go * xh).sum(0), go.sum(0)))


ln_calls_F_layer_norm = mutant("LayerNormFunction", hint="asks you not to use", fails=("forward",))(as_cell(
    """
class ln_calls_F_layer_norm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, normalized_shape, weight, bias, eps):
        y = F.layer_norm(x.double(), normalized_shape, eps=eps).to(x.dtype)
        ctx.save_for_backward(y, torch.rsqrt(x.var(_ln_dims(x, normalized_shape), keepdim=True,
                                                   unbiased=False) + eps), weight)
        ctx.dims = _ln_dims(x, normalized_shape)
        return y if weight is None else y * weight + bias

    backward = _LNBase.backward
""", "ln_calls_F_layer_norm", __name__, _ln_dims=_ln_dims, _LNBase=_LNBase))


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


def _gradients_in_the_wrong_order():
    """(a tester's answer) (gx, gw, gb, None, None); defined as LayerNormFunction, the learner's
    name, which autograd's message about the returned gradients quotes."""
    class LayerNormFunction(_LNBase):
        @staticmethod
        def forward(ctx, x, normalized_shape, weight, bias, eps):
            dims = _ln_dims(x, normalized_shape)
            var, mu = torch.var_mean(x, dims, keepdim=True, correction=0)
            rstd = torch.rsqrt(var + eps)
            return _ln_finish(ctx, x, normalized_shape, weight, bias, (x - mu) * rstd, rstd)

        @staticmethod
        def backward(ctx, grad_output):
            gx, _, gw, gb, _ = _LNBase.backward(ctx, grad_output)
            return gx, gw, gb, None, None

    LayerNormFunction.__name__ = LayerNormFunction.__qualname__ = "ln_gradients_out_of_order"
    return LayerNormFunction


mutant("LayerNormFunction", hint="in forward's order", fails=("backward", "gradcheck"))(
    _gradients_in_the_wrong_order())
