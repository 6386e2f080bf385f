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


@mutant("fp8_quantize", hint="whatever `dtype` says", fails=("values",))
def fp8_always_e4m3(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = 448.0
    amax = x.abs().max() if amax is None else amax
    scale = amax / fmax
    return (x / scale).clamp(-fmax, fmax).to(torch.float8_e4m3fn), scale


@mutant("fp8_quantize", hint="the float8 tensor itself", fails=("values",))
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


def _scale_of(x, dtype, amax):
    amax = x.abs().max() if amax is None else amax
    return amax.float() / torch.finfo(dtype).max


@mutant("fp8_quantize", hint="clamping x to ±finfo(dtype).max before", fails=("error_bound",))
def fp8_clamps_x_first(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = _scale_of(x, dtype, amax)
    return (x.clamp(-fmax, fmax) / scale).clamp(-fmax, fmax).to(dtype), scale


@mutant("fp8_quantize", hint="amax = x.max()", fails=("values", "error_bound"))
def fp8_signed_amax(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = _scale_of(x, dtype, x.max() if amax is None else amax)
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale


@mutant("fp8_quantize", hint="using 448 (e4m3fn's max) for every format", fails=("values",))
def fp8_448_for_every_format(x, dtype=torch.float8_e4m3fn, amax=None):
    amax = x.abs().max() if amax is None else amax
    scale = amax.float() / 448.0
    return (x / scale).clamp(-448.0, 448.0).to(dtype), scale


@mutant("fp8_quantize", hint="M = 240", fails=("values",))
def fp8_ieee_e4m3_max(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = 240.0 if dtype == torch.float8_e4m3fn else torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else amax
    scale = amax.float() / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale


@mutant("fp8_quantize", hint="rounding x / scale to integers", fails=("values", "error_bound"))
def fp8_rounds_like_int8(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = _scale_of(x, dtype, amax)
    return torch.round(x / scale).clamp(-fmax, fmax).to(dtype), scale


@mutant("fp8_quantize", hint="as a Python number", fails=("values",))
def fp8_python_float_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = _scale_of(x, dtype, amax)
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale.item()


@mutant("fp8_quantize", hint="a float64 scale", fails=("values",))
def fp8_float64_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = _scale_of(x, dtype, amax).double()
    return (x / scale).clamp(-fmax, fmax).float().to(dtype), scale


@alternative("fp8_quantize")
def fp8_with_aminmax(x, dtype=torch.float8_e4m3fn, amax=None):
    if amax is None:
        low, high = torch.aminmax(x)
        amax = torch.maximum(low.abs(), high.abs())
    top = torch.finfo(dtype).max
    scale = amax.to(torch.float32) / torch.tensor(top, dtype=torch.float32)
    return torch.clip(x / scale, min=-top, max=top).to(dtype), scale


# --------------------------------------------------------------------------- fp8_dequantize


@mutant("fp8_dequantize", hint="dividing by the scale")
def fp8_dequantize_divides(q, scale):
    return q.float() / scale


@mutant("fp8_dequantize", hint="computing in bfloat16")
def fp8_dequantize_to_bfloat16(q, scale):
    return q.to(torch.bfloat16) * scale.to(torch.bfloat16)


@alternative("fp8_dequantize")
def fp8_dequantize_with_item(q, scale):
    return q.to(dtype=torch.float32).mul(float(scale))


@mutant("fp8_dequantize", hint="without the scale")
def fp8_dequantize_forgets_scale(q, scale):
    return q.float()


@mutant("fp8_dequantize", hint="a float64 result")
def fp8_dequantize_in_float64(q, scale):
    return q.double() * scale.double()


@mutant("fp8_dequantize", hint="computing in float16")
def fp8_dequantize_through_float16(q, scale):
    return (q.half() * scale.half()).float()


@mutant("fp8_dequantize", hint="multiplying by the scale twice")
def fp8_dequantize_scale_squared(q, scale):
    return q.float() * scale * scale


@alternative("fp8_dequantize")
def fp8_dequantize_with_mul(q, scale):
    return torch.mul(q.to(torch.float32), scale.to(torch.float32))


@mutant("fp8_dequantize", hint="computing in float16")
def fp8_dequantize_float16_result(q, scale):
    return q.half().mul(scale)


@mutant("fp8_dequantize", hint="bit patterns as integers")
def fp8_dequantize_reads_bits(q, scale):
    return q.view(torch.uint8).float() * scale


@mutant("fp8_dequantize", hint="multiplying the float8 tensor q itself")
def fp8_dequantize_in_float8(q, scale):
    return torch.mul(q, scale)
