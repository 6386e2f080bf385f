"""Assignment 04: variants of the LayerNorm module."""

import torch
from torch import nn

from tests.mutants import alternative, as_cell, mutant

from .layer_norm import ln_flattened_rows

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


@mutant("LayerNorm", hint="as it is", fails=("init",))
class layernorm_keeps_int_shape(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        self.normalized_shape, self.eps = normalized_shape, eps
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.weight = nn.Parameter(torch.ones(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(shape)) if elementwise_affine else None

    def forward(self, x):
        shape = self.normalized_shape
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        return _LNFn.apply(x, shape, self.weight, self.bias, self.eps)


@mutant("LayerNorm", hint="bias (β) initialized to ones", fails=("init",))
class layernorm_bias_ones(layernorm_random_affine):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__(normalized_shape, eps, elementwise_affine)
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.ones(self.normalized_shape))


@mutant("LayerNorm", hint="plain tensors", fails=("init",))
class layernorm_plain_tensors(layernorm_random_affine):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__(normalized_shape, eps, False)
        if elementwise_affine:
            self.weight = torch.ones(self.normalized_shape, requires_grad=True)
            self.bias = torch.zeros(self.normalized_shape, requires_grad=True)


@mutant("LayerNorm", hint="a fixed eps", fails=("forward",))
class layernorm_eps_1e6(layernorm_random_affine):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__(normalized_shape, eps, False)
        if elementwise_affine:
            self.weight = nn.Parameter(torch.ones(self.normalized_shape))
            self.bias = nn.Parameter(torch.zeros(self.normalized_shape))

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, 1e-6)


layernorm_wraps_nn = mutant("LayerNorm", hint="asks you not to use", fails=("init", "forward"))(as_cell(
    """
class layernorm_wraps_nn(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        inner = nn.LayerNorm(normalized_shape, eps=eps, elementwise_affine=elementwise_affine)
        self.normalized_shape, self.eps = inner.normalized_shape, eps
        self.weight, self.bias = inner.weight, inner.bias

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, self.eps)
""", "layernorm_wraps_nn", __name__, _LNFn=_LNFn))


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
class layernorm_with_torch_size(nn.Module):
    """normalized_shape stored as a torch.Size (a tuple), like nn.LayerNorm. (It once called
    F.layer_norm, which the notebook now forbids in this exercise too.)"""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        self.normalized_shape = torch.Size([normalized_shape] if isinstance(normalized_shape, int)
                                           else normalized_shape)
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(self.normalized_shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(self.normalized_shape)) if elementwise_affine else None

    def forward(self, x):
        return _LNFn.apply(x, tuple(self.normalized_shape), self.weight, self.bias, self.eps)


@mutant("LayerNorm", hint="initializations swapped", fails=("init",))
class layernorm_swapped_init(nn.Module):
    """(a tester's answer) weight zeros, bias ones."""

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = nn.Parameter(torch.zeros(shape)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.ones(shape)) if elementwise_affine else None

    def forward(self, x):
        return _LNFn.apply(x, self.normalized_shape, self.weight, self.bias, self.eps)
