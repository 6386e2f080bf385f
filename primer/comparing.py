"""How a learner's output is compared with the reference, and the explanation when it differs.

`compare(actual, expected, spec)` walks nested outputs (tensors, numbers, lists, dicts) and
returns None on a match, else one explanation naming where in the output it differs. Tolerances
come from the check (`spec.rtol`/`spec.atol`, `spec.exact`, `spec.check_dtype`) or, for tensors,
from the expected dtype.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from primer.grading import Check


def _describe(x) -> str:
    if isinstance(x, torch.Tensor):
        return f"tensor of shape {tuple(x.shape)}, {str(x.dtype).replace('torch.', '')}"
    if isinstance(x, np.ndarray):
        return f"numpy array of shape {x.shape}, {x.dtype}"
    if x is None:
        return "None"
    if isinstance(x, str):
        return f"the text {x[:80]!r}"
    return f"{type(x).__name__} {x!r}" if isinstance(x, numbers.Number) else type(x).__name__


def _fmt(v: float) -> str:
    return f"{v:.6g}"


def _distinct(expected: float, actual: float) -> tuple[str, str]:
    """Both numbers to 6 significant digits, or to as many more as it takes to tell them apart
    ("expected -0.421426, got -0.421426" says nothing; float64 needs at most 17)."""
    for digits in range(6, 18):
        e, a = f"{expected:.{digits}g}", f"{actual:.{digits}g}"
        if e != a:
            break
    return e, a


def compare(actual, expected, spec: Check, path: str = "", indices: tuple = ()) -> str | None:
    """None when `actual` matches `expected`; otherwise one explanation (a few lines).

    `path` is where in a nested output this part is ("[1][0]"); `indices` the list positions on
    that path, which the check's `levels` name ("rank 1, tensor 0").
    """
    where = f" in output{path}" if path else ""
    named = [f"{level} {i}" for level, i in zip(spec.levels, indices)]
    if named:
        where += f" ({', '.join(named)})"
    if actual is None and expected is not None:
        return f"your code returned None{where} (is a `return` missing?); expected {_describe(expected)}"
    if isinstance(expected, torch.Tensor):
        return _compare_tensor(actual, expected, spec, where)
    if isinstance(expected, bool):
        if actual != expected:
            return f"expected {expected}{where}, got {actual!r}"
        return None
    if isinstance(expected, numbers.Integral):
        if isinstance(actual, torch.Tensor) and actual.numel() == 1:
            actual = actual.item()
        if not isinstance(actual, numbers.Number) or actual != expected:
            return f"expected {expected:,}{where}, got {actual!r}"
        return None
    if isinstance(expected, numbers.Real):
        if isinstance(actual, torch.Tensor) and actual.numel() == 1:
            actual = actual.item()
        if not isinstance(actual, numbers.Real):
            return f"expected a number{where}, got {_describe(actual)}"
        rtol = spec.rtol if spec.rtol is not None else 1e-7
        atol = spec.atol if spec.atol is not None else 1e-7
        if math.isnan(expected) and math.isnan(actual):
            return None
        if not math.isclose(actual, expected, rel_tol=rtol, abs_tol=atol) and actual != expected:
            e, a = _distinct(expected, actual)
            return (f"expected {e}{where}, got {a} "
                    f"(error {_fmt(abs(actual - expected))}, tolerance rtol={rtol:g}, atol={atol:g})")
        return None
    if isinstance(expected, (tuple, list)):
        if not isinstance(actual, (tuple, list)):
            return (f"expected a {type(expected).__name__} of {len(expected)} items{where}, "
                    f"got {_describe(actual)}")
        if len(actual) != len(expected):
            return f"expected {len(expected)} items{where}, got {len(actual)}"
        for i, (a, e) in enumerate(zip(actual, expected)):
            problem = compare(a, e, spec, f"{path}[{i}]", (*indices, i))
            if problem:
                return problem
        return None
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"expected a dict with keys {sorted(expected)}{where}, got {_describe(actual)}"
        missing, extra = set(expected) - set(actual), set(actual) - set(expected)
        if missing:
            return f"missing key(s) {sorted(missing)}{where}"
        if extra:
            return f"unexpected key(s) {sorted(extra)}{where}"
        for k in expected:
            problem = compare(actual[k], expected[k], spec, f"{path}[{k!r}]", indices)
            if problem:
                return problem
        return None
    if actual != expected:
        return f"expected {expected!r}{where}, got {actual!r}"
    return None


def _compare_tensor(actual, expected: torch.Tensor, spec: Check, where: str) -> str | None:
    if isinstance(actual, np.ndarray):
        actual = torch.from_numpy(actual)
    if not isinstance(actual, torch.Tensor):
        return f"expected {_describe(expected)}{where}, got {_describe(actual)}"
    actual, expected = actual.detach(), expected.detach()
    if actual.shape != expected.shape:
        return (f"wrong shape{where}\n  expected: {_describe(expected)}\n"
                f"  got:      {_describe(actual)}")
    if spec.check_dtype and actual.dtype != expected.dtype:
        return (f"wrong dtype{where}\n  expected: {_describe(expected)}\n"
                f"  got:      {_describe(actual)}")
    if actual.dtype != expected.dtype:
        actual = actual.to(expected.dtype)
    if spec.exact:
        if _bitwise_equal(actual, expected):
            return None
        bad = _bitwise_mismatch(actual, expected)
        return _mismatch_report(actual, expected, bad, where, "bitwise equality", spec.axes)
    try:
        torch.testing.assert_close(actual, expected, rtol=spec.rtol, atol=spec.atol,
                                   equal_nan=True, check_dtype=False)
        return None
    except AssertionError:
        pass
    rtol, atol = _tolerances(expected, spec)
    if expected.dtype.is_floating_point or expected.is_complex():
        a64, e64 = actual.to(torch.float64), expected.to(torch.float64)
        close = torch.isclose(a64, e64, rtol=rtol, atol=atol, equal_nan=True)
        bad = ~close
    else:
        bad = actual != expected
    return _mismatch_report(actual, expected, bad, where, f"rtol={rtol:g}, atol={atol:g}", spec.axes)


def _tolerances(expected: torch.Tensor, spec: Check) -> tuple[float, float]:
    if spec.rtol is not None and spec.atol is not None:
        return spec.rtol, spec.atol
    defaults = {torch.float16: (1e-3, 1e-5), torch.bfloat16: (1.6e-2, 1e-5),
                torch.float32: (1.3e-6, 1e-5), torch.float64: (1e-7, 1e-7)}
    rtol, atol = defaults.get(expected.dtype, (0.0, 0.0))
    return (spec.rtol if spec.rtol is not None else rtol, spec.atol if spec.atol is not None else atol)


def _bitwise_equal(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool(_bitwise_mismatch(a, b).sum() == 0)


def _bitwise_mismatch(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.dtype.is_floating_point:
        both_nan = torch.isnan(a) & torch.isnan(b)
        int_dtype = {2: torch.int16, 4: torch.int32, 8: torch.int64}[a.element_size()]
        differ = a.contiguous().view(int_dtype) != b.contiguous().view(int_dtype)
        return differ & ~both_nan
    return a != b


def _mismatch_report(actual, expected, bad: torch.Tensor, where: str, tolerance: str,
                     axes: tuple[str, ...] = ()) -> str:
    n_bad, n = int(bad.sum()), bad.numel()
    a64 = actual.to(torch.float64) if actual.dtype != torch.bool else actual.double()
    e64 = expected.to(torch.float64) if expected.dtype != torch.bool else expected.double()
    err = (a64 - e64).abs()
    err = torch.where(torch.isnan(err), torch.full_like(err, math.inf), err)
    err = torch.where(bad, err, torch.full_like(err, -1.0))
    flat = int(torch.argmax(err.reshape(-1))) if n else 0
    index = tuple(int(i) for i in np.unravel_index(flat, tuple(expected.shape))) if expected.dim() else ()
    exp_v, act_v = e64.reshape(-1)[flat].item(), a64.reshape(-1)[flat].item()
    largest = err.reshape(-1)[flat].item() if n else 0.0  # NaN counts as an infinite error
    return (f"values differ{where}: {n_bad} of {n} element{'s' * (n != 1)} outside tolerance "
            f"({tolerance})\n  largest error {_fmt(largest)} at {_position(index, axes)}: "
            "expected {}, got {}  [{}]".format(*_distinct(exp_v, act_v), _describe(expected)))


def _position(index: tuple, axes: tuple[str, ...]) -> str:
    """"index (8, 136)", or with the check's names for the axes "step 8, parameter element 136"."""
    if axes and len(axes) == len(index):
        return ", ".join(f"{axis} {i}" for axis, i in zip(axes, index)) + f" (index {index})"
    return f"index {index}"
