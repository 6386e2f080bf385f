"""Assignment 04: the activations relu, gelu and silu."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

from .harness import _leaf

# --------------------------------------------------------------------------- relu, gelu, silu

_LARGE = [-1e4, -100.0, -50.0, -20.0, 20.0, 50.0, 100.0, 1e4]


def _activation_cases(extra_kwargs: dict, with_zero: bool, half: bool = False):
    """`half`: one more case in float16 (relu only: exact in any dtype, so it can be compared
    there; for gelu and silu float16 rounding would differ between correct formulas)."""
    mode = "".join(f", {k}={v!r}" for k, v in extra_kwargs.items())

    def cases(gen):
        out = []
        dtypes = [((200,), torch.float32, 3.0), ((4, 50), torch.float32, 1.0),
                  ((64,), torch.float64, 3.0)] + ([((3, 7), torch.float16, 2.0)] if half else [])
        for shape, dtype, scale in dtypes:
            x = randn(gen, *shape, dtype=dtype, scale=scale)
            if with_zero:
                x.view(-1)[:2] = 0.0
            out.append(Case(f"{tuple(shape)} {str(dtype)[6:]}, scale {scale:g}{mode}", (x,),
                            extra_kwargs))
        large = torch.tensor(_LARGE) + randn(gen, len(_LARGE), scale=0.5)
        out.append(Case(f"large inputs from -1e4 to 1e4{mode}", (large,), extra_kwargs))
        return out
    return cases


def _run_activation_gradient(fn, case):
    """dy/dx through autograd, for a varying upstream gradient (so each element is checked).
    relu's gradient cases include exact zeros: its derivative there is a convention, and the
    notebook asks for PyTorch's (0), which clamp (1) and maximum or (x + |x|)/2 (½) do not give."""
    (x,) = case.args
    x = _leaf(x)
    y = fn(x, **case.kwargs)
    g = torch.linspace(0.5, 2.0, x.numel(), dtype=x.dtype).reshape(x.shape)
    y.backward(g)
    return x.grad


def _relu_leaky(x):
    return F.leaky_relu(x, 0.01)


def _relu_abs(x):
    return x.abs()


def _relu_slope_one_at_zero(x):
    return torch.clamp(x, min=0)


def _relu_slope_half_at_zero(x):
    return torch.maximum(x, torch.zeros_like(x))


def _relu_float32_mask(x):
    return x * (x > 0).float()


def _relu_in_place_no_grad(x):
    with torch.no_grad():
        x[x < 0] = 0
    return x


_RELU_HINTS = (
    Hint(_relu_leaky, "this matches a leaky ReLU: negative inputs give exactly 0."),
    Hint(_relu_abs, "this matches |x|: negative inputs give exactly 0."),
    Hint(_relu_slope_one_at_zero, "the values are right, but at exactly x = 0 your gradient is 1 "
         "(this matches torch.clamp(x, min=0) or torch.where(x >= 0, ...)); PyTorch's ReLU has "
         "gradient 0 there: use torch.where(x > 0, x, 0) or x * (x > 0)."),
    Hint(_relu_slope_half_at_zero, "the values are right, but at exactly x = 0 your gradient is ½ "
         "(this matches torch.maximum(x, 0) or (x + |x|)/2, which split the gradient of a tie); "
         "PyTorch's ReLU has gradient 0 there: use torch.where(x > 0, x, 0) or x * (x > 0)."),
    Hint(_relu_in_place_no_grad, "this matches zeroing x in place under torch.no_grad() and "
         "returning x: autograd then sees the identity, gradient 1 everywhere (and the caller's "
         "tensor is changed). Return a new tensor: torch.where(x > 0, x, 0)."),
    Hint(_relu_float32_mask, "this matches multiplying by a float32 mask ((x > 0).float()): the "
         "result is float32 for a float16 input. Keep x's dtype: x * (x > 0) or "
         "(x > 0).to(x.dtype)."),
)


def _gelu_tanh_constant(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.0447 * x ** 3)))
    return F.gelu(x)


def _gelu_tanh_sqrt(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2) / math.pi * (x + 0.044715 * x ** 3)))
    return F.gelu(x)


def _gelu_tanh_sqrt_pi_over_2(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(math.pi / 2) * (x + 0.044715 * x ** 3)))
    return F.gelu(x)


def _gelu_float64(x, approximate="none"):
    return F.gelu(x.double(), approximate=approximate)


def _gelu_sigmoid(x, approximate="none"):
    return x * torch.sigmoid(1.702 * x)


def _gelu_erf_unscaled(x, approximate="none"):
    return 0.5 * x * (1 + torch.erf(x)) if approximate == "none" else F.gelu(x, approximate="tanh")


def _gelu_tanh_sqrt_2pi(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 * math.pi) * (x + 0.044715 * x ** 3)))
    return F.gelu(x)


def _gelu_tanh_no_sqrt(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(2 / math.pi * (x + 0.044715 * x ** 3)))
    return F.gelu(x)


def _gelu_tanh_square(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 2)))
    return F.gelu(x)


def _gelu_tanh_no_cubic(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x))
    return F.gelu(x)


def _gelu_tanh_via_exp(x, approximate="none"):
    if approximate == "tanh":
        e = torch.exp(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1 + (e - 1) / (e + 1))
    return F.gelu(x)


def _gelu_no_half(x, approximate="none"):
    return 2 * F.gelu(x, approximate=approximate)


def _gelu_erf_over_two(x, approximate="none"):
    return 0.5 * x * (1 + torch.erf(x / 2)) if approximate == "none" else F.gelu(x, approximate="tanh")


def _gelu_always_exact(x, approximate="none"):
    return F.gelu(x)


def _gelu_always_tanh(x, approximate="none"):
    return F.gelu(x, approximate="tanh")


_FLOAT64 = ("this matches computing in float64 and returning that: the result must have the "
            "input's dtype. Compute in x's own dtype, or convert back with .to(x.dtype).")

_GELU_HINTS = (
    Hint(_gelu_tanh_sqrt_pi_over_2, "this matches √(π/2) in the tanh approximation; the factor is "
         "√(2/π) (math.sqrt(2 / math.pi) ≈ 0.798)."),
    Hint(_gelu_float64, _FLOAT64),
    Hint(_gelu_tanh_constant, "this matches a wrong constant in the tanh approximation: it is "
         "0.044715 (x + 0.044715 x³)."),
    Hint(_gelu_tanh_sqrt, "this matches √2/π in the tanh approximation; the factor is √(2/π)."),
    Hint(_gelu_sigmoid, "this matches the sigmoid approximation x·σ(1.702x); use the erf formula "
         "(approximate='none') or the tanh formula (approximate='tanh')."),
    Hint(_gelu_erf_unscaled, "this matches erf(x); the exact GELU is x·Φ(x) = "
         "½x(1 + erf(x/√2))."),
    Hint(_gelu_tanh_sqrt_2pi, "this matches √(2π) in the tanh approximation; the factor is "
         "√(2/π) = math.sqrt(2 / math.pi) ≈ 0.7979."),
    Hint(_gelu_tanh_no_sqrt, "this matches 2/π without the square root in the tanh approximation; "
         "the factor is √(2/π) ≈ 0.7979."),
    Hint(_gelu_tanh_square, "this matches 0.044715·x² in the tanh approximation; the term is "
         "cubic: x + 0.044715·x³."),
    Hint(_gelu_tanh_no_cubic, "this matches tanh(√(2/π)·x) without the cubic term; the "
         "approximation is tanh(√(2/π)·(x + 0.044715·x³))."),
    Hint(_gelu_tanh_via_exp, "this matches tanh written with exp, (e²ᵘ - 1)/(e²ᵘ + 1): e²ᵘ "
         "overflows to inf for large x and inf/inf is NaN. Use torch.tanh."),
    Hint(_gelu_no_half, "this matches the formula without its factor ½: GELU is "
         "½x(1 + erf(x/√2)), and ½x(1 + tanh(...)) for the approximation."),
    Hint(_gelu_erf_over_two, "this matches erf(x/2); the argument is x/√2: "
         "½x(1 + erf(x/√2))."),
    Hint(_gelu_always_exact, "this matches the exact (erf) GELU: with approximate='tanh' use the "
         "tanh formula."),
    Hint(_gelu_always_tanh, "this matches the tanh approximation: with approximate='none' (the "
         "default) use the exact erf formula."),
)


def _silu_exp_ratio(x):
    return x * torch.exp(x) / (1 + torch.exp(x))


def _silu_over_exp(x):
    return x / (1 + torch.exp(-x))


def _silu_sigmoid_only(x):
    return torch.sigmoid(x)


def _silu_sign(x):
    return x * torch.sigmoid(-x)


def _silu_where_branches(x):
    return torch.where(x >= 0, x / (1 + torch.exp(-x)), x * torch.exp(x) / (1 + torch.exp(x)))


def _silu_float64(x):
    return F.silu(x.double())


def _silu_float32(x):
    return x.float() * torch.sigmoid(x.float())


_SILU_HINTS = (
    Hint(_silu_float64, _FLOAT64),
    Hint(_silu_exp_ratio, "exp(x) overflows to inf for x > 88 in float32 and inf/inf is NaN: "
         "use torch.sigmoid (x * torch.sigmoid(x)), which is stable at both ends."),
    Hint(_silu_over_exp, "the value is right but the gradient is NaN for very negative x: "
         "exp(-x) overflows to inf, and autograd computes inf/inf. x * torch.sigmoid(x) is "
         "stable."),
    Hint(_silu_sigmoid_only, "this matches σ(x); SiLU is x·σ(x)."),
    Hint(_silu_sign, "this matches x·σ(-x); SiLU is x·σ(x) = x / (1 + e⁻ˣ)."),
    Hint(_silu_where_branches, "this matches torch.where choosing between two exp formulas: the "
         "values are finite, but autograd differentiates both branches, and the one not chosen "
         "is inf/inf = NaN there (0 · NaN is NaN). Use x * torch.sigmoid(x)."),
    Hint(_silu_float32, "this matches computing in float32 (.float()): the result must keep the "
         "input's dtype, e.g. float64."),
)

register(
    Check("relu", "values", "matches F.relu, including zeros, large inputs and float16",
          _activation_cases({}, with_zero=True, half=True), F.relu, hints=_RELU_HINTS,
          single_threaded=True),
    Check("relu", "gradient", "its gradient (through autograd) matches F.relu's, 0 at x = 0 included",
          _activation_cases({}, with_zero=True), F.relu, run=_run_activation_gradient,
          hints=_RELU_HINTS, single_threaded=True),
    Check("gelu", "exact", "approximate='none' (the default) matches F.gelu, via erf",
          _activation_cases({}, with_zero=True), F.gelu, hints=_GELU_HINTS, single_threaded=True),
    Check("gelu", "tanh", "approximate='tanh' matches F.gelu(x, approximate='tanh')",
          _activation_cases({"approximate": "tanh"}, with_zero=True), F.gelu, hints=_GELU_HINTS,
          single_threaded=True),
    Check("gelu", "gradient", "its gradient (through autograd) matches F.gelu's, in both modes",
          lambda gen: (_activation_cases({}, with_zero=False)(gen)
                       + _activation_cases({"approximate": "tanh"}, with_zero=False)(gen)),
          F.gelu, run=_run_activation_gradient, hints=_GELU_HINTS, single_threaded=True),
    Check("silu", "values", "matches F.silu, including large positive and negative inputs",
          _activation_cases({}, with_zero=True), F.silu, hints=_SILU_HINTS, single_threaded=True),
    Check("silu", "gradient", "its gradient (through autograd) matches F.silu's, and is finite",
          _activation_cases({}, with_zero=False), F.silu, run=_run_activation_gradient,
          hints=_SILU_HINTS, single_threaded=True),
)

# What the notebook names as the references, not to be called by the answers.
for _activation in ("relu", "gelu", "silu"):
    forbid(_activation, "torch.nn.functional.relu", "torch.relu", "torch.Tensor.relu",
           "torch.nn.functional.gelu", "torch.nn.GELU", "torch.nn.functional.silu")
