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
