"""What several of assignment 04's exercises share: how a case is run (leaf tensors, the gradcheck
verdict and its hint, loading weights into a module, forward and backward of a module) and the
SwiGLU reference with its weights, which MLPBlock is built on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.gradcheck import GradcheckError

from primer.exercises._common import randn

# --------------------------------------------------------------------------- shared runs


def _leaf(t):
    return None if t is None else t.detach().clone().requires_grad_(True)


def _gradcheck_verdict(apply, inputs) -> dict:
    """torch.autograd.gradcheck in float64, as a named bool. Only a failed comparison (GradcheckError)
    counts as False; any other exception is the learner's code crashing and is reported as such."""
    try:
        ok = torch.autograd.gradcheck(apply, inputs)
    except GradcheckError:
        ok = False
    return {"torch.autograd.gradcheck passes (float64)": bool(ok)}


class _DoubledGradient(torch.autograd.Function):
    """The identity, with a backward that doubles the gradient."""

    @staticmethod
    def forward(ctx, x):
        return x.clone()

    @staticmethod
    def backward(ctx, g):
        return 2 * g


class _WrongBackward:
    """A Function-like object whose backward disagrees with its forward (fails every gradcheck)."""

    def __init__(self, reference):
        self.reference = reference

    def apply(self, x, *args):
        return self.reference.apply(_DoubledGradient.apply(x), *args)


_GRADCHECK_MESSAGE = (
    "gradcheck compares your backward with finite differences of your forward, in float64. If "
    "the forward and backward checks above fail, fix them first; if they pass, look for "
    "float32 constants or tensors your code creates (they must follow the input's dtype) and "
    "check that backward returns one gradient per input of forward, in order.")


def _load(module: nn.Module, tensors: dict[str, torch.Tensor]) -> None:
    """Copy `tensors` into the module's parameters of the same names; the names must match exactly."""
    found = dict(module.named_parameters())
    if set(found) != set(tensors):
        extra, missing = set(found) - set(tensors), set(tensors) - set(found)
        why = "check the attribute names, and that weights are nn.Parameter"
        if extra and not missing and all(n.split(".")[-1] == "bias" for n in extra):
            why = (f"it has biases {sorted(extra)} this case has none: honour bias=False "
                   "(Linear(..., bias=False), self.bias = None)")
        elif missing and not extra:
            why = (f"{sorted(missing)} missing: are they nn.Parameter (plain tensors are not "
                   "parameters of the module), and created for this case's arguments?")
        raise AttributeError(
            f"{type(module).__name__} has parameters {sorted(found)}; this exercise expects exactly "
            f"{sorted(tensors)} ({why})")
    with torch.no_grad():
        for name, value in tensors.items():
            if found[name].shape != value.shape:
                raise ValueError(f"parameter {name!r} has shape {tuple(found[name].shape)}; "
                                 f"expected {tuple(value.shape)}")
            found[name].copy_(value)


def _shape(t) -> str:
    return "None" if t is None else str(tuple(t.shape)) if isinstance(t, torch.Tensor) else type(t).__name__


def _returned_shapes(y, g, inputs: dict) -> str:
    """The shapes of the gradients a custom Function's backward itself returns, before autograd
    checks them: autograd silently sums a gradient that broadcasts to its input's shape (a bias
    gradient left per row), which hides the mistake. For anything else (the references: torch's
    own functions) the gradients have their inputs' shapes, by definition."""
    node = getattr(y, "grad_fn", None)
    if node is None or not hasattr(node, "_forward_cls"):
        returned = [None if t is None else t for t in inputs.values()]
    else:
        returned = node.apply(g.clone())
        if not isinstance(returned, tuple):
            returned = (returned,)
    names = [n for n, t in inputs.items() if t is not None]
    by_input = dict(zip(inputs, returned))
    return ", ".join(f"{n} {_shape(by_input.get(n))}" for n in names)


def _module_forward_backward(module: nn.Module, x, g) -> dict:
    """Output, input gradient and every parameter's gradient, for the upstream gradient g."""
    x = _leaf(x)
    y = module(x)
    y.backward(g)
    out = {"output": y, "grad input": x.grad}
    for name, p in module.named_parameters():
        out[f"grad {name}"] = p.grad
    return out


def _module_run(part: str, float64: bool = False):
    """`run` for a module exercise. A case's args are (constructor args, {parameter name: tensor},
    x, upstream gradient); kwargs go to the constructor. `part`: "forward" returns the output,
    "backward" the gradients, "both" everything. `float64`: the module, its weights and the inputs
    in float64, for gradients that two correct float32 computations round differently."""
    def run(cls, case):
        ctor, tensors, x, g = case.args
        module = cls(*ctor, **case.kwargs)
        if float64:
            module = module.double()
            tensors, x, g = {k: v.double() for k, v in tensors.items()}, x.double(), g.double()
        _load(module, tensors)
        out = _module_forward_backward(module, x, g)
        if part == "forward":
            return {"output": out["output"]}
        if part == "backward":
            return {k: v for k, v in out.items() if k != "output"}
        return out
    return run


# --------------------------------------------------------------------------- the SwiGLU reference


class TorchSwiGLU(nn.Module):
    """The reference: W2 (silu(W1 x) ⊙ W3 x) from torch's own nn.Linear and F.silu."""

    def __init__(self, d_model, d_ff):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_ff, bias=False)
        self.w2 = nn.Linear(d_ff, d_model, bias=False)
        self.w3 = nn.Linear(d_model, d_ff, bias=False)

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


def _swiglu_weights(gen, d_model, d_ff):
    return {"w1.weight": randn(gen, d_ff, d_model, scale=1 / math.sqrt(d_model)),
            "w2.weight": randn(gen, d_model, d_ff, scale=1 / math.sqrt(d_ff)),
            "w3.weight": randn(gen, d_ff, d_model, scale=1 / math.sqrt(d_model))}
