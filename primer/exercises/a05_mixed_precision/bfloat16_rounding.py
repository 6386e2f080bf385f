"""round_to_bfloat16: round-to-nearest-even from float32 to bfloat16, checked bitwise against
torch's cast (random values, exact ties, inf and NaN, subnormals)."""

from __future__ import annotations

import torch

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register


def _reference_round_to_bfloat16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.bfloat16).to(torch.float32)


def _from_bits(bits) -> torch.Tensor:
    """float32 values with the given bit patterns (Python ints, unsigned 32-bit)."""
    signed = [b - 2**32 if b >= 2**31 else b for b in bits]
    return torch.tensor(signed, dtype=torch.int32).view(torch.float32)


def _random_high_halves(gen, n, exponent_low=1, exponent_high=254):
    """n random upper halves (sign, exponent in [low, high], 7 mantissa bits) as int64."""
    sign = torch.randint(0, 2, (n,), generator=gen)
    exponent = torch.randint(exponent_low, exponent_high + 1, (n,), generator=gen)
    mantissa = torch.randint(0, 128, (n,), generator=gen)
    return (sign << 15) | (exponent << 7) | mantissa


def _round_random_cases(gen):
    return [
        Case("1000 values, randn", (randn(gen, 1000),)),
        Case("(8, 16) values, randn × 1e-3", (randn(gen, 8, 16, scale=1e-3),)),
        Case("500 values, randn × 1e30", (randn(gen, 500, scale=1e30),)),
        Case("300 values with random normal exponents",
             (_from_bits(((_random_high_halves(gen, 300) << 16)
                          | torch.randint(0, 2**16, (300,), generator=gen)).tolist()),)),
    ]


def _round_ties_cases(gen):
    high = _random_high_halves(gen, 400, 100, 160)
    even, odd = high & ~1, high | 1
    return [
        Case("exact ties, upper half even (stays)", (_from_bits(((even << 16) | 0x8000).tolist()),)),
        Case("exact ties, upper half odd (rounds up)", (_from_bits(((odd << 16) | 0x8000).tolist()),)),
        Case("one below and one above a tie", (_from_bits(
            ((high << 16) | 0x7FFF).tolist() + ((high << 16) | 0x8001).tolist()),)),
        Case("ties that carry into the exponent (mantissa all ones)",
             (_from_bits([0x3F7F8000, 0xBF7F8000, 0x407F8000, 0x3FFF8000]),)),
    ]


def _round_inf_nan_cases(gen):
    payloads = torch.randint(1, 2**22, (6,), generator=gen).tolist()
    nans = [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F807FFF,
            0x7F808000] + [0x7F800000 | p for p in payloads] + [0xFF800000 | p for p in payloads]
    to_inf = [0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, 0xFF7F8000, 0x7F7FC000]
    return [
        Case("+inf and -inf", (_from_bits([0x7F800000, 0xFF800000]),)),
        Case(f"{len(nans)} NaNs (quiet, signalling, payload only in the low bits)", (_from_bits(nans),)),
        Case("largest float32 values: they round up to ±inf", (_from_bits(to_inf),)),
        Case("the largest bfloat16 and its neighbours (stay finite)",
             (_from_bits([0x7F7F0000, 0x7F7F7FFF, 0x7F7E8000, 0xFF7F7FFF]),)),
    ]


def _round_subnormal_cases(gen):
    low = torch.randint(1, 2**23, (200,), generator=gen)
    sign = torch.randint(0, 2, (200,), generator=gen) << 31
    ties = (torch.randint(0, 128, (50,), generator=gen) << 16) | 0x8000
    return [
        Case("+0 and -0", (_from_bits([0, 0x80000000]),)),
        Case("200 random subnormals", (_from_bits((sign | low).tolist()),)),
        Case("subnormal ties (round to even)", (_from_bits(ties.tolist()),)),
        Case("largest subnormals: round up to the smallest normal",
             (_from_bits([0x007FFFFF, 0x807FFFFF, 0x007F8000, 0x007FC000]),)),
    ]


def _round_truncate(x):
    return (x.view(torch.int32) & -65536).view(torch.float32)


def _round_half_away(x):
    return ((x.view(torch.int32) + 0x8000) & -65536).view(torch.float32)


def _round_even_no_nan(x):
    bits = x.view(torch.int32)
    bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & -65536
    return bits.view(torch.float32)


def _round_returns_bfloat16(x):
    return x.to(torch.bfloat16)


_ROUND_HINTS = (
    Hint(_round_truncate, "this matches truncation (zeroing the low 16 bits). Round to the "
         "nearest: add half of the dropped range first, and break exact ties toward an even "
         "upper half."),
    Hint(_round_half_away, "this matches rounding ties away from zero (adding 0x8000). Exact "
         "ties go to the neighbour whose last kept bit is 0: add 0x7FFF + (bit 16 of x)."),
    Hint(_round_even_no_nan, "this matches rounding NaN like a number: a NaN whose payload is "
         "only in the low 16 bits becomes ±inf (or wraps around). Return NaN for NaN inputs "
         "(torch.isnan)."),
)

register(
    Check("round_to_bfloat16", "random", "bitwise equal to torch's bfloat16 cast on random values",
          _round_random_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS),
    Check("round_to_bfloat16", "ties", "rounds exact ties to even (bitwise)",
          _round_ties_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS, points=2),
    Check("round_to_bfloat16", "inf_and_nan",
          "keeps ±inf, keeps NaN a NaN, and rounds the largest float32 values up to inf",
          _round_inf_nan_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS),
    Check("round_to_bfloat16", "subnormals", "rounds subnormals and ±0 like torch (bitwise)",
          _round_subnormal_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS),
)
