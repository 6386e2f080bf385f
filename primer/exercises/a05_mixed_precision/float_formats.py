"""float_format: max, eps and the smallest normal and subnormal numbers of an IEEE-style format,
checked against torch.finfo and, for formats torch lacks, against a decoding of every code."""

from __future__ import annotations

import torch

from primer.grading import Case, Check, Hint, register

# The IEEE-style formats torch implements, by (exponent bits, mantissa bits). float8_e4m3fn is
# not IEEE-style (no infinities, the all-ones exponent holds normal numbers): the notebook
# explains it, the check does not use it.
TORCH_FORMATS = {
    (8, 23): torch.float32,
    (8, 7): torch.bfloat16,
    (5, 10): torch.float16,
    (5, 2): torch.float8_e5m2,
}
_SAME_SIZE_INT = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def _smallest_subnormal(dtype: torch.dtype) -> float:
    """The number whose bit pattern is 0...01 (torch.finfo does not report it)."""
    one = torch.ones((), dtype=_SAME_SIZE_INT[torch.finfo(dtype).bits // 8])
    return one.view(dtype).item()


# float64's layout: every value of the exercise must be computed in float64 (or Python floats),
# not in float32 tensors, which overflow to inf and underflow to 0 there. Its case comes last, so
# that the other mistakes (some of which overflow a Python float here) fail where they did.
FLOAT64_LAYOUT = (11, 52)


def _reference_torch_format(exponent_bits: int, mantissa_bits: int) -> dict:
    """torch.finfo of the torch dtype with this layout."""
    dtype = {**TORCH_FORMATS, FLOAT64_LAYOUT: torch.float64}[(exponent_bits, mantissa_bits)]
    info = torch.finfo(dtype)
    return {"max": info.max, "eps": info.eps, "smallest_normal": info.smallest_normal,
            "smallest_subnormal": _smallest_subnormal(dtype)}


def decode_all_codes(exponent_bits: int, mantissa_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every non-negative bit pattern of an IEEE-style format, decoded by the encoding rules.

    Returns (values, finite) in float64, in code order: exponent field 0 holds the subnormals
    (0.f × 2^(1-bias)), fields 1 .. 2^e-2 the normal numbers (1.f × 2^(E-bias)), the all-ones
    field infinities and NaNs. A derivation independent of any closed formula for max or eps.
    """
    e, m = exponent_bits, mantissa_bits
    codes = torch.arange(2 ** (e + m), dtype=torch.int64)
    field, fraction = codes >> m, (codes & (2**m - 1)).double() / 2**m
    bias = 2 ** (e - 1) - 1
    normal = (1 + fraction) * torch.pow(2.0, (field - bias).double())
    subnormal = fraction * 2.0 ** (1 - bias)
    values = torch.where(field == 0, subnormal, normal)
    return values, field < 2**e - 1


def _reference_decoded_format(exponent_bits: int, mantissa_bits: int) -> dict:
    """max, eps, smallest normal and subnormal, read off the decoded list of all numbers."""
    values, finite = decode_all_codes(exponent_bits, mantissa_bits)
    one = int(torch.nonzero(values == 1.0)[0])
    field = torch.arange(len(values)) >> mantissa_bits
    return {"max": values[finite].max().item(),
            "eps": (values[one + 1] - values[one]).item(),
            "smallest_normal": values[field >= 1].min().item(),
            "smallest_subnormal": values[values > 0].min().item()}


def _float_format_torch_cases(gen):
    order = torch.randperm(len(TORCH_FORMATS), generator=gen).tolist()
    layouts = list(TORCH_FORMATS)
    return [Case(f"{str(TORCH_FORMATS[layouts[i]])[6:]} (e={layouts[i][0]}, m={layouts[i][1]})",
                 layouts[i]) for i in order] + [
        Case("float64 (e=11, m=52): beyond float32's range", FLOAT64_LAYOUT)]


# Formats torch does not have: e ≤ 8 and e + m ≤ 15 keep the decoded list small.
_OTHER_LAYOUTS = [(e, m) for e in range(2, 9) for m in range(1, 11)
                  if e + m <= 15 and (e, m) not in TORCH_FORMATS]


def _float_format_other_cases(gen):
    picks = torch.randperm(len(_OTHER_LAYOUTS), generator=gen)[:4].tolist()
    layouts = [(4, 3)] + [_OTHER_LAYOUTS[i] for i in picks if _OTHER_LAYOUTS[i] != (4, 3)][:3]
    return [Case(f"e={e}, m={m}" + (" (IEEE-style e4m3: keeps infinities)" if (e, m) == (4, 3) else ""),
                 (e, m)) for e, m in layouts]


def _format_formula(bias_shift=0, eps_shift=0, max_mantissa=True, top_exponent_normal=False,
                    subnormal_shift=0, top_mantissa=None, normal_shift=0, finite_only=False):
    """The closed formulas, with one knob per known mistake (all knobs off: the right answer)."""
    def float_format(exponent_bits, mantissa_bits):
        e, m = exponent_bits, mantissa_bits
        bias = 2 ** (e - 1) - 1 + bias_shift
        emax = 2**e - 2 - bias + (1 if top_exponent_normal else 0)
        emin = 1 - bias
        mantissa = (2.0 - 2.0**-m if max_mantissa else 1.0) if top_mantissa is None else top_mantissa(m)
        out = {"max": mantissa * 2.0**emax,
               "eps": 2.0 ** (-m - eps_shift),
               "smallest_normal": 2.0 ** (emin - normal_shift),
               "smallest_subnormal": 2.0 ** (emin - m - subnormal_shift)}
        if finite_only:  # e4m3fn's convention: the all-ones exponent holds numbers, but not 1.11…1
            out["max"] = (2.0 - 2.0 ** (1 - m)) * 2.0 ** (emax + 1)
        return out
    return float_format


def _format_in_float32(exponent_bits, mantissa_bits):
    """The right formulas, computed with float32 tensors (torch.tensor(2.0) is float32)."""
    e, m, two = exponent_bits, mantissa_bits, torch.tensor(2.0)
    bias = 2 ** (e - 1) - 1
    return {"max": (2 - two**-m) * two ** (2**e - 2 - bias), "eps": two**-m,
            "smallest_normal": two ** (1 - bias), "smallest_subnormal": two ** (1 - bias - m)}


_FORMAT_HINTS = (
    Hint(_format_formula(eps_shift=1), "this matches eps = 2^-(m+1), the largest relative "
         "rounding error (unit roundoff). eps is the gap between 1 and the next number: 2^-m."),
    Hint(_format_formula(bias_shift=1), "this matches a bias of 2^(e-1); IEEE formats use "
         "bias = 2^(e-1) - 1."),
    Hint(_format_formula(bias_shift=-1), "this matches a bias of 2^(e-1) - 2; IEEE formats use "
         "bias = 2^(e-1) - 1."),
    Hint(_format_formula(max_mantissa=False), "this matches max = 2^emax: the largest number "
         "also has all mantissa bits set, (2 - 2^-m)·2^emax."),
    Hint(_format_formula(top_exponent_normal=True), "this matches using the all-ones exponent "
         "for ordinary numbers; in IEEE-style formats it is reserved for inf and NaN, so "
         "emax = 2^e - 2 - bias."),
    Hint(_format_formula(subnormal_shift=1), "this matches smallest_subnormal = "
         "smallest_normal·2^-(m+1); the subnormal spacing is smallest_normal·2^-m."),
    Hint(_format_formula(subnormal_shift=-1), "this matches smallest_subnormal = "
         "smallest_normal·2^-(m-1); the subnormal spacing is smallest_normal·2^-m."),
    Hint(_format_formula(top_mantissa=lambda m: 2.0), "this matches max = 2^(emax+1), as if "
         "the mantissa 1.11…1 were 2: the largest number is (2 - 2^-m)·2^emax."),
    Hint(_format_formula(top_mantissa=lambda m: 1.0 + 2.0**-m), "this matches max = (1 + "
         "2^-m)·2^emax: the largest mantissa has all m bits set, 1.11…1 = 2 - 2^-m."),
    Hint(_format_formula(eps_shift=-1), "this matches eps = 2^-(m-1); the next number after "
         "1 is 1 + 2^-m (the last mantissa bit), so eps = 2^-m."),
    Hint(_format_formula(normal_shift=1), "this matches smallest_normal = 2^-bias, as if E = 0 "
         "were a normal exponent: E = 0 holds the subnormals, so the smallest normal has E = 1, "
         "2^(1-bias)."),
    Hint(_format_formula(finite_only=True), "this matches float8_e4m3fn's convention (no "
         "infinities, only the mantissa 1.11…1 is NaN in the all-ones exponent): the exercise "
         "is the IEEE-style format, whose all-ones exponent holds only inf and NaN."),
    Hint(_format_in_float32, "this matches computing in float32 (torch.tensor(2.0) is a float32 "
         "tensor): float64's max overflows to inf and its smallest numbers underflow to 0. "
         "Compute with Python floats (2.0 ** k) or float64."),
)

register(
    # The values are powers of two (or (2 - 2^-m)·2^emax), exact in float64: any formula that is
    # right gives them to the last bit, so the tolerance is (almost) zero.
    Check("float_format", "torch_formats",
          "matches torch.finfo for float32, bfloat16, float16, float8_e5m2 and float64",
          _float_format_torch_cases, _reference_torch_format, rtol=1e-12, atol=0.0,
          hints=_FORMAT_HINTS, points=2),
    Check("float_format", "any_format",
          "works for IEEE-style formats torch does not have (checked by decoding every code)",
          _float_format_other_cases, _reference_decoded_format, rtol=1e-12, atol=0.0,
          hints=_FORMAT_HINTS),
)
