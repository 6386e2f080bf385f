"""fp8_quantize and fp8_dequantize: per-tensor amax scaling into float8 (e4m3fn, e5m2), with
torch's float8 casts as the reference."""

from __future__ import annotations

import torch

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register

FP8 = (torch.float8_e4m3fn, torch.float8_e5m2)


def _reference_fp8_quantize(x, dtype=torch.float8_e4m3fn, amax=None):
    """Per-tensor scaling with torch's float8 cast; clamped so no version can overflow."""
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else torch.as_tensor(amax, dtype=torch.float32)
    scale = amax.to(torch.float32) / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale


def _reference_fp8_dequantize(q, scale):
    return q.to(torch.float32) * scale


def _run_fp8_values(fn, case):
    out = fn(*case.args, **case.kwargs)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        return out
    q, scale = out
    if not isinstance(q, torch.Tensor):
        return {"q": q, "scale": scale}
    kind = str(scale.dtype) if isinstance(scale, torch.Tensor) else type(scale).__name__
    if isinstance(scale, torch.Tensor) and scale.numel() == 1:
        scale = scale.reshape(())
    return {"q.dtype": str(q.dtype),
            "q (its values, as float32)": q.to(torch.float32),
            "scale": torch.as_tensor(scale, dtype=torch.float32),
            "type of scale (a float32 tensor)": kind}


def _fp8_values_cases(gen):
    return [
        Case("(64, 32) randn, e4m3fn", (randn(gen, 64, 32),), {"dtype": torch.float8_e4m3fn}),
        Case("1000 values randn × 1e-4, e4m3fn (default dtype)", (randn(gen, 1000, scale=1e-4),)),
        Case("(16, 16) randn × 1e3, e5m2", (randn(gen, 16, 16, scale=1e3),),
             {"dtype": torch.float8_e5m2}),
        Case("500 values randn × 3e-7, e5m2", (randn(gen, 500, scale=3e-7),),
             {"dtype": torch.float8_e5m2}),
    ]


def _fp8_delayed_cases(gen):
    x1, x2, x3 = randn(gen, 200), randn(gen, 40, 8, scale=10.0), randn(gen, 300, scale=1e-3)
    return [
        Case("e5m2, amax from an earlier step = half of today's", (x1,),
             {"dtype": torch.float8_e5m2, "amax": x1.abs().max() / 2}),
        Case("e4m3fn, amax from an earlier step = a quarter of today's", (x2,),
             {"dtype": torch.float8_e4m3fn, "amax": x2.abs().max() / 4}),
        Case("e5m2, amax from an earlier step = a tenth of today's", (x3,),
             {"dtype": torch.float8_e5m2, "amax": x3.abs().max() / 10}),
        Case("e5m2, amax larger than today's", (x2,),
             {"dtype": torch.float8_e5m2, "amax": x2.abs().max() * 3}),
    ]


def _run_fp8_error_bound(fn, case):
    """Round trip with the learner's quantize and torch's dequantization (q·scale): relative
    error at most 2^-(m+1) wherever x is inside the format's normal range after amax scaling.

    The output is the largest relative error in units of eps/2, or exactly 1 when it is within
    the bound: every right answer gives 1, and each known mistake its own number (so a hint can
    name it)."""
    x, dtype = case.args[0], case.kwargs.get("dtype", torch.float8_e4m3fn)
    q, scale = fn(x, dtype=dtype)
    xhat = q.to(torch.float32) * torch.as_tensor(scale, dtype=torch.float32)
    info = torch.finfo(dtype)
    amax = x.abs().max()
    normal = x.abs() >= amax * (info.smallest_normal / info.max)
    rel = ((xhat.double() - x.double()).abs() / x.double().abs())[normal]
    # 1e-6: the float32 rounding of q·scale itself, far below the format's eps/2 (2^-4, 2^-3).
    worst = rel.max().item() / (info.eps / 2) if rel.numel() else 0.0
    return {"largest relative error in the normal range, in units of eps/2 (1: within the bound)":
            1.0 if worst <= 1 + 1e-6 else worst}


def _fp8_error_cases(gen):
    return [
        Case("10000 values randn × 1e-5 (small, like gradients), e4m3fn", (randn(gen, 10000, scale=1e-5),),
             {"dtype": torch.float8_e4m3fn}),
        Case("10000 values randn × 2000 (large, like outlier activations), e4m3fn",
             (randn(gen, 10000, scale=2000.0),), {"dtype": torch.float8_e4m3fn}),
        Case("log-uniform over 1e-6 .. 1e6, random signs, e5m2",
             (torch.pow(10.0, torch.rand(5000, generator=gen) * 12 - 6)
              * (torch.randint(0, 2, (5000,), generator=gen) * 2 - 1),),
             {"dtype": torch.float8_e5m2}),
        Case("10000 values randn × 1e4, e5m2", (randn(gen, 10000, scale=1e4),),
             {"dtype": torch.float8_e5m2}),
    ]


def _fp8_no_scaling(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    return x.clamp(-fmax, fmax).to(dtype), torch.ones((), dtype=torch.float32)


def _fp8_no_clamp(x, dtype=torch.float8_e4m3fn, amax=None):
    amax = x.abs().max() if amax is None else torch.as_tensor(amax, dtype=torch.float32)
    scale = amax / torch.finfo(dtype).max
    return (x / scale).to(dtype), scale


def _fp8_inverse_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    q, scale = _reference_fp8_quantize(x, dtype, amax)
    return q, 1.0 / scale


def _fp8_ignores_amax(x, dtype=torch.float8_e4m3fn, amax=None):
    return _reference_fp8_quantize(x, dtype)


def _fp8_clamps_before_scaling(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else torch.as_tensor(amax, dtype=torch.float32)
    scale = amax.to(torch.float32) / fmax
    return (x.clamp(-fmax, fmax) / scale).clamp(-fmax, fmax).to(dtype), scale


def _fp8_signed_max(x, dtype=torch.float8_e4m3fn, amax=None):
    return _reference_fp8_quantize(x, dtype, x.max() if amax is None else amax)


def _fp8_max_448(x, dtype=torch.float8_e4m3fn, amax=None):
    amax = x.abs().max() if amax is None else torch.as_tensor(amax, dtype=torch.float32)
    scale = amax.to(torch.float32) / 448.0
    return (x / scale).clamp(-448.0, 448.0).to(dtype), scale


def _fp8_max_240(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = 240.0 if dtype == torch.float8_e4m3fn else torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else torch.as_tensor(amax, dtype=torch.float32)
    scale = amax.to(torch.float32) / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale


def _fp8_always_e4m3(x, dtype=torch.float8_e4m3fn, amax=None):
    return _reference_fp8_quantize(x, torch.float8_e4m3fn, amax)


def _fp8_rounds_to_integers(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else torch.as_tensor(amax, dtype=torch.float32)
    scale = amax.to(torch.float32) / fmax
    return torch.round(x / scale).clamp(-fmax, fmax).to(dtype), scale


def _fp8_returns_float32_q(x, dtype=torch.float8_e4m3fn, amax=None):
    q, scale = _reference_fp8_quantize(x, dtype, amax)
    return q.to(torch.float32), scale


def _fp8_python_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    q, scale = _reference_fp8_quantize(x, dtype, amax)
    return q, scale.item()


def _fp8_float64_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    q, scale = _reference_fp8_quantize(x, dtype, amax)
    return q, scale.double()


_FP8_HINTS = (
    Hint(_fp8_no_clamp, "this matches casting without clamping to ±finfo(dtype).max: values "
         "beyond it become inf in e5m2 (and NaN in e4m3fn with older torch). Clamp before the "
         "cast."),
    Hint(_fp8_no_scaling, "this matches casting x without scaling it first: small values "
         "underflow to 0 and large ones saturate. Divide by scale = amax / finfo(dtype).max."),
    Hint(_fp8_inverse_scale, "this matches returning finfo.max / amax; return the factor that "
         "dequantizes, scale = amax / finfo(dtype).max (x ≈ q·scale)."),
    Hint(_fp8_ignores_amax, "this matches ignoring the `amax` argument: when it is given, "
         "scale by it (delayed scaling), not by today's maximum."),
    Hint(_fp8_clamps_before_scaling, "this matches clamping x to ±finfo(dtype).max before "
         "dividing by the scale: the clamp belongs to the scaled values, clamp(x / scale)."),
    Hint(_fp8_signed_max, "this matches amax = x.max(): the amax is the largest magnitude, "
         "x.abs().max(), or large negative values are clipped."),
    Hint(_fp8_max_448, "this matches using 448 (e4m3fn's max) for every format: take M = "
         "torch.finfo(dtype).max of the dtype asked for (57344 for e5m2)."),
    Hint(_fp8_max_240, "this matches M = 240, the largest value of an IEEE-style e4m3; "
         "float8_e4m3fn has no infinities and reaches 448: use torch.finfo(dtype).max."),
    Hint(_fp8_always_e4m3, "this matches casting to float8_e4m3fn whatever `dtype` says: cast "
         "to the dtype asked for (and use its finfo.max)."),
    Hint(_fp8_rounds_to_integers, "this matches rounding x / scale to integers (int8-style "
         "quantization) before the cast: float8 keeps fractions, so cast x / scale directly."),
    Hint(_fp8_returns_float32_q, "this matches returning q converted back to float32: return "
         "the float8 tensor itself (q of dtype `dtype`)."),
    Hint(_fp8_python_scale, "this matches returning the scale as a Python number: return it "
         "as a float32 scalar tensor (amax / finfo(dtype).max computed in float32)."),
    Hint(_fp8_float64_scale, "this matches a float64 scale: compute amax / finfo(dtype).max in "
         "float32 (amax.float() / max), so that q·scale stays float32."),
)

register(
    Check("fp8_quantize", "values", "matches torch's float8 casts with per-tensor amax scaling",
          _fp8_values_cases, _reference_fp8_quantize, run=_run_fp8_values, hints=_FP8_HINTS, points=2),
    Check("fp8_quantize", "error_bound",
          "round trip within the format's relative error bound over wide ranges of magnitude",
          _fp8_error_cases, _reference_fp8_quantize, run=_run_fp8_error_bound, hints=_FP8_HINTS),
    Check("fp8_quantize", "delayed_amax",
          "with a given (older) amax, clamps values beyond the format's max instead of overflowing",
          _fp8_delayed_cases, _reference_fp8_quantize, run=_run_fp8_values, hints=_FP8_HINTS),
)


def _fp8_dequantize_cases(gen):
    out = []
    for dtype, shape, spread in [(torch.float8_e4m3fn, (32, 16), 1e-3), (torch.float8_e5m2, (500,), 1e4),
                                 (torch.float8_e4m3fn, (7,), 50.0)]:
        x = randn(gen, *shape, scale=spread)
        q, scale = _reference_fp8_quantize(x, dtype)
        out.append(Case(f"{str(dtype)[6:]} {shape}, scale={scale.item():.3g}", (q, scale)))
    return out


def _dequantize_divides(q, scale):
    return q.to(torch.float32) / scale


def _dequantize_without_scale(q, scale):
    return q.to(torch.float32)


def _dequantize_in(dtype, back_to_float32=False):
    def fp8_dequantize(q, scale):
        x = q.to(dtype) * scale.to(dtype)
        return x.to(torch.float32) if back_to_float32 else x
    return fp8_dequantize


def _dequantize_scale_twice(q, scale):
    return q.to(torch.float32) * scale * scale


def _dequantize_bit_patterns(q, scale):
    return q.view(torch.uint8).to(torch.float32) * scale


def _dequantize_float8_arithmetic(q, scale):
    return q * scale


def _dequantize_half_times_scale(q, scale):
    return q.half() * scale


register(
    # q·scale is one float32 product of two exact numbers: every right answer gives it to the
    # last bit, so float32's rtol and no atol (values near 1e-3 · scale must not hide errors).
    Check("fp8_dequantize", "values", "returns q·scale in float32",
          _fp8_dequantize_cases, _reference_fp8_dequantize, rtol=1.3e-6, atol=0.0,
          hints=(Hint(_dequantize_divides, "this matches dividing by the scale; x ≈ q·scale, so "
                      "multiply."),
                 Hint(_dequantize_without_scale, "this matches returning q as float32 without "
                      "the scale: multiply by it, q.float() * scale."),
                 Hint(_dequantize_in(torch.float64), "this matches a float64 result: convert q "
                      "to float32 (q.float() * scale), not to float64."),
                 *(Hint(_dequantize_in(torch.bfloat16, back), "this matches computing in "
                        "bfloat16: convert q to float32 (q.float() * scale).") for back in (False, True)),
                 *(Hint(_dequantize_in(torch.float16, back), "this matches computing in float16 "
                        "(it overflows above 65504): convert q to float32 (q.float() * scale).")
                   for back in (False, True)),
                 Hint(_dequantize_scale_twice, "this matches multiplying by the scale twice: "
                      "x ≈ q·scale, once."),
                 Hint(_dequantize_half_times_scale, "this matches computing in float16 "
                      "(it overflows above 65504): convert q to float32 (q.float() * scale)."),
                 Hint(_dequantize_bit_patterns, "this matches reading q's bit patterns as "
                      "integers (q.view(torch.uint8)): convert the float8 values themselves, "
                      "q.float() * scale."),
                 Hint(_dequantize_float8_arithmetic, "this matches multiplying the float8 "
                      "tensor q itself: torch has no float8 arithmetic on the CPU. Convert it "
                      "first: q.float() * scale."))),
)
