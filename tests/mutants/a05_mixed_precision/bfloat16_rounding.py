"""round_to_bfloat16: wrong and right learner implementations."""

import math
import warnings

import torch

from tests.mutants import alternative, mutant


@mutant("round_to_bfloat16", hint="truncation")
def round_by_truncation(x):
    return (x.view(torch.int32) & 0xFFFF0000).view(torch.float32)


@mutant("round_to_bfloat16", hint="ties away from zero", fails=("ties",))
def round_half_away(x):
    bits = x.view(torch.int32)
    return ((bits + 0x8000) >> 16 << 16).view(torch.float32)


@mutant("round_to_bfloat16", hint="rounding NaN like a number", fails=("inf_and_nan",))
def round_even_forgets_nan(x):
    bits = x.view(torch.int32)
    lsb = (bits >> 16) & 1
    return ((bits + 0x7FFF + lsb) & -65536).view(torch.float32)


@mutant("round_to_bfloat16", fails=("inf_and_nan",))
def round_even_nan_to_inf(x):
    bits = x.view(torch.int32)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), torch.full_like(x, math.inf), rounded)


@mutant("round_to_bfloat16", hint="wrong dtype")
def round_returns_bfloat16(x):
    return x.to(torch.bfloat16)


@mutant("round_to_bfloat16", fails=("subnormals",))
def round_flushes_subnormals(x):
    y = x.to(torch.bfloat16).to(torch.float32)
    return torch.where(x.abs() < torch.finfo(torch.float32).tiny, torch.zeros_like(x), y)


@alternative("round_to_bfloat16")
def round_in_int64(x):
    bits = x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF  # unsigned, no overflow
    keep, dropped = bits >> 16, bits & 0xFFFF
    up = (dropped > 0x8000) | ((dropped == 0x8000) & (keep & 1 == 1))
    rounded = ((keep + up.to(torch.int64)) << 16) & 0xFFFFFFFF
    signed = torch.where(rounded >= 2**31, rounded - 2**32, rounded).to(torch.int32)
    return torch.where(x != x, x, signed.view(torch.float32))


@alternative("round_to_bfloat16")
def round_with_shifts_and_warning(x):
    warnings.warn("a harmless warning from the learner's code")
    bits = x.contiguous().view(torch.int32)
    out = ((bits + (0x7FFF + ((bits >> 16) & 1))) >> 16) << 16
    out = out.view(torch.float32).clone()
    out[torch.isnan(x)] = math.nan
    return out


def _nearest_even(x):
    bits = x.view(torch.int32)
    out = ((bits + 0x7FFF + ((bits >> 16) & 1)) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), x, out)


@mutant("round_to_bfloat16", hint="rounding exact ties down", fails=("ties",))
def round_ties_down(x):
    out = ((x.view(torch.int32) + 0x7FFF) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), x, out)


@mutant("round_to_bfloat16", hint="ties to odd", fails=("ties",))
def round_ties_to_odd(x):
    bits = x.view(torch.int32)
    odd = (bits >> 16) & 1
    out = ((bits + 0x7FFF + (1 - odd)) & -65536).view(torch.float32)
    return torch.where(torch.isnan(x), x, out)


@mutant("round_to_bfloat16", hint="largest bfloat16 instead", fails=("inf_and_nan",))
def round_saturates_at_max(x):
    out = _nearest_even(x)
    top = torch.finfo(torch.bfloat16).max
    return torch.where(torch.isinf(out) & ~torch.isinf(x), torch.sign(x) * top, out)


@mutant("round_to_bfloat16", hint="nan_to_num", fails=("inf_and_nan",))
def round_nan_to_num(x):
    return torch.nan_to_num(_nearest_even(x), nan=0.0)


@mutant("round_to_bfloat16", hint="turning NaN into 0", fails=("inf_and_nan",))
def round_nan_to_zero(x):
    return torch.where(x != x, torch.zeros_like(x), _nearest_even(x))


@mutant("round_to_bfloat16", hint="-0.0 loses its sign", fails=("subnormals",))
def round_magnitude_then_sign(x):
    out = _nearest_even(x.abs())
    return torch.where(x < 0, -out, out)


@mutant("round_to_bfloat16", hint="torch's conversion", fails=("on_the_bits",))
def round_with_torch_cast(x):
    return x.bfloat16().float()


@alternative("round_to_bfloat16")
def round_by_cases(x):
    bits = x.view(torch.int32)
    dropped = bits & 0xFFFF
    down = bits & -65536
    up = down + 0x10000
    odd = ((bits >> 16) & 1) == 1
    out = torch.where(dropped < 0x8000, down,
                      torch.where(dropped > 0x8000, up, torch.where(odd, up, down)))
    return torch.where(x != x, x, out.view(torch.float32))


@mutant("round_to_bfloat16", hint="clearing the low 16 bits of NaNs", fails=("inf_and_nan",))
def round_truncates_nans(x):
    bits = x.view(torch.int32)
    nearest = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16
    return torch.where(x != x, bits & -65536, nearest).view(torch.float32)


@mutant("round_to_bfloat16", hint="flushing subnormals to zero", fails=("subnormals",))
def round_flushes_subnormals_with_sign(x):
    exponent_field_zero = (x.view(torch.int32) & 0x7F800000) == 0
    return torch.where(exponent_field_zero, torch.zeros_like(x) * x.sign(), _nearest_even(x))


@alternative("round_to_bfloat16")
def round_with_canonical_nan(x):
    """(A blind tester's answer: every NaN becomes the quiet NaN 0x7FC00000.)"""
    bits = x.view(torch.int32)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & ~0xFFFF
    return torch.where(torch.isnan(x), torch.full_like(bits, 0x7FC00000), rounded).view(torch.float32)
