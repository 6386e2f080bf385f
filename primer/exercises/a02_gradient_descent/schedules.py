"""lr_warmup_cosine, lr_warmup_linear, lr_warmup_constant_cooldown: learning-rate schedules
graded against torch.optim.lr_scheduler."""

from __future__ import annotations

import functools
import math
import warnings

import torch
from torch import nn
from torch.optim import lr_scheduler

from primer.exercises.a02_gradient_descent.cases import _int, _log_uniform, _rounded, _uniform
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- LR schedules
#
# The convention (stated in the notebook). `step` s = number of optimizer steps already taken,
# so lr(s) is the learning rate of update s (s = 0 is the first). W = warmup_steps,
# T = total_steps, C = cooldown_steps.
#   warmup, 0 ≤ s < W:   lr = max_lr·(s+1)/W          (lr(0) = max_lr/W, lr(W−1) = max_lr)
#   cosine, W ≤ s ≤ T:   lr = min_lr + (max_lr−min_lr)·(1 + cos(π(s−W)/(T−W)))/2
#   linear, W ≤ s ≤ T:   lr = max_lr + (min_lr−max_lr)·(s−W)/(T−W)
#   constant+cooldown:   lr = max_lr for W ≤ s ≤ T−C, then linear to min_lr at s = T
#   after the run, s > T: lr = min_lr
# The reference is torch.optim.lr_scheduler: LinearLR (warmup), then CosineAnnealingLR /
# LinearLR / ConstantLR+LinearLR, then ConstantLR(min_lr/max_lr), chained by SequentialLR and
# stepped on a dummy SGD optimizer; lr(s) is read from the optimizer after s scheduler steps.
# Torch's schedulers update the lr recursively in float64: measured against the closed form
# they agree to ≤ 1.1e-14 relative for T ≤ 1000. The tolerance rtol=1e-9 is far inside the
# smallest error of the mistakes graded here (≥ 1e-4 relative), and far outside rounding.

_SCHEDULE_RTOL, _SCHEDULE_ATOL = 1e-9, 1e-15


@functools.lru_cache(maxsize=64)
def _torch_schedule(kind, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps, length):
    W, T, C = warmup_steps, total_steps, cooldown_steps
    dummy = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=max_lr)
    schedulers, milestones = [], []
    if W > 0:
        schedulers.append(lr_scheduler.LinearLR(dummy, start_factor=1 / W, end_factor=1.0,
                                                total_iters=W - 1))
        milestones.append(W)
    end = min_lr / max_lr
    if kind == "cosine":
        schedulers.append(lr_scheduler.CosineAnnealingLR(dummy, T_max=T - W, eta_min=min_lr))
        milestones.append(T)
        schedulers.append(lr_scheduler.ConstantLR(dummy, factor=end, total_iters=length + 1))
    elif kind == "linear":
        schedulers.append(lr_scheduler.LinearLR(dummy, start_factor=1.0, end_factor=end,
                                                total_iters=T - W))
    elif kind == "constant_cooldown" and C == 0:  # no cooldown: max_lr until T−1, min_lr from T
        schedulers.append(lr_scheduler.ConstantLR(dummy, factor=1.0, total_iters=0))
        milestones.append(T)
        schedulers.append(lr_scheduler.ConstantLR(dummy, factor=end, total_iters=length + 1))
    elif kind == "constant_cooldown":
        schedulers.append(lr_scheduler.ConstantLR(dummy, factor=1.0, total_iters=0))
        milestones.append(T - C)
        schedulers.append(lr_scheduler.LinearLR(dummy, start_factor=1.0, end_factor=end,
                                                total_iters=C))
    else:
        raise ValueError(kind)
    schedule = (lr_scheduler.SequentialLR(dummy, schedulers, milestones=milestones)
                if len(schedulers) > 1 else schedulers[0])
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for _ in range(length):
            lrs.append(dummy.param_groups[0]["lr"])
            schedule.step()
    return tuple(lrs)


def _torch_lr(kind):
    def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
        length = max(step, total_steps) + 8
        return _torch_schedule(kind, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps,
                               length)[step]
    lr.__name__ = f"torch_lr_{kind}"
    return lr


def _schedule_case(gen, label, steps, **hyper):
    return Case(label, (tuple(steps),), hyper)


def _run_schedule(fn, case):
    (steps,) = case.args
    return {f"step {s}": fn(s, **case.kwargs) for s in steps}


def _random_schedule(gen, cooldown=False):
    W = _int(gen, 2, 30)
    T = W + _int(gen, 20, 300)
    max_lr = _rounded(_log_uniform(gen, 1e-4, 1.0))
    hyper = dict(max_lr=max_lr, min_lr=_rounded(max_lr * _uniform(gen, 0.01, 0.2)),
                 warmup_steps=W, total_steps=T)
    if cooldown:
        hyper["cooldown_steps"] = _int(gen, 1, T - W)
    return hyper


def _fixed_schedules(cooldown=False):
    extra = (lambda c: {"cooldown_steps": c}) if cooldown else (lambda c: {})
    return [
        dict(max_lr=1.0, min_lr=0.1, warmup_steps=5, total_steps=20, **extra(6)),
        dict(max_lr=3e-4, min_lr=3e-5, warmup_steps=100, total_steps=1000, **extra(200)),
        dict(max_lr=0.5, min_lr=0.0, warmup_steps=1, total_steps=10, **extra(9)),
    ]


def _hyper_label(h):
    return ", ".join(f"{k}={v}" for k, v in h.items())


def _warmup_cases(cooldown=False):
    def cases(gen):
        out = []
        for h in [*_fixed_schedules(cooldown), _random_schedule(gen, cooldown)]:
            W = h["warmup_steps"]
            out.append(_schedule_case(gen, f"{_hyper_label(h)}; steps 0..{W}", range(W + 1), **h))
        return out
    return cases


def _decay_cases(cooldown=False):
    def cases(gen):
        out = []
        schedules = [*_fixed_schedules(cooldown), _random_schedule(gen, cooldown)]
        no_warmup = dict(max_lr=0.1, min_lr=0.01, warmup_steps=0, total_steps=12)
        extra = []
        if cooldown:
            no_warmup["cooldown_steps"] = 4
            extra = [dict(max_lr=0.1, min_lr=0.01, warmup_steps=3, total_steps=12,
                          cooldown_steps=0)]
        for h in [*schedules, no_warmup, *extra]:
            W, T = h["warmup_steps"], h["total_steps"]
            out.append(_schedule_case(gen, f"{_hyper_label(h)}; steps {W}..{T + 2}",
                                      range(W, T + 3), **h))
        return out
    return cases


def _closed_form(warmup="plus_one", decay_end=0, hold=True, use_min=True, hold_from_end=False,
                 progress_from_zero=False, cooldown_shift=0, no_cooldown_holds_max=False,
                 min_from=None, warmup_through_W=False, rising=False, cooldown_extra=0):
    """Closed-form schedules with switches for the known mistakes (used as hints):
    `warmup` "from_zero" is max_lr·s/W, "nanogpt" is max_lr·(s+1)/(W+1); `decay_end` ends the
    decay that many steps early (held at min_lr from there, or only after total_steps with
    `hold_from_end`); `progress_from_zero` uses p = s/T; `cooldown_shift` moves the start of
    the cooldown; `no_cooldown_holds_max` gives max_lr at s = T when cooldown_steps = 0;
    `min_from` returns min_lr from s = T ("T") or from s = T + 1 ("T+1") whatever the decay
    gives; `warmup_through_W` uses the warmup formula at s = W too; `rising` decays with 1 − p
    instead of p; `cooldown_extra` spreads the cooldown over C + cooldown_extra steps."""
    def shape(kind):
        def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
            W, T = warmup_steps, total_steps - decay_end
            floor = min_lr if use_min else 0.0
            if step < W or (warmup_through_W and step == W > 0):  # (W = 0: _dividing_by's)
                if warmup == "nanogpt":
                    return max_lr * (step + 1) / (W + 1)
                return max_lr * ((step + 1) / W if warmup == "plus_one" else step / W)
            if min_from is not None and step >= T + (min_from == "T+1"):
                return min_lr
            if step > (total_steps if hold_from_end else T) and hold:
                return floor
            if kind == "cosine":
                p = step / T if progress_from_zero else (step - W) / (T - W)
                p = 1 - p if rising else p
                return floor + (max_lr - floor) * (1 + math.cos(math.pi * p)) / 2
            if kind == "linear":
                p = step / T if progress_from_zero else (step - W) / (T - W)
                p = 1 - p if rising else p
                return max_lr + (floor - max_lr) * p
            if cooldown_steps == 0:
                return max_lr if step < T or no_cooldown_holds_max else floor
            start = T - cooldown_steps + cooldown_shift
            if step <= start:
                return max_lr
            return max_lr + (floor - max_lr) * (step - start) / (T - start + cooldown_extra)
        return lr
    return shape


def _dividing_by(divisor, floats, lr_fn):
    """The mistake: a division by warmup_steps ("W") or cooldown_steps ("C") made even when it
    is 0 (ZeroDivisionError; `floats`: Python's "float division by zero" message)."""
    def lr(step, *, max_lr, min_lr, warmup_steps, total_steps, cooldown_steps=0):
        by = warmup_steps if divisor == "W" else cooldown_steps
        if divisor == "W" or step >= warmup_steps:
            (float(step + 1) if floats else step + 1) / by
        return lr_fn(step, max_lr=max_lr, min_lr=min_lr, warmup_steps=warmup_steps,
                     total_steps=total_steps, cooldown_steps=cooldown_steps)
    return lr


def _division_hints(kind):
    """One per message of the ZeroDivisionError (the learner's error is matched by its first
    line)."""
    correct = _closed_form()(kind)
    no_warmup = ("this matches dividing by warmup_steps when it is 0: with warmup_steps = 0 "
                 "there is no warmup, so compute (s + 1)/W only for s < W (the decay starts at "
                 "s = 0 with max_lr).")
    hints = [Hint(_dividing_by("W", floats, correct), no_warmup) for floats in (0, 1)]
    if kind == "constant_cooldown":
        hints += [Hint(_dividing_by("C", floats, correct), "this matches dividing by "
                       "cooldown_steps when it is 0: with cooldown_steps = 0 there is no "
                       "cooldown, lr = max_lr until s = T, where it drops to min_lr; divide by C "
                       "only when C > 0.") for floats in (0, 1)]
    return tuple(hints)


def _no_min_hints(kind):
    """Decaying to 0, whatever is returned from total_steps on."""
    message = ("this matches decaying to 0 instead of min_lr: the decay ends at min_lr, "
               "lr = min_lr + (max_lr − min_lr)·(...).")
    return tuple(Hint(_closed_form(use_min=False, min_from=start)(kind), message)
                 for start in (None, "T", "T+1"))


def _schedule_hints(kind):
    early = "reaches min_lr" if kind != "constant_cooldown" else "ends its cooldown"
    return (
        Hint(_closed_form(warmup="from_zero")(kind), "this matches a warmup that starts at 0, "
             "lr = max_lr·s/W. In this notebook's convention update 0 already gets max_lr/W: "
             "lr = max_lr·(s+1)/W, reaching max_lr at s = W−1."),
        Hint(_closed_form(decay_end=1)(kind), f"this matches a schedule that {early} one step "
             "early, at s = T−1; it should reach min_lr exactly at s = total_steps."),
        Hint(_closed_form(hold=False)(kind), "after total_steps the learning rate should stay "
             "at min_lr."),
        *_no_min_hints(kind),
        Hint(_closed_form(warmup="nanogpt")(kind), "this matches a warmup of max_lr·(s+1)/(W+1) "
             "(nanoGPT's); here lr = max_lr·(s+1)/W, so that lr(W−1) = max_lr."),
        Hint(_closed_form(warmup_through_W=True)(kind), "this matches the warmup formula used at "
             "s = W too (s <= W), which gives max_lr·(W+1)/W there; the warmup is s < W, and "
             "at s = W the learning rate is max_lr."),
        *_division_hints(kind),
        *_shape_hints(kind),
    )


def _shape_hints(kind):
    if kind == "constant_cooldown":
        return (
            Hint(_closed_form(cooldown_shift=1)(kind), "this matches a cooldown that starts one "
                 "step late (lr = max_lr still at s = T − C + 1); it starts at s = T − C with "
                 "max_lr and falls linearly over C steps to min_lr at s = T."),
            Hint(_closed_form(cooldown_shift=-1)(kind), "this matches a cooldown that starts one "
                 "step early (at s = T − C − 1); it starts at s = T − C with max_lr and falls "
                 "linearly over C steps to min_lr at s = T."),
            Hint(_closed_form(no_cooldown_holds_max=True)(kind), "this matches max_lr at "
                 "s = total_steps when cooldown_steps = 0; with no cooldown the learning rate "
                 "drops to min_lr at s = T (lr(T) is min_lr in every schedule)."),
            Hint(_closed_form(cooldown_extra=1, min_from="T")(kind), "this matches a cooldown "
                 "spread over C + 1 steps (divided by cooldown_steps + 1); it falls from max_lr "
                 "at s = T − C to min_lr at s = T in C steps: "
                 "lr = max_lr + (min_lr − max_lr)·(s − (T − C))/C."),
        )
    return (
        Hint(_closed_form(progress_from_zero=True)(kind), "this matches measuring the decay's "
             "progress as s/T from step 0; it starts after the warmup: p = (s − W)/(T − W)."),
        Hint(_closed_form(decay_end=1, hold_from_end=True)(kind), "this matches dividing by "
             "T − W − 1; the decay takes T − W steps, p = (s − W)/(T − W), and reaches min_lr "
             "exactly at s = total_steps."),
        Hint(_closed_form(rising=True)(kind), "this matches a decay that rises, from min_lr at "
             "s = W to max_lr at s = T; it falls from max_lr to min_lr: " + (
                 "lr = min_lr + (max_lr − min_lr)·(1 + cos(π·p))/2, which is max_lr at p = 0."
                 if kind == "cosine" else "lr = max_lr + (min_lr − max_lr)·p.")),
    )


_SCHEDULE_WHAT = {
    "cosine": "linear warmup then cosine decay to min_lr at total_steps",
    "linear": "linear warmup then linear decay to min_lr at total_steps",
    "constant_cooldown": "linear warmup, constant max_lr, then a linear cooldown to min_lr "
                         "at total_steps",
}

for _kind, _name in [("cosine", "lr_warmup_cosine"), ("linear", "lr_warmup_linear"),
                     ("constant_cooldown", "lr_warmup_constant_cooldown")]:
    _cool = _kind == "constant_cooldown"
    register(
        Check(_name, "warmup", "warmup lr(s) = max_lr·(s+1)/warmup_steps, as torch's LinearLR "
              "gives (steps 0 to warmup_steps)", _warmup_cases(_cool), _torch_lr(_kind),
              run=_run_schedule, rtol=_SCHEDULE_RTOL, atol=_SCHEDULE_ATOL,
              hints=_schedule_hints(_kind)),
        Check(_name, "decay", f"{_SCHEDULE_WHAT[_kind]}, as torch.optim.lr_scheduler gives "
              "(from warmup_steps to past total_steps)", _decay_cases(_cool), _torch_lr(_kind),
              run=_run_schedule, rtol=_SCHEDULE_RTOL, atol=_SCHEDULE_ATOL,
              hints=_schedule_hints(_kind)),
    )
