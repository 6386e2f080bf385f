"""fp8_quantize and fp8_dequantize: wrong and right learner implementations."""

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- fp8_quantize


@mutant("fp8_quantize", hint="without clamping", fails=("delayed_amax",))
def fp8_no_clamp(x, dtype=torch.float8_e4m3fn, amax=None):
    amax = x.abs().max() if amax is None else amax
    scale = amax / torch.finfo(dtype).max
    return (x / scale).to(dtype), scale


@mutant("fp8_quantize", hint="without scaling", fails=("values", "error_bound"))
def fp8_no_scaling(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    return x.clamp(-fmax, fmax).to(dtype), torch.tensor(1.0)


@mutant("fp8_quantize", hint="finfo.max / amax", fails=("values",))
def fp8_returns_inverse_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else amax
    inv = fmax / amax
    return (x * inv).clamp(-fmax, fmax).to(dtype), inv


@mutant("fp8_quantize", hint="ignoring the `amax`", fails=("delayed_amax",))
def fp8_ignores_given_amax(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = x.abs().max() / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale


@mutant("fp8_quantize", fails=("values",))
def fp8_always_e4m3(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = 448.0
    amax = x.abs().max() if amax is None else amax
    scale = amax / fmax
    return (x / scale).clamp(-fmax, fmax).to(torch.float8_e4m3fn), scale


@mutant("fp8_quantize", fails=("values",))
def fp8_fake_quantized_float32(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else amax
    scale = amax / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype).float(), scale


@alternative("fp8_quantize")
def fp8_with_python_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    info = torch.finfo(dtype)
    a = float(x.abs().max() if amax is None else amax)
    scale = torch.tensor(a / info.max, dtype=torch.float32)
    q = torch.clip(x / scale, min=-info.max, max=info.max).to(dtype)
    return q, scale


@alternative("fp8_quantize")
def fp8_with_where(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    if amax is None:
        amax = torch.amax(torch.abs(x))
    scale = amax.float() / fmax
    y = x.div(scale)
    y = torch.where(y > fmax, fmax, torch.where(y < -fmax, -fmax, y))
    return y.to(dtype), scale.reshape(1)


# --------------------------------------------------------------------------- fp8_dequantize


@mutant("fp8_dequantize", hint="dividing by the scale")
def fp8_dequantize_divides(q, scale):
    return q.float() / scale


@mutant("fp8_dequantize")
def fp8_dequantize_to_bfloat16(q, scale):
    return q.to(torch.bfloat16) * scale.to(torch.bfloat16)


@alternative("fp8_dequantize")
def fp8_dequantize_with_item(q, scale):
    return q.to(dtype=torch.float32).mul(float(scale))
