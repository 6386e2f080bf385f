"""float_format: wrong and right learner implementations."""

import math

import torch

from tests.mutants import alternative, mutant

# The first mutant fails every float_format check; the nbgrader end-to-end test pastes it into a
# notebook, so it only uses names the notebook's first cell imports.


@mutant("float_format", hint="2^-(m+1)")
def format_unit_roundoff(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    emax, emin = 2**exponent_bits - 2 - bias, 1 - bias
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0 ** -(mantissa_bits + 1),
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="bias of 2^(e-1);")
def format_bias_too_big(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1)
    emax, emin = 2**exponent_bits - 2 - bias, 1 - bias
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="max = 2^emax")
def format_max_without_mantissa(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    emax, emin = 2**exponent_bits - 2 - bias, 1 - bias
    return {"max": 2.0**emax, "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="all-ones exponent")
def format_top_exponent_is_normal(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    emax, emin = 2**exponent_bits - 1 - bias, 1 - bias
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="smallest_normal·2^-(m+1)")
def format_subnormal_too_small(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    emax, emin = 2**exponent_bits - 2 - bias, 1 - bias
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits - 1)}


@mutant("float_format", fails=("any_format",))
def format_looked_up_in_torch(exponent_bits, mantissa_bits):
    dtype = {(8, 23): torch.float32, (8, 7): torch.bfloat16, (5, 10): torch.float16,
             (5, 2): torch.float8_e5m2}[(exponent_bits, mantissa_bits)]
    info = torch.finfo(dtype)
    return {"max": info.max, "eps": info.eps, "smallest_normal": info.smallest_normal,
            "smallest_subnormal": info.smallest_normal * info.eps}


@mutant("float_format")
def format_missing_key(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0 ** (2**exponent_bits - 2 - bias),
            "eps": 2.0**-mantissa_bits, "smallest_normal": 2.0 ** (1 - bias)}


@alternative("float_format")
def format_with_ldexp(exponent_bits, mantissa_bits):
    bias = (1 << (exponent_bits - 1)) - 1
    emin = 1 - bias
    emax = bias  # (2^e - 2) - bias = bias
    return {"max": math.ldexp((1 << (mantissa_bits + 1)) - 1, emax - mantissa_bits),
            "eps": math.ldexp(1.0, -mantissa_bits),
            "smallest_normal": math.ldexp(1.0, emin),
            "smallest_subnormal": math.ldexp(1.0, emin - mantissa_bits)}


@alternative("float_format")
def format_as_tensors(exponent_bits, mantissa_bits):
    two = torch.tensor(2.0, dtype=torch.float64)
    bias = 2 ** (exponent_bits - 1) - 1
    smallest_normal = two ** (1 - bias)
    return {"max": (2 - two ** -mantissa_bits) * two ** bias,
            "eps": two ** -mantissa_bits,
            "smallest_normal": smallest_normal,
            "smallest_subnormal": smallest_normal * two ** -mantissa_bits}


def _formats(exponent_bits, mantissa_bits):
    bias = 2 ** (exponent_bits - 1) - 1
    return bias, 2**exponent_bits - 2 - bias, 1 - bias


@mutant("float_format", hint="max = 2^(emax+1)")
def format_max_rounded_to_two(exponent_bits, mantissa_bits):
    bias, emax, emin = _formats(exponent_bits, mantissa_bits)
    return {"max": 2.0 ** (emax + 1), "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="(1 + 2^-m)·2^emax")
def format_max_last_mantissa_bit_only(exponent_bits, mantissa_bits):
    bias, emax, emin = _formats(exponent_bits, mantissa_bits)
    return {"max": (1 + 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="eps = 2^-(m-1)")
def format_eps_twice(exponent_bits, mantissa_bits):
    bias, emax, emin = _formats(exponent_bits, mantissa_bits)
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0 ** (1 - mantissa_bits),
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="smallest_normal = 2^-bias")
def format_smallest_normal_from_zero_exponent(exponent_bits, mantissa_bits):
    bias, emax, emin = _formats(exponent_bits, mantissa_bits)
    return {"max": (2 - 2.0**-mantissa_bits) * 2.0**emax, "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**-bias, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@mutant("float_format", hint="float8_e4m3fn's convention")
def format_finite_only_convention(exponent_bits, mantissa_bits):
    bias, emax, emin = _formats(exponent_bits, mantissa_bits)
    return {"max": (2 - 2.0 ** (1 - mantissa_bits)) * 2.0 ** (emax + 1), "eps": 2.0**-mantissa_bits,
            "smallest_normal": 2.0**emin, "smallest_subnormal": 2.0 ** (emin - mantissa_bits)}


@alternative("float_format")
def format_with_fractions(exponent_bits, mantissa_bits):
    from fractions import Fraction
    bias = 2 ** (exponent_bits - 1) - 1
    two, ulp = Fraction(2), Fraction(1, 2**mantissa_bits)
    return {"max": float((2 - ulp) * two ** (2**exponent_bits - 2 - bias)), "eps": float(ulp),
            "smallest_normal": float(two ** (1 - bias)),
            "smallest_subnormal": float(two ** (1 - bias) * ulp)}


@mutant("float_format", hint="computing in float32", fails=("torch_formats",))
def format_with_float32_powers(exponent_bits, mantissa_bits):
    """(A blind tester's answer, reworded: torch.exp2 of a float32 tensor is float32 too.)"""
    def power_of_two(k):
        return torch.exp2(torch.tensor(float(k)))
    bias, emax, emin = _formats(exponent_bits, mantissa_bits)
    return {"max": (2 - power_of_two(-mantissa_bits)) * power_of_two(emax),
            "eps": power_of_two(-mantissa_bits), "smallest_normal": power_of_two(emin),
            "smallest_subnormal": power_of_two(emin - mantissa_bits)}
