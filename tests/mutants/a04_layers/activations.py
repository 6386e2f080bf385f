"""Assignment 04: variants of relu, gelu and silu. The first relu mutant is the one the end-to-end
test pastes into the notebook: it uses nothing but the notebook's imports."""

import math
import warnings

import torch
import torch.nn.functional as F

from tests.mutants import alternative, as_cell, mutant

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


# Once alternatives: right values, but not PyTorch's gradient at exactly 0, which the notebook asks for.
@mutant("relu", hint="gradient is 1", fails=("gradient",))
def relu_clamp(x):
    return x.clamp(min=0)


@mutant("relu", hint="gradient is ½", fails=("gradient",))
def relu_maximum(x):
    return torch.maximum(x, torch.zeros_like(x))


@mutant("relu", hint="gradient is 1", fails=("gradient",))
def relu_where_at_least_zero(x):
    return torch.where(x >= 0, x, torch.zeros_like(x))


@mutant("relu", hint="gradient is ½", fails=("gradient",))
def relu_half_of_x_plus_abs(x):
    return (x + x.abs()) / 2


@mutant("relu", hint="float32 mask", fails=("values",))
def relu_float_mask(x):
    return x * (x > 0).float()


@mutant("relu", hint="in place under torch.no_grad()", fails=("gradient",))
def relu_in_place(x):
    with torch.no_grad():
        x[x < 0] = 0
    return x


relu_tensor_method = mutant("relu", hint="asks you not to use", fails=("values", "gradient"))(as_cell(
    "def relu_tensor_method(x):\n    return x.relu()\n", "relu_tensor_method", __name__))


@alternative("relu")
def relu_mask_in_dtype(x):
    return x * (x > 0).to(x.dtype)


@alternative("relu")
def relu_where_scalar(x):
    return torch.where(x > 0, x, 0.0)


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


@mutant("gelu", hint="√(2π)", fails=("tanh",))
def gelu_sqrt_two_pi(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 * math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="without the square root", fails=("tanh",))
def gelu_two_over_pi(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(2 / math.pi * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="0.044715·x²", fails=("tanh",))
def gelu_square_term(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x * x)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="without the cubic term", fails=("tanh",))
def gelu_no_cubic_term(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * x))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="tanh written with exp", fails=("tanh",))
def gelu_tanh_from_exp(x, approximate="none"):
    if approximate == "tanh":
        e = torch.exp(2 * math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3))
        return 0.5 * x * (1 + (e - 1) / (e + 1))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="factor ½", fails=("exact", "tanh"))
def gelu_no_half(x, approximate="none"):
    if approximate == "tanh":
        return x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="erf(x/2)", fails=("exact",))
def gelu_erf_over_two(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / 2))


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


@mutant("silu", hint="x·σ(-x)", fails=("values",))
def silu_sign_flipped(x):
    return x * torch.sigmoid(-x)


@mutant("silu", hint="both branches", fails=("gradient",))
def silu_where_of_two_exp_formulas(x):
    return torch.where(x >= 0, x / (1 + torch.exp(-x)), x * torch.exp(x) / (1 + torch.exp(x)))


@mutant("silu", hint="computing in float32", fails=("values",))
def silu_in_float32(x):
    return x.float() * torch.sigmoid(x.float())


@alternative("silu")
def silu_with_clamped_exponent(x):
    return x / (1 + torch.exp(-x.clamp(min=-80)))


@alternative("silu")
def silu_with_tanh_and_a_warning(x):
    warnings.warn("a harmless warning from the learner's code: it must not cost points")
    return 0.5 * x * (1 + torch.tanh(0.5 * x))


@alternative("silu")
def silu_with_logsigmoid(x):
    return x * torch.exp(F.logsigmoid(x))


# --------------------------------------------------------------------------- appended (the testers' answers)


@mutant("gelu", hint="√(π/2)", fails=("tanh",))
def gelu_sqrt_pi_over_2(x, approximate="none"):
    if approximate == "tanh":
        return 0.5 * x * (1 + torch.tanh(math.sqrt(math.pi / 2) * (x + 0.044715 * x ** 3)))
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2)))


@mutant("gelu", hint="computing in float64", fails=("exact", "tanh"))
def gelu_in_float64(x, approximate="none"):
    xd = x.double()
    if approximate == "tanh":
        return 0.5 * xd * (1 + torch.tanh(math.sqrt(2 / math.pi) * (xd + 0.044715 * xd ** 3)))
    return 0.5 * xd * (1 + torch.erf(xd / math.sqrt(2)))


@mutant("silu", hint="computing in float64", fails=("values",))
def silu_in_float64(x):
    xd = x.to(torch.float64)
    return xd * torch.sigmoid(xd)
