"""Assignment 05, primer §3.5: number formats, bf16 rounding, loss scaling, fp8, memory per
parameter, gradient accumulation.

Each exercise: how its cases are made from a seed, the reference (torch, or a derivation), the
tolerance, and the hints (objects implementing a known mistake). Mutants used to test these
checks: tests/mutants/a05_mixed_precision.py.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F

from primer.exercises._common import mlp, randint, randn
from primer.grading import Case, Check, Hint, register

# Imported once by the grading sandbox before it forks a run per submission: optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

# --------------------------------------------------------------------------- float_format

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


def _reference_torch_format(exponent_bits: int, mantissa_bits: int) -> dict:
    """torch.finfo of the torch dtype with this layout."""
    dtype = TORCH_FORMATS[(exponent_bits, mantissa_bits)]
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
                 layouts[i]) for i in order]


# Formats torch does not have: e ≤ 8 and e + m ≤ 15 keep the decoded list small.
_OTHER_LAYOUTS = [(e, m) for e in range(2, 9) for m in range(1, 11)
                  if e + m <= 15 and (e, m) not in TORCH_FORMATS]


def _float_format_other_cases(gen):
    picks = torch.randperm(len(_OTHER_LAYOUTS), generator=gen)[:4].tolist()
    layouts = [(4, 3)] + [_OTHER_LAYOUTS[i] for i in picks if _OTHER_LAYOUTS[i] != (4, 3)][:3]
    return [Case(f"e={e}, m={m}" + (" (IEEE-style e4m3: keeps infinities)" if (e, m) == (4, 3) else ""),
                 (e, m)) for e, m in layouts]


def _format_formula(bias_shift=0, eps_shift=0, max_mantissa=True, top_exponent_normal=False,
                    subnormal_shift=0):
    """The closed formulas, with one knob per known mistake (all knobs off: the right answer)."""
    def float_format(exponent_bits, mantissa_bits):
        e, m = exponent_bits, mantissa_bits
        bias = 2 ** (e - 1) - 1 + bias_shift
        emax = 2**e - 2 - bias + (1 if top_exponent_normal else 0)
        emin = 1 - bias
        return {"max": (2.0 - 2.0**-m if max_mantissa else 1.0) * 2.0**emax,
                "eps": 2.0 ** (-m - eps_shift),
                "smallest_normal": 2.0**emin,
                "smallest_subnormal": 2.0 ** (emin - m - subnormal_shift)}
    return float_format


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
)

register(
    # The values are powers of two (or (2 - 2^-m)·2^emax), exact in float64: any formula that is
    # right gives them to the last bit, so the tolerance is (almost) zero.
    Check("float_format", "torch_formats",
          "matches torch.finfo for float32, bfloat16, float16 and float8_e5m2",
          _float_format_torch_cases, _reference_torch_format, rtol=1e-12, atol=0.0,
          hints=_FORMAT_HINTS, points=2),
    Check("float_format", "any_format",
          "works for IEEE-style formats torch does not have (checked by decoding every code)",
          _float_format_other_cases, _reference_decoded_format, rtol=1e-12, atol=0.0,
          hints=_FORMAT_HINTS),
)

# --------------------------------------------------------------------------- round_to_bfloat16


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

# --------------------------------------------------------------------------- mixed_precision_bytes_per_param

_OPTIMIZERS = {
    "sgd": lambda params: torch.optim.SGD(params, lr=0.1),
    "momentum": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9),
    "adam": lambda params: torch.optim.Adam(params),
    "adamw": lambda params: torch.optim.AdamW(params),
}
_DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _reference_bytes_per_param(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    """Measured: build the tensors a training step keeps, let torch's optimizer make its state."""
    n = 4096
    param = torch.zeros(n, dtype=param_dtype, requires_grad=True)
    param.grad = torch.zeros_like(param)
    kept = [param, param.grad]
    trained = param
    if master_weights and param_dtype != torch.float32:
        # The optimizer updates a float32 copy; its float32 gradient is made for the update
        # only (cast from param.grad) and is not kept between steps.
        trained = torch.zeros(n, dtype=torch.float32, requires_grad=True)
        trained.grad = torch.zeros_like(trained)
        kept.append(trained)
    opt = _OPTIMIZERS[optimizer]([trained])
    opt.step()
    state = [t for t in opt.state[trained].values() if torch.is_tensor(t) and t.numel() == n]
    return sum(t.numel() * t.element_size() for t in kept + state) // n


def _bytes_cases(select):
    def cases(gen):  # every set-up (12 per check), in an order drawn from the seed
        combos = [(o, d, mw) for o in _OPTIMIZERS for d in _DTYPES for mw in (True, False)
                  if select(o)]
        order = torch.randperm(len(combos), generator=gen).tolist()
        return [Case(f"optimizer={o!r}, param_dtype={str(d)[6:]}, master_weights={mw}", (),
                     {"optimizer": o, "param_dtype": d, "master_weights": mw})
                for o, d, mw in (combos[i] for i in order)]
    return cases


def _bytes_table(tensors_in_param_dtype=2, master_always=False, state_in_param_dtype=False,
                 adam_states=2):
    def bytes_per_param(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
        size = torch.finfo(param_dtype).bits // 8
        master = master_weights and (master_always or param_dtype != torch.float32)
        states = {"sgd": 0, "momentum": 1, "adam": adam_states, "adamw": adam_states}[optimizer]
        state_size = size if (state_in_param_dtype or not master_weights) else 4
        return size * tensors_in_param_dtype + 4 * master + states * state_size
    return bytes_per_param


# Known mistakes, and what to say about each. Several give the same total on some set-ups
# (e.g. one Adam state vs 16-bit Adam states with master weights): on those the hint names
# every mistake that fits, rather than guessing one.
_BYTES_MISTAKES = {
    "adding a float32 master copy when the parameters are already float32 (then they are the "
    "master weights)": _bytes_table(master_always=True),
    "counting one tensor in param_dtype per parameter (the parameters and their gradients are "
    "two)": _bytes_table(tensors_in_param_dtype=1),
    "storing the optimizer state in param_dtype (with master weights the optimizer updates the "
    "float32 copy, so its state is float32)": _bytes_table(state_in_param_dtype=True),
    "one state tensor for Adam/AdamW (they keep two: running means of g and of g²)":
        _bytes_table(adam_states=1),
}


def _mistakes_giving(names):
    """The set-ups' totals for which exactly the mistakes `names` give the learner's value."""
    def bytes_per_param(**kwargs):
        right = _reference_bytes_per_param(**kwargs)
        value = _BYTES_MISTAKES[names[0]](**kwargs)
        fitting = {n for n, f in _BYTES_MISTAKES.items() if f(**kwargs) == value != right}
        if fitting != set(names):
            raise ValueError("another combination of mistakes explains this value")
        return value
    return bytes_per_param


_BYTES_HINTS = tuple(
    Hint(_mistakes_giving(names), "this matches " + ", or ".join(names) + ".")
    for names in [(n,) for n in _BYTES_MISTAKES]
    + [(a, b) for k, a in enumerate(_BYTES_MISTAKES) for b in list(_BYTES_MISTAKES)[k + 1:]]
)

register(
    Check("mixed_precision_bytes_per_param", "adam",
          "bytes per parameter with Adam/AdamW, with and without float32 master weights",
          _bytes_cases(lambda o: o.startswith("adam")), _reference_bytes_per_param,
          hints=_BYTES_HINTS, points=2),
    Check("mixed_precision_bytes_per_param", "sgd",
          "bytes per parameter with SGD and SGD with momentum",
          _bytes_cases(lambda o: not o.startswith("adam")), _reference_bytes_per_param,
          hints=_BYTES_HINTS),
)

# --------------------------------------------------------------------------- DynamicLossScaler


def _reference_scaler(**kwargs):
    return torch.amp.GradScaler("cpu", **kwargs)


def _scaler_case(gen, label, steps, overflow=(), clip=None, optimizer="momentum", **scaler_kwargs):
    """A small seeded regression problem; `overflow` maps step -> 'inf', '-inf' or 'nan'."""
    model = mlp(gen, 6, 16, 3)
    which = {s: int(torch.randint(0, 4, (1,), generator=gen)) for s in overflow}
    return Case(label, ({"model": model, "x": randn(gen, 32, 6), "y": randn(gen, 32, 3),
                         "steps": steps, "overflow": dict(overflow), "param": which,
                         "clip": clip, "optimizer": optimizer},), scaler_kwargs)


def _run_scaler(cls, case):
    """Train with the scaler: scale(loss).backward(), maybe inject inf/NaN into one gradient,
    maybe unscale_ + clip, step, update. Returns the scale after every step (read as
    scale(1.0)), whether each step was skipped (parameters unchanged) and the final parameters."""
    setup = case.args[0]
    model = setup["model"]
    params = list(model.parameters())
    opt = (torch.optim.SGD(params, lr=0.05, momentum=0.9) if setup["optimizer"] == "momentum"
           else torch.optim.AdamW(params, lr=1e-2))
    scaler = cls(**case.kwargs)
    scales, skipped = [], []
    for step in range(setup["steps"]):
        opt.zero_grad()
        loss = F.mse_loss(model(setup["x"]), setup["y"])
        scaler.scale(loss).backward()
        if step in setup["overflow"]:
            with torch.no_grad():
                params[setup["param"][step]].grad.view(-1)[0] = float(setup["overflow"][step])
        if setup["clip"] is not None:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, setup["clip"])
        before = [p.detach().clone() for p in params]
        scaler.step(opt)
        scaler.update()
        skipped.append(all(torch.equal(b, p.detach()) for b, p in zip(before, params)))
        scale = scaler.scale(torch.ones((), dtype=torch.float32))
        scales.append(float(scale) if isinstance(scale, (torch.Tensor, int, float)) else scale)
    return {"scale after each step": scales, "skipped steps": skipped,
            "final parameters": [p.detach() for p in params]}


def _scaler_plain_cases(gen):
    return [
        _scaler_case(gen, "SGD with momentum, 8 clean steps, init_scale=2**16", 8,
                     growth_interval=1000),
        _scaler_case(gen, "AdamW, 6 clean steps, init_scale=1024", 6, optimizer="adamw",
                     init_scale=1024.0, growth_interval=1000),
    ]


def _overflow_steps(gen, steps, count, first=1):
    picks = torch.randperm(steps - first, generator=gen)[:count] + first
    kinds = ["inf", "-inf", "nan"]
    return {int(s): kinds[i % 3] for i, s in enumerate(sorted(picks.tolist()))}


def _scaler_skip_cases(gen):
    return [
        _scaler_case(gen, "inf gradient at step 2", 6, {2: "inf"}, growth_interval=1000),
        _scaler_case(gen, "NaN gradient at step 1", 5, {1: "nan"}, growth_interval=1000),
        _scaler_case(gen, "overflows at random steps", 10, _overflow_steps(gen, 10, 3),
                     growth_interval=1000, backoff_factor=0.25),
    ]


def _scaler_growth_cases(gen):
    interval = int(torch.randint(2, 4, (1,), generator=gen))
    return [
        _scaler_case(gen, "no overflow, growth_interval=2", 7, growth_interval=2,
                     init_scale=256.0),
        _scaler_case(gen, f"overflows at random steps, growth_interval={interval}", 14,
                     _overflow_steps(gen, 14, 3, first=2), growth_interval=interval),
        _scaler_case(gen, "overflow right before growth would happen, growth_interval=3", 10,
                     {2: "inf", 6: "nan"}, growth_interval=3, growth_factor=4.0, init_scale=64.0),
    ]


def _scaler_clip_cases(gen):
    return [
        _scaler_case(gen, "unscale_, clip to norm 0.5, step (7 steps)", 7, clip=0.5,
                     growth_interval=1000),
        _scaler_case(gen, "unscale_ + clip with an overflow at step 3, growth_interval=2", 8,
                     {3: "inf"}, clip=1.0, growth_interval=2),
    ]


class _ScalerBase:
    """A loss scaler with knobs for known mistakes (all off: right)."""

    skip = True
    check_nan = True
    reset_on_overflow = True
    consecutive = True
    unscale_in_step_always = False
    unscale = True

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self.s, self.g, self.b, self.interval = init_scale, growth_factor, backoff_factor, growth_interval
        self.clean, self.steps, self.found, self.unscaled = 0, 0, False, False

    def scale(self, loss):
        return loss * self.s

    def unscale_(self, optimizer):
        grads = [p.grad for group in optimizer.param_groups for p in group["params"]
                 if p.grad is not None]
        for g in grads:
            if self.unscale:
                g.mul_(1.0 / self.s)
        bad = (lambda g: ~torch.isfinite(g)) if self.check_nan else torch.isinf
        self.found = any(bool(bad(g).any()) for g in grads)
        self.unscaled = True

    def step(self, optimizer):
        if not self.unscaled or self.unscale_in_step_always:
            self.unscale_(optimizer)
        if not (self.found and self.skip):
            optimizer.step()

    def update(self):
        self.steps += 1
        if self.found:
            self.s *= self.b
            if self.reset_on_overflow:
                self.clean = 0
        else:
            self.clean += 1
            grow = (self.clean % self.interval == 0) if self.consecutive else \
                (self.steps % self.interval == 0)
            if grow:
                self.s *= self.g
        self.found, self.unscaled = False, False


def _scaler_mistake(**knobs):
    return type("DynamicLossScaler", (_ScalerBase,), knobs)


_SCALER_HINTS = (
    Hint(_scaler_mistake(unscale=False), "this matches stepping with the scaled gradients: "
         "divide every gradient by the scale before the optimizer uses it."),
    Hint(_scaler_mistake(skip=False), "this matches a scaler that still steps when a gradient "
         "is inf or NaN: skip optimizer.step() on those steps (and back off the scale)."),
    Hint(_scaler_mistake(check_nan=False), "this matches checking only for inf: NaN gradients "
         "must skip the step too (use torch.isfinite)."),
    Hint(_scaler_mistake(reset_on_overflow=False), "this matches not resetting the count of "
         "clean steps after an overflow: the scale may only grow after growth_interval "
         "consecutive clean steps."),
    Hint(_scaler_mistake(consecutive=False), "this matches growing every growth_interval "
         "steps counted since the start; count the clean steps since the last overflow or "
         "growth."),
    Hint(_scaler_mistake(unscale_in_step_always=True), "this matches unscaling twice when "
         "unscale_() was already called before step(): remember that this step's gradients are "
         "unscaled already."),
)

register(
    Check("DynamicLossScaler", "no_overflow",
          "trains like torch.amp.GradScaler when nothing overflows (gradients unscaled)",
          _scaler_plain_cases, _reference_scaler, run=_run_scaler, hints=_SCALER_HINTS),
    Check("DynamicLossScaler", "skips_overflow",
          "skips the steps with inf/NaN gradients and backs off the scale, like GradScaler",
          _scaler_skip_cases, _reference_scaler, run=_run_scaler, hints=_SCALER_HINTS, points=2),
    Check("DynamicLossScaler", "growth",
          "grows the scale after growth_interval consecutive clean steps, like GradScaler",
          _scaler_growth_cases, _reference_scaler, run=_run_scaler, hints=_SCALER_HINTS, points=2),
    Check("DynamicLossScaler", "unscale_before_clipping",
          "unscale_() then clipping then step() unscales once, like GradScaler",
          _scaler_clip_cases, _reference_scaler, run=_run_scaler, hints=_SCALER_HINTS),
)

# --------------------------------------------------------------------------- fp8_quantize / fp8_dequantize

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
    if isinstance(scale, torch.Tensor) and scale.numel() == 1:
        scale = scale.reshape(())
    return {"q.dtype": str(q.dtype),
            "q (its values, as float32)": q.to(torch.float32),
            "scale": torch.as_tensor(scale, dtype=torch.float32)}


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
    error at most 2^-(m+1) wherever x is inside the format's normal range after amax scaling."""
    x, dtype = case.args[0], case.kwargs.get("dtype", torch.float8_e4m3fn)
    q, scale = fn(x, dtype=dtype)
    xhat = q.to(torch.float32) * torch.as_tensor(scale, dtype=torch.float32)
    info = torch.finfo(dtype)
    amax = x.abs().max()
    normal = x.abs() >= amax * (info.smallest_normal / info.max)
    rel = ((xhat.double() - x.double()).abs() / x.double().abs())[normal]
    bound = info.eps / 2 * (1 + 1e-6)  # 1e-6: the float32 rounding of q·scale itself
    return {"max relative error ≤ eps/2 in the normal range": bool(rel.max() <= bound)}


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


register(
    Check("fp8_dequantize", "values", "returns q·scale in float32",
          _fp8_dequantize_cases, _reference_fp8_dequantize,
          hints=(Hint(_dequantize_divides, "this matches dividing by the scale; x ≈ q·scale, so "
                      "multiply."),)),
)

# --------------------------------------------------------------------------- accumulate_gradients


def _full_batch_grads_float64(model, loss_fn, inputs, targets):
    """The gradient of the full-batch mean loss, computed in float64 (a copy of the model)."""
    exact = copy.deepcopy(model).double()
    exact.zero_grad(set_to_none=True)
    targets = targets.double() if targets.is_floating_point() else targets
    loss_fn(exact(inputs.double()), targets).backward()
    return [p.grad.float() for p in exact.parameters()]


def _reference_accumulate(model, loss_fn, inputs, targets, micro_batch_size):
    for p, g in zip(model.parameters(), _full_batch_grads_float64(model, loss_fn, inputs, targets)):
        p.grad = g


def _run_accumulate(fn, case):
    model, loss_fn, inputs, targets, micro, stale = case.args
    if stale:  # gradients left over from an earlier step
        for p in model.parameters():
            p.grad = torch.ones_like(p)
    fn(model, loss_fn, inputs, targets, micro)
    return [p.grad for p in model.parameters()]


def _accumulate_cases(sizes, stale=False):
    def cases(gen):
        out = []
        for n, micro in sizes:
            out.append(Case(f"classification, {n} examples, micro_batch_size={micro}",
                            (mlp(gen, 6, 16, 4), F.cross_entropy, randn(gen, n, 6),
                             randint(gen, 4, n), micro, stale)))
            out.append(Case(f"regression, {n} examples, micro_batch_size={micro}",
                            (mlp(gen, 3, 8, 2), F.mse_loss, randn(gen, n, 3), randn(gen, n, 2),
                             micro, stale)))
        return out
    return cases


def _accumulate_with(divide):
    def accumulate_gradients(model, loss_fn, inputs, targets, micro_batch_size):
        model.zero_grad()
        chunks = list(zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)))
        for x, y in chunks:
            loss = loss_fn(model(x), y)
            (loss * {"none": 1.0, "count": 1.0 / len(chunks),
                     "size": len(x) / len(inputs)}[divide]).backward()
    return accumulate_gradients


def _accumulate_drop_last(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    n = len(inputs) // micro_batch_size * micro_batch_size
    for i in range(0, n, micro_batch_size):
        (loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size])
         * micro_batch_size / n).backward()


def _accumulate_keeps_stale(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


_ACCUMULATE_HINTS = (
    Hint(_accumulate_with("none"), "this matches adding up the micro-batch mean losses' "
         "gradients without dividing: that is K times the full-batch gradient for K "
         "micro-batches. Weight each micro-batch by its share of the examples."),
    Hint(_accumulate_with("count"), "this matches averaging the micro-batch means (dividing "
         "by the number of micro-batches): when the last micro-batch is smaller, its examples "
         "weigh more. Weight each micro-batch's mean loss by len(micro-batch) / len(inputs)."),
    Hint(_accumulate_drop_last, "this matches dropping the last, smaller micro-batch: every "
         "example counts."),
    Hint(_accumulate_keeps_stale, "this matches adding to gradients left over from before: "
         "clear them first (model.zero_grad())."),
)

register(
    Check("accumulate_gradients", "even_split",
          "equals one full-batch backward when micro-batches divide the batch",
          _accumulate_cases([(32, 8), (24, 12)]), _reference_accumulate, run=_run_accumulate,
          hints=_ACCUMULATE_HINTS),
    Check("accumulate_gradients", "last_smaller",
          "equals one full-batch backward when the last micro-batch is smaller",
          _accumulate_cases([(30, 8), (10, 4), (5, 16)]), _reference_accumulate,
          run=_run_accumulate, hints=_ACCUMULATE_HINTS, points=2),
    Check("accumulate_gradients", "clears_old_gradients",
          "starts from zero, not from gradients left over from an earlier step",
          _accumulate_cases([(20, 8)], stale=True), _reference_accumulate, run=_run_accumulate,
          hints=_ACCUMULATE_HINTS),
)

# --------------------------------------------------------------------------- train_with_accumulation


def _reference_train(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    """Large-batch training: one step per batch with the batch's exact (float64) gradient."""
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start:start + batch_size], targets[start:start + batch_size]
        grads = _full_batch_grads_float64(model, loss_fn, x, y)
        for p, g in zip(model.parameters(), grads):
            p.grad = g
        optimizer.step()


def _run_train(fn, case):
    model, loss_fn, inputs, targets, batch, micro, opt_name = case.args
    optimizer = (torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9) if opt_name == "momentum"
                 else torch.optim.SGD(model.parameters(), lr=0.2))
    fn(model, optimizer, loss_fn, inputs, targets, batch, micro)
    return [p.detach() for p in model.parameters()]


def _train_cases(gen):
    out = []
    for n, batch, micro, opt in [(64, 16, 4, "momentum"), (50, 20, 8, "sgd"), (90, 32, 5, "momentum")]:
        steps = math.ceil(n / batch)
        out.append(Case(f"classification, {n} examples, batch {batch} = micro-batches of {micro}, "
                        f"{steps} steps of SGD{' with momentum' if opt == 'momentum' else ''}",
                        (mlp(gen, 6, 16, 4), F.cross_entropy, randn(gen, n, 6), randint(gen, 4, n),
                         batch, micro, opt)))
    return out


def _train_step_per_micro_batch(model, optimizer, loss_fn, inputs, targets, batch_size,
                                micro_batch_size):
    for start in range(0, len(inputs), micro_batch_size):
        optimizer.zero_grad()
        loss_fn(model(inputs[start:start + micro_batch_size]),
                targets[start:start + micro_batch_size]).backward()
        optimizer.step()


def _train_one_step(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    _reference_train(model, optimizer, loss_fn, inputs, targets, len(inputs), micro_batch_size)


register(
    Check("train_with_accumulation", "matches_large_batch",
          "K optimizer steps with accumulated micro-batches = K steps of large-batch training",
          _train_cases, _reference_train, run=_run_train,
          hints=(Hint(_train_step_per_micro_batch, "this matches one optimizer step per "
                      "micro-batch (small-batch training); step once per batch, after "
                      "accumulating all its micro-batches."),
                 Hint(_train_one_step, "this matches one step on the whole dataset; take one "
                      "step per batch of batch_size examples.")), points=2),
)
