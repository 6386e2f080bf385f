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
        # First, a mix: ties with even and odd upper halves, and values just above a tie, so
        # that truncation, ties down, ties away and ties to odd each give their own output.
        Case("exact ties with even and odd upper halves, and values just above a tie",
             (_from_bits(((even[:100] << 16) | 0x8000).tolist() + ((odd[100:200] << 16) | 0x8000).tolist()
                         + ((high[200:240] << 16) | 0x8001).tolist()),)),
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
    # with two that round up to the largest bfloat16 (finite), so that saturating at it and
    # truncating give different outputs
    to_inf = [0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000, 0xFF7F8000, 0x7F7FC000, 0x7F7EC000, 0xFF7EC000]
    return [
        Case("+inf and -inf", (_from_bits([0x7F800000, 0xFF800000]),)),
        # ±inf among the NaNs tells "NaN to 0" from nan_to_num (which also changes inf)
        Case(f"{len(nans)} NaNs (quiet, signalling, payload only in the low bits), and ±inf",
             (_from_bits(nans + [0x7F800000, 0xFF800000]),)),
        Case("largest float32 values: they round up to ±inf (and two up to the largest bfloat16)",
             (_from_bits(to_inf),)),
        Case("the largest bfloat16 and its neighbours (stay finite)",
             (_from_bits([0x7F7F0000, 0x7F7F7FFF, 0x7F7E8000, 0xFF7F7FFF]),)),
    ]


def _round_subnormal_cases(gen):
    low = torch.randint(1, 2**23, (200,), generator=gen)
    sign = torch.randint(0, 2, (200,), generator=gen) << 31
    ties = (torch.randint(0, 128, (50,), generator=gen) << 16) | 0x8000
    # ±0 last: flushing subnormals to zero (which may lose -0's sign too) fails on the
    # subnormals first, and is not taken for rounding |x| and putting the sign back
    return [
        Case("subnormal ties (round to even)", (_from_bits(ties.tolist()),)),
        Case("200 random subnormals", (_from_bits((sign | low).tolist()),)),
        Case("largest subnormals: round up to the smallest normal",
             (_from_bits([0x007FFFFF, 0x807FFFFF, 0x007F8000, 0x007FC000]),)),
        Case("+0 and -0", (_from_bits([0, 0x80000000]),)),
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


def _round_even(x):
    """Ties to even on the bits, NaN kept: the knob-free base of the mistakes below."""
    bits = x.view(torch.int32)
    out = ((bits + 0x7FFF + ((bits >> 16) & 1)) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), x, out)


def _round_ties_down(x):
    out = ((x.view(torch.int32) + 0x7FFF) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), x, out)


def _round_ties_odd(x):
    bits = x.view(torch.int32)
    out = ((bits + 0x7FFF + (1 - ((bits >> 16) & 1))) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), x, out)


def _round_saturates(x):
    out = _round_even(x)
    top = torch.finfo(torch.bfloat16).max
    return torch.where(torch.isinf(out) & ~torch.isinf(x), torch.copysign(torch.tensor(top), x), out)


def _round_nan_to_zero(x):
    return torch.where(torch.isnan(x), torch.zeros_like(x), _round_even(x))


def _round_nan_to_num(x):
    return torch.nan_to_num(_round_even(x), nan=0.0)


def _round_magnitude_then_sign(x):
    out = _round_even(x.abs())
    return torch.where(x < 0, -out, out)


def _round_nan_truncated(x):
    return torch.where(torch.isnan(x), _round_truncate(x), _round_even(x))


def _round_flush_subnormals(signed):
    def round_to_bfloat16(x):
        zero = torch.copysign(torch.zeros_like(x), x) if signed else torch.zeros_like(x)
        # ±0 left alone, so that on the ±0 case this is not taken for rounding |x| (a learner
        # who flushes ±0 too fails on the subnormals first)
        subnormal = (x.abs() < torch.finfo(torch.float32).tiny) & (x != 0)
        return torch.where(subnormal, zero, _round_even(x))
    return round_to_bfloat16


_FLUSH = ("this matches flushing subnormals to zero: float32 subnormals round to bfloat16's "
          "subnormals like any other number (the same bit arithmetic, no special case).")

_NAN_TRUNCATED = ("this matches clearing the low 16 bits of NaNs (truncating them): a NaN "
                  "whose payload is only in those bits becomes ±inf. Return a NaN for NaN "
                  "inputs (x itself where torch.isnan(x)).")

_ROUND_HINTS = (
    Hint(_round_truncate, "this matches truncation (zeroing the low 16 bits). Round to the "
         "nearest: add half of the dropped range first, and break exact ties toward an even "
         "upper half."),
    Hint(_round_half_away, "this matches rounding ties away from zero (adding 0x8000). Exact "
         "ties go to the neighbour whose last kept bit is 0: add 0x7FFF + (bit 16 of x)."),
    Hint(_round_even_no_nan, "this matches rounding NaN like a number: a NaN whose payload is "
         "only in the low 16 bits becomes ±inf (or wraps around). Return NaN for NaN inputs "
         "(torch.isnan)."),
    Hint(_round_ties_down, "this matches rounding exact ties down (adding 0x7FFF): a tie goes "
         "to the neighbour whose last kept bit is 0, so add 0x7FFF + (bit 16 of x)."),
    Hint(_round_ties_odd, "this matches rounding ties to odd (adding 0x7FFF + 1 - bit 16): the "
         "parity test is the wrong way round; add 0x7FFF + (bit 16 of x)."),
    Hint(_round_saturates, "this matches clamping to the largest bfloat16 instead of rounding "
         "up to inf: float32 values above it round to ±inf, as the carry into the exponent "
         "gives."),
    Hint(_round_nan_to_zero, "this matches turning NaN into 0: NaN must stay NaN (return x "
         "where torch.isnan(x))."),
    Hint(_round_nan_to_num, "this matches torch.nan_to_num(..., nan=0.0): NaN must stay NaN, "
         "and nan_to_num also turns ±inf into float32's largest numbers. Return x where "
         "torch.isnan(x), and leave inf alone."),
    Hint(_round_magnitude_then_sign, "this matches rounding |x| and putting the sign back "
         "with x < 0: -0.0 loses its sign. Work on the bits of x itself (the sign bit needs no "
         "special case)."),
    Hint(_round_nan_truncated, _NAN_TRUNCATED),
    Hint(_round_flush_subnormals(False), _FLUSH),
    Hint(_round_flush_subnormals(True), _FLUSH),
)


class _Bfloat16Tensors(torch.overrides.TorchFunctionMode):
    """Counts the torch calls that return a bfloat16 tensor."""

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.dtype in (torch.bfloat16, torch.float16):
            self.count += 1
        return out


def _run_on_the_bits(fn, case):
    with _Bfloat16Tensors() as mode:
        fn(*case.args)
    return {"torch calls in your code that made a 16-bit float tensor (0: all on the bits)": mode.count}


def _no_16_bit_tensor(x):
    """The rule itself: an answer on the integer bits makes no 16-bit float tensor."""
    return x.view(torch.int32).view(torch.float32)


def _round_with_torch_cast(x):
    return x.to(torch.bfloat16).to(torch.float32)

# On NaNs and ±inf alone, truncating every number and truncating only the NaNs give the same
# output: there both are named by what this check is about, the NaNs.
_INF_NAN_HINTS = tuple(Hint(h.mistake, _NAN_TRUNCATED) if h.mistake is _round_truncate else h
                       for h in _ROUND_HINTS)

register(
    Check("round_to_bfloat16", "random", "bitwise equal to torch's bfloat16 cast on random values",
          _round_random_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS),
    Check("round_to_bfloat16", "ties", "rounds exact ties to even (bitwise)",
          _round_ties_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS, points=2),
    Check("round_to_bfloat16", "inf_and_nan",
          "keeps ±inf, keeps NaN a NaN, and rounds the largest float32 values up to inf",
          _round_inf_nan_cases, _reference_round_to_bfloat16, exact=True, hints=_INF_NAN_HINTS),
    Check("round_to_bfloat16", "subnormals", "rounds subnormals and ±0 like torch (bitwise)",
          _round_subnormal_cases, _reference_round_to_bfloat16, exact=True, hints=_ROUND_HINTS),
    Check("round_to_bfloat16", "on_the_bits",
          "computes on the bits, without torch's bfloat16 conversion (the text rules it out)",
          lambda gen: [Case("1000 values, randn", (randn(gen, 1000),))], _no_16_bit_tensor,
          run=_run_on_the_bits, exact=True,
          hints=(Hint(_round_with_torch_cast, "this matches using torch's conversion "
                      "(x.to(torch.bfloat16)): do the rounding yourself, on the bits of "
                      "x.view(torch.int32)."),)),
)
