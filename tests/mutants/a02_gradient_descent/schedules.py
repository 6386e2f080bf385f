"""Assignment 02, the learning-rate schedules: mistakes a learner might make, and correct answers
written differently."""

import math

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- LR schedules
#
# Mutants of the three schedules are built from one parameterised closed form; each has the
# learner-facing signature of its exercise.

_SIGNATURES = {
    "lr_warmup_cosine": "cosine",
    "lr_warmup_linear": "linear",
    "lr_warmup_constant_cooldown": "constant",
}


def _schedule(kind, *, warmup="plus_one", end_shift=0, hold=True, floor_zero=False,
              cosine_shift=0):
    def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
        W, T = warmup_steps, total_steps - end_shift
        floor = 0.0 if floor_zero else min_lr
        if step < W:
            if warmup == "plus_one":
                return max_lr * (step + 1) / W
            if warmup == "from_zero":
                return max_lr * step / W
            return max_lr * (step + 1) / (W + 1)
        if step > T and hold:
            return floor
        if kind == "cosine":
            p = (step - W + cosine_shift) / (T - W)
            return floor + (max_lr - floor) * 0.5 * (1 + math.cos(math.pi * p))
        start = W if kind == "linear" else T - cooldown_steps
        if step <= start:
            return max_lr
        return max_lr - (max_lr - floor) * (step - start) / (T - start)
    return lr


def _register_schedule_mutants():
    for exercise, kind in _SIGNATURES.items():
        variants = [
            ("warmup_from_zero", "starts at 0", ("warmup",), dict(warmup="from_zero")),
            ("warmup_over_w_plus_one", None, ("warmup",), dict(warmup="w_plus_one")),
            ("ends_one_step_early", "one step early", ("decay",), dict(end_shift=1)),
            ("does_not_hold_min", "stay at min_lr", ("decay",), dict(hold=False)),
            ("decays_to_zero", "decaying to 0", ("decay",), dict(floor_zero=True)),
        ]
        if kind == "cosine":
            variants.append(("cosine_shifted", None, ("decay",), dict(cosine_shift=1)))
        for name, hint, fails, options in variants:
            fn = _schedule(kind, **options)
            fn.__name__ = f"{exercise}_{name}"
            mutant(exercise, hint=hint, fails=fails)(fn)


_register_schedule_mutants()


@alternative("lr_warmup_cosine")
def cosine_clamped(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if warmup_steps and step < warmup_steps:
        return (step + 1) * max_lr / warmup_steps
    t = min(step, total_steps) - warmup_steps
    span = total_steps - warmup_steps
    return 0.5 * (max_lr + min_lr) + 0.5 * (max_lr - min_lr) * math.cos(math.pi * t / span)


@alternative("lr_warmup_cosine")
def cosine_as_tensor(step, *, max_lr, min_lr, warmup_steps, total_steps):
    """Returns 0-dimensional float64 tensors instead of Python floats."""
    if step < warmup_steps:
        return torch.tensor((step + 1) / warmup_steps * max_lr, dtype=torch.float64)
    p = torch.tensor(min(step, total_steps) - warmup_steps, dtype=torch.float64)
    p = p / (total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * (1 + torch.cos(math.pi * p)) / 2


@alternative("lr_warmup_linear")
def linear_interpolated(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    frac = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return (1 - frac) * max_lr + frac * min_lr


@alternative("lr_warmup_constant_cooldown")
def constant_cooldown_with_min(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:  # also with cooldown_steps = 0: min_lr from s = T on
        return min_lr
    remaining = total_steps - step  # steps left until the end of the run
    if remaining >= cooldown_steps:
        return max_lr
    return min_lr + (max_lr - min_lr) * remaining / cooldown_steps


# --------------------------------------------------------------------------- added with the hints
# of the one-hint rule (appended after the mutants above).


def _closed(kind, *, warmup="plus_one", progress_from_zero=False, span_shift=0, cool_shift=0,
            zero_cooldown_max=False):
    def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
        W, T, C = warmup_steps, total_steps, cooldown_steps
        if step < W:
            return max_lr * (step + 1) / (W + 1 if warmup == "nanogpt" else W)
        if step > T:
            return min_lr
        if kind in ("cosine", "linear"):
            p = step / T if progress_from_zero else (step - W) / (T - W - span_shift)
            if kind == "cosine":
                return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * p)) / 2
            return max_lr + (min_lr - max_lr) * p
        start = T - C + cool_shift
        if step <= start:
            return max_lr if (step < T or zero_cooldown_max) else min_lr
        return max_lr + (min_lr - max_lr) * (step - start) / (T - start)
    return lr


def _register_more_schedule_mutants():
    for exercise, kind in _SIGNATURES.items():
        variants = [("warmup_nanogpt", "nanoGPT", ("warmup",), dict(warmup="nanogpt"))]
        if kind == "constant":
            variants += [
                ("cooldown_starts_late", "starts one step late", ("decay",), dict(cool_shift=1)),
                ("cooldown_starts_early", "starts one step early", ("decay",),
                 dict(cool_shift=-1)),
                ("no_cooldown_keeps_max", "cooldown_steps = 0", ("decay",),
                 dict(zero_cooldown_max=True)),
            ]
        else:
            variants += [
                ("progress_from_step_zero", "s/T from step 0", ("warmup", "decay"),
                 dict(progress_from_zero=True)),
                ("span_one_short", "T − W − 1", ("decay",), dict(span_shift=1)),
            ]
        for name, hint, fails, options in variants:
            fn = _closed(kind, **options)
            fn.__name__ = f"{exercise}_{name}"
            mutant(exercise, hint=hint, fails=fails)(fn)


_register_more_schedule_mutants()


@alternative("lr_warmup_cosine")
def cosine_sin_squared(step, *, max_lr, min_lr, warmup_steps, total_steps):
    """(1 + cos πp)/2 written as 1 − sin²(πp/2)."""
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    p = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return max_lr - (max_lr - min_lr) * math.sin(math.pi * p / 2) ** 2


@alternative("lr_warmup_constant_cooldown")
def constant_cooldown_by_min(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    into_cooldown = step - (total_steps - cooldown_steps)
    if into_cooldown <= 0:
        return max_lr
    return max_lr - (max_lr - min_lr) * into_cooldown / cooldown_steps


# --------------------------------------------------------------------------- added with the hints
# for decaying to 0 with min_lr from T on, s <= W, a division by W or C = 0, a rising decay, a
# cooldown over C + 1 steps (blind testers' answers, ported).


@mutant("lr_warmup_cosine", hint="decaying to 0 instead of min_lr", fails=("decay",))
def cosine_to_zero_then_min(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    p = (step - warmup_steps) / (total_steps - warmup_steps)
    return 0.5 * max_lr * (1 + math.cos(math.pi * p))


@mutant("lr_warmup_linear", hint="decaying to 0 instead of min_lr", fails=("decay",))
def linear_to_zero_min_after_end(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step > total_steps:
        return min_lr
    return max_lr * (total_steps - step) / (total_steps - warmup_steps)


@mutant("lr_warmup_constant_cooldown", hint="decaying to 0 instead of min_lr", fails=("decay",))
def cooldown_to_zero(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    start = total_steps - cooldown_steps
    return max_lr if step <= start else max_lr * (1 - (step - start) / cooldown_steps)


@mutant("lr_warmup_cosine", hint="used at s = W too", fails=("warmup",))
def cosine_warmup_includes_W(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step <= warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    p = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * p)) / 2


@mutant("lr_warmup_cosine", hint="dividing by warmup_steps when it is 0", fails=("decay",))
def cosine_divides_by_zero_warmup(step, *, max_lr, min_lr, warmup_steps, total_steps):
    warm = min(1.0, (step + 1) / warmup_steps)
    if step < warmup_steps:
        return max_lr * warm
    p = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return min_lr + (max_lr - min_lr) * (1 + math.cos(math.pi * p)) / 2


@mutant("lr_warmup_linear", hint="dividing by warmup_steps when it is 0", fails=("decay",))
def linear_warmup_factor_first(step, *, max_lr, min_lr, warmup_steps, total_steps):
    warm = max_lr * (step + 1) / warmup_steps
    if step < warmup_steps:
        return warm
    p = min(1.0, (step - warmup_steps) / (total_steps - warmup_steps))
    return max_lr + (min_lr - max_lr) * p


@mutant("lr_warmup_cosine", hint="a decay that rises", fails=("warmup",))
def cosine_one_minus_cos(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    p = (step - warmup_steps) / (total_steps - warmup_steps)
    return min_lr + (max_lr - min_lr) * (1 - math.cos(math.pi * p)) / 2


@mutant("lr_warmup_linear", hint="a decay that rises", fails=("warmup",))
def linear_rises(step, *, max_lr, min_lr, warmup_steps, total_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    return min_lr + (max_lr - min_lr) * (step - warmup_steps) / (total_steps - warmup_steps)


@mutant("lr_warmup_constant_cooldown", hint="dividing by cooldown_steps when it is 0",
        fails=("decay",))
def cooldown_divides_by_zero(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    p = max(0.0, (step - (total_steps - cooldown_steps)) / cooldown_steps)
    return max_lr + (min_lr - max_lr) * p


@mutant("lr_warmup_constant_cooldown", hint="spread over C + 1 steps", fails=("decay",))
def cooldown_over_c_plus_one(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= total_steps:
        return min_lr
    start = total_steps - cooldown_steps
    if cooldown_steps == 0 or step <= start:
        return max_lr
    return max_lr + (min_lr - max_lr) * (step - start) / (cooldown_steps + 1)


@alternative("lr_warmup_constant_cooldown")
def constant_cooldown_np_interp(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps):
    import numpy as np

    W, T, C = warmup_steps, total_steps, cooldown_steps
    if step < W:
        return max_lr * (step + 1) / W
    if step >= T:
        return min_lr
    return float(np.interp(step, [W, T - C, T], [max_lr, max_lr, min_lr])) if C else max_lr

