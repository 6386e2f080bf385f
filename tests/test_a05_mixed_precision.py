"""Assignment 05: the references and cases test what their checks claim to test.

The generic tests (test_exercises.py) compare learners' outputs with the references; these make
sure the references themselves are right and the cases really contain the hard parts.
"""

import math

import pytest
import torch

from primer.exercises.a05_mixed_precision import float_formats as spec_formats
from primer.exercises.a05_mixed_precision import memory_per_param as spec_memory
from primer.grading import get_check

SEEDS = [0, 1, 2024]


@pytest.mark.parametrize("layout", [(5, 10), (8, 7), (5, 2)])
def test_decoding_every_code_agrees_with_torch(layout):
    """The derivation used for formats torch lacks, validated where torch has the format."""
    dtype = spec_formats.TORCH_FORMATS[layout]
    values, finite = spec_formats.decode_all_codes(*layout)
    int_type = {1: torch.uint8, 2: torch.int16}[torch.finfo(dtype).bits // 8]
    codes = torch.arange(len(values), dtype=torch.int64).to(int_type)
    by_torch = codes.view(dtype).double()
    assert torch.equal(values[finite], by_torch[finite])
    assert not torch.isfinite(by_torch[~finite]).any()
    assert spec_formats._reference_decoded_format(*layout) == spec_formats._reference_torch_format(*layout)


def test_ieee_style_e4m3_differs_from_e4m3fn():
    assert spec_formats._reference_decoded_format(4, 3)["max"] == 240.0
    assert torch.finfo(torch.float8_e4m3fn).max == 448.0


def _bits(case):
    return [b & 0xFFFFFFFF for b in case.args[0].view(torch.int32).tolist()]


@pytest.mark.parametrize("seed", SEEDS)
def test_round_cases_contain_the_hard_parts(seed):
    gen = lambda: torch.Generator().manual_seed(seed)  # noqa: E731
    ties = get_check("round_to_bfloat16.ties").cases(gen())
    # the first case mixes even and odd ties and values just above a tie (it tells the rounding
    # mistakes apart); then the even and the odd ties on their own
    mixed = _bits(ties[0])
    assert {b & 0xFFFF for b in mixed} == {0x8000, 0x8001}
    assert {(b >> 16) & 1 for b in mixed if b & 0xFFFF == 0x8000} == {0, 1}
    assert all(b & 0xFFFF == 0x8000 for b in _bits(ties[1]) + _bits(ties[2]))
    assert {(b >> 16) & 1 for b in _bits(ties[1])} == {0} and {(b >> 16) & 1 for b in _bits(ties[2])} == {1}
    special = get_check("round_to_bfloat16.inf_and_nan").cases(gen())
    nans = special[1].args[0]
    assert torch.isnan(nans[:-2]).all() and torch.isinf(nans[-2:]).all()
    # NaNs whose payload is only in the low 16 bits: truncation or rounding would make them inf
    assert any(b & 0x007F0000 == 0 for b in _bits(special[1]))
    largest = special[2].args[0]
    to_inf = largest.to(torch.bfloat16)
    assert torch.isfinite(largest).all() and torch.isinf(to_inf).sum() >= 5
    # and some that round up to the largest bfloat16 without overflowing
    assert (to_inf.abs() == torch.finfo(torch.bfloat16).max).any()
    sub = get_check("round_to_bfloat16.subnormals").cases(gen())[1].args[0]
    assert (sub.abs() < torch.finfo(torch.float32).tiny).all() and (sub != 0).all()


def test_bytes_reference_is_the_usual_table():
    ref = spec_memory._reference_bytes_per_param
    assert ref("adamw", torch.bfloat16, True) == 16  # 2 + 2 + 4 master + 4 + 4
    assert ref("adamw", torch.float32, True) == ref("adamw", torch.float32, False) == 16
    assert ref("adamw", torch.bfloat16, False) == 8
    assert ref("momentum", torch.float16, True) == 12
    assert ref("sgd", torch.bfloat16, False) == 4


@pytest.mark.parametrize("seed", SEEDS)
def test_scaler_cases_overflow_skip_and_grow(seed):
    """With torch's GradScaler: the injected steps are skipped, and the growth cases grow."""
    for name in ["skips_overflow", "growth", "unscale_before_clipping"]:
        check = get_check(f"DynamicLossScaler.{name}")
        for case in check.cases(torch.Generator().manual_seed(seed)):
            out = check.run(check.reference, case)
            overflow = set(case.args[0]["overflow"])
            assert [i for i, s in enumerate(out["skipped steps"]) if s] == sorted(overflow)
            scales = [case.kwargs.get("init_scale", 2.0**16)] + out["scale after each step"]
            grew = any(b > a for a, b in zip(scales, scales[1:]))
            assert grew == (case.kwargs["growth_interval"] < case.args[0]["steps"])
    growth = get_check("DynamicLossScaler.growth")
    assert all(c.kwargs["growth_interval"] <= 3 for c in growth.cases(torch.Generator().manual_seed(seed)))


@pytest.mark.parametrize("seed", SEEDS)
def test_fp8_reference_meets_the_error_bound(seed):
    check = get_check("fp8_quantize.error_bound")
    for case in check.cases(torch.Generator().manual_seed(seed)):
        assert list(check.run(check.reference, case).values()) == [1.0], case.label


@pytest.mark.parametrize("seed", SEEDS)
def test_fp8_delayed_cases_need_the_clamp(seed):
    """Some e5m2 case goes beyond the format's max once scaled: a cast alone would give inf."""
    check = get_check("fp8_quantize.delayed_amax")
    beyond = 0
    for case in check.cases(torch.Generator().manual_seed(seed)):
        dtype, amax = case.kwargs["dtype"], case.kwargs["amax"]
        scaled = case.args[0] / (amax / torch.finfo(dtype).max)
        if dtype == torch.float8_e5m2 and torch.isinf(scaled.to(dtype).float()).any():
            beyond += 1
    assert beyond >= 1


def test_accumulation_reference_is_the_full_batch_gradient():
    check = get_check("accumulate_gradients.last_smaller")
    case = check.cases(torch.Generator().manual_seed(0))[0]
    model, loss_fn, x, y, _, _ = case.args
    model.zero_grad()
    loss_fn(model(x), y).backward()
    direct = [p.grad.clone() for p in model.parameters()]
    for got, want in zip(check.run(check.reference, case), direct):
        torch.testing.assert_close(got, want)
    assert math.ceil(len(x) / case.args[4]) * case.args[4] != len(x)  # the last one is smaller
