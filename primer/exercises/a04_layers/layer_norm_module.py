"""Assignment 04: the LayerNorm module (its parameters, their initialization, and its forward)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from primer.exercises._common import randn, seeded
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

from .harness import _module_run

# --------------------------------------------------------------------------- LayerNorm (module)


def _ln_module_init_cases(gen):
    return [Case("LayerNorm(8)", (8,)), Case("LayerNorm((3, 4))", ((3, 4),)),
            Case("LayerNorm(5, elementwise_affine=False)", (5,), {"elementwise_affine": False}),
            Case("LayerNorm(6, eps=1e-3)", (6,), {"eps": 1e-3})]


def _fill_verdict(t) -> str:
    if not isinstance(t, torch.Tensor):
        return f"not a tensor ({type(t).__name__})"
    t = t.detach()
    if t.numel() and (t == 1).all():
        return "all ones"
    if t.numel() and (t == 0).all():
        return "all zeros"
    return "neither all ones nor all zeros"


def _stored_shape(module) -> str:
    shape = getattr(module, "normalized_shape", None)
    if isinstance(shape, tuple) and all(isinstance(n, int) for n in shape):
        return f"a tuple {tuple(shape)}"
    return "missing" if shape is None else f"{type(shape).__name__} {shape!r}, not a tuple"


def _run_ln_module_init(cls, case):
    with seeded(0):
        module = cls(*case.args, **case.kwargs)
    out = {"parameters (name: shape)": {n: tuple(p.shape) for n, p in module.named_parameters()},
           "normalized_shape stored as": _stored_shape(module)}
    if case.kwargs.get("elementwise_affine", True):
        out |= {"weight": _fill_verdict(module.weight), "bias": _fill_verdict(module.bias)}
    return out


def _ln_module_cases(gen):
    out = []
    for batch, shape, kwargs, scale in [((4,), 16, {}, 1.0), ((2, 3), (4, 5), {}, 2.0),
                                        ((5,), 12, {"elementwise_affine": False}, 1.0),
                                        ((6,), 10, {"eps": 0.1}, 0.5)]:
        full = (shape,) if isinstance(shape, int) else shape
        tensors = {}
        if kwargs.get("elementwise_affine", True):
            tensors = {"weight": randn(gen, *full) + 1.0, "bias": randn(gen, *full)}
        x = randn(gen, *batch, *full, scale=scale) - 0.5
        g = randn(gen, *batch, *full)
        args = ", ".join([repr(shape)] + [f"{k}={v!r}" for k, v in kwargs.items()])
        out.append(Case(f"LayerNorm({args}), x {tuple(x.shape)}", ((shape,), tensors, x, g), kwargs))
    return out


class _LNModuleIgnoresEps(nn.LayerNorm):
    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, 1e-5)


class _LNModuleRandomInit(nn.LayerNorm):
    def reset_parameters(self):
        if self.elementwise_affine:
            nn.init.uniform_(self.weight)
            nn.init.uniform_(self.bias)


class _LNModuleRandomWeight(nn.LayerNorm):
    def reset_parameters(self):
        if self.elementwise_affine:
            nn.init.uniform_(self.weight)
            nn.init.zeros_(self.bias)


class _LNModuleZeroWeight(nn.LayerNorm):
    def reset_parameters(self):
        if self.elementwise_affine:
            nn.init.zeros_(self.weight)
            nn.init.zeros_(self.bias)


class _LNModuleBiasOnes(nn.LayerNorm):
    def reset_parameters(self):
        if self.elementwise_affine:
            nn.init.ones_(self.weight)
            nn.init.ones_(self.bias)


class _LNModuleSwapped(nn.LayerNorm):
    def reset_parameters(self):
        if self.elementwise_affine:
            nn.init.zeros_(self.weight)
            nn.init.ones_(self.bias)


class _LNModuleIntShape(nn.LayerNorm):
    def __init__(self, normalized_shape, *args, **kwargs):
        super().__init__(normalized_shape, *args, **kwargs)
        self.normalized_shape = normalized_shape


class _LNModuleEps1e6(nn.LayerNorm):
    def forward(self, x):
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, 1e-6)


class _LNModuleAlwaysAffine(nn.LayerNorm):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__(normalized_shape, eps)


class _LNModulePlainTensors(nn.Module):
    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = torch.ones(shape) if elementwise_affine else None
        self.bias = torch.zeros(shape) if elementwise_affine else None


_LN_START = "LayerNorm starts as the plain normalization: weight (γ) all ones and bias (β) all zeros."
_LN_EPS = "this matches ignoring the eps argument (a fixed eps): pass self.eps on to the computation."


register(
    Check("LayerNorm", "init", "weight = ones and bias = zeros of normalized_shape (none when "
          "elementwise_affine=False), like nn.LayerNorm",
          _ln_module_init_cases, nn.LayerNorm, run=_run_ln_module_init,
          hints=(Hint(_LNModuleRandomInit, _LN_START), Hint(_LNModuleRandomWeight, _LN_START),
                 Hint(_LNModuleZeroWeight, "this matches weight (γ) initialized to zeros: every "
                      "output would be β and no gradient would reach x. Start γ at ones."),
                 Hint(_LNModuleBiasOnes, "this matches bias (β) initialized to ones; it starts at "
                      "zeros (and γ at ones), so the layer starts as the plain normalization."),
                 Hint(_LNModuleSwapped, "this matches the two initializations swapped, weight "
                      "(γ) zeros and bias (β) ones: γ starts at ones, β at zeros."),
                 Hint(_LNModuleAlwaysAffine, "this matches creating weight and bias even when "
                      "elementwise_affine=False; then both are None and the module has no "
                      "parameters."),
                 Hint(_LNModulePlainTensors, "this matches weight and bias as plain tensors: wrap "
                      "them in nn.Parameter, or the module has no parameters to train."),
                 Hint(_LNModuleIntShape, "this matches storing an int normalized_shape as it is; "
                      "store a tuple: (normalized_shape,) for an int, tuple(normalized_shape) "
                      "otherwise.")),
          single_threaded=True),
    Check("LayerNorm", "forward", "output and gradients match nn.LayerNorm with the same weights",
          _ln_module_cases, nn.LayerNorm, run=_module_run("both"),
          hints=(Hint(_LNModuleIgnoresEps, _LN_EPS), Hint(_LNModuleEps1e6, _LN_EPS)), points=2,
          single_threaded=True),
)

# What the notebook names as the references, not to be called by the answers.
forbid("LayerNorm", "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm",
       "torch.nn.LayerNorm")
