"""DynamicLossScaler: a dynamic loss scaler, trained side by side with torch.amp.GradScaler
(clean steps, overflows skipped and backed off, growth, unscale_ before clipping)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import mlp, randn
from primer.grading import Case, Check, Hint, register


def _reference_scaler(**kwargs):
    return torch.amp.GradScaler("cpu", **kwargs)


def _scaler_case(gen, label, steps, overflow=(), clip=None, optimizer="momentum", **scaler_kwargs):
    """A small seeded regression problem; `overflow` maps step -> 'inf', '-inf' or 'nan'."""
    model = mlp(gen, 6, 16, 3)
    which = {s: int(torch.randint(0, 4, (1,), generator=gen)) for s in overflow}
    if optimizer == "two groups":  # in the second group, which a scaler must check too
        which = {s: 2 + p % 2 for s, p in which.items()}
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
    if setup["optimizer"] == "two groups":
        # the first layer in a group of its own, the rest (and a parameter that never gets a
        # gradient: its .grad stays None) in another, with its own learning rate
        unused = torch.nn.Parameter(torch.zeros(3))
        opt = torch.optim.SGD([{"params": params[:2]}, {"params": params[2:] + [unused], "lr": 0.02}],
                              lr=0.05, momentum=0.9)
    else:
        opt = (torch.optim.SGD(params, lr=0.05, momentum=0.9) if setup["optimizer"] == "momentum"
               else torch.optim.AdamW(params, lr=1e-2))
    scaler = cls(**case.kwargs)
    scales, skipped, replaced = [], [], 0
    for step in range(setup["steps"]):
        opt.zero_grad()
        loss = F.mse_loss(model(setup["x"]), setup["y"])
        scaler.scale(loss).backward()
        if step in setup["overflow"]:
            with torch.no_grad():
                params[setup["param"][step]].grad.view(-1)[0] = float(setup["overflow"][step])
        grads = [p.grad for p in params]
        if setup["clip"] is not None:
            scaler.unscale_(opt)
            torch.nn.utils.clip_grad_norm_(params, setup["clip"])
        before = [p.detach().clone() for p in params]
        scaler.step(opt)
        scaler.update()
        replaced += sum(p.grad is not g for p, g in zip(params, grads))
        skipped.append(all(torch.equal(b, p.detach()) for b, p in zip(before, params)))
        scale = scaler.scale(torch.ones((), dtype=torch.float32))
        scales.append(float(scale) if isinstance(scale, (torch.Tensor, int, float)) else scale)
    return {"scale after each step": scales, "skipped steps": skipped,
            "final parameters": [p.detach() for p in params],
            "gradient tensors replaced by new ones (0: each divided in place)": replaced}


def _scaler_plain_cases(gen):
    return [
        _scaler_case(gen, "SGD with momentum, 8 clean steps, init_scale=2**16", 8,
                     growth_interval=1000),
        _scaler_case(gen, "AdamW, 6 clean steps, init_scale=1024", 6, optimizer="adamw",
                     init_scale=1024.0, growth_interval=1000),
        _scaler_case(gen, "two param groups, one parameter whose .grad is None, 5 clean steps", 5,
                     optimizer="two groups", init_scale=512.0, growth_interval=1000),
    ]


def _overflow_steps(gen, steps, count, first=1):
    picks = torch.randperm(steps - first, generator=gen)[:count] + first
    kinds = ["inf", "-inf", "nan"]
    return {int(s): kinds[i % 3] for i, s in enumerate(sorted(picks.tolist()))}


def _scaler_skip_cases(gen):
    return [
        _scaler_case(gen, "inf gradient at step 2", 6, {2: "inf"}, growth_interval=1000),
        # an inf before the NaN: checking only for inf and never checking at all differ here
        _scaler_case(gen, "inf gradient at step 1, NaN gradient at step 3", 6, {1: "inf", 3: "nan"},
                     growth_interval=1000),
        _scaler_case(gen, "overflows at random steps", 10, _overflow_steps(gen, 10, 3),
                     growth_interval=1000, backoff_factor=0.25),
        _scaler_case(gen, "two param groups, inf gradient in the second at step 2", 5,
                     {2: "inf"}, optimizer="two groups", growth_interval=1000),
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
    first_group_only = False
    detect = True  # look for inf/NaN in the gradients at all
    grow_late = False  # grows after growth_interval + 1 clean steps
    grow_every_step = False  # once the count reached growth_interval, grows at every clean step
    clear_found = True  # forget this step's overflow after update()
    update_in_step = False  # step() also updates the scale (then the user's update() again)
    multiply = False  # unscale_ multiplies the gradients by the scale
    in_place = True  # unscale_ divides p.grad in place (not p.grad = p.grad / scale)
    backoff_by_growth = False  # backs off by dividing by growth_factor
    count_overflows = False  # an overflow step counts toward growth_interval like a clean one
    reset_unscaled = True  # update() forgets that this step's gradients were unscaled

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self.s, self.g, self.b, self.interval = init_scale, growth_factor, backoff_factor, growth_interval
        self.clean, self.steps, self.found, self.unscaled = 0, 0, False, False

    def scale(self, loss):
        return loss * self.s

    def unscale_(self, optimizer):
        groups = optimizer.param_groups[:1] if self.first_group_only else optimizer.param_groups
        if not self.in_place:
            for group in groups:
                for p in group["params"]:
                    if p.grad is not None:
                        p.grad = p.grad * (1.0 / self.s)
        grads = [p.grad for group in groups for p in group["params"] if p.grad is not None]
        for g in grads:
            if self.unscale and self.in_place:
                g.mul_(self.s if self.multiply else 1.0 / self.s)
        bad = (lambda g: ~torch.isfinite(g)) if self.check_nan else torch.isinf
        self.found = (self.detect and any(bool(bad(g).any()) for g in grads)) or \
            (self.found and not self.clear_found)
        self.unscaled = True

    def step(self, optimizer):
        if not self.unscaled or self.unscale_in_step_always:
            self.unscale_(optimizer)
        if not (self.found and self.skip):
            optimizer.step()
        if self.update_in_step:
            found = self.found
            self.update()
            self.found = found

    def update(self):
        self.steps += 1
        if self.found:
            self.s = self.s / self.g if self.backoff_by_growth else self.s * self.b
            if self.reset_on_overflow and not self.count_overflows:
                self.clean = 0
        if not self.found or self.count_overflows:
            self.clean += 1
            grow = (self.clean % self.interval == 0) if self.consecutive else \
                (self.steps % self.interval == 0)
            if self.grow_late:
                grow = self.clean % (self.interval + 1) == 0
            if self.grow_every_step:
                grow = self.clean >= self.interval
            if grow:
                self.s *= self.g
        self.found = self.found and not self.clear_found
        self.unscaled = self.unscaled and not self.reset_unscaled


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
    Hint(_scaler_mistake(detect=False), "this matches never finding the inf/NaN gradients "
         "(checking the loss instead, or nothing): after unscaling, check every gradient with "
         "torch.isfinite, skip the step and back off when one is not finite."),
    Hint(_scaler_mistake(first_group_only=True), "this matches unscaling and checking only "
         "optimizer.param_groups[0]: go through every group's params."),
    Hint(_scaler_mistake(grow_late=True), "this matches growing after growth_interval + 1 "
         "clean steps (an off-by-one): grow when the count of clean steps reaches "
         "growth_interval, then restart the count."),
    Hint(_scaler_mistake(grow_every_step=True), "this matches growing at every clean step once "
         "the count reached growth_interval: restart the count of clean steps after growing."),
    Hint(_scaler_mistake(clear_found=False), "this matches remembering an overflow forever: "
         "the inf/NaN flag belongs to one step, so clear it in update() (every later step was "
         "skipped and backed off)."),
    Hint(_scaler_mistake(update_in_step=True), "this matches updating the scale inside step() "
         "as well as in update(): step() only unscales and steps; update() adjusts the scale, "
         "once per step."),
    Hint(_scaler_mistake(multiply=True), "this matches multiplying the gradients by the scale in "
         "unscale_(): they are already scale times too large, so divide them by it "
         "(p.grad.div_(scale))."),
    Hint(_scaler_mistake(in_place=False), "this matches replacing each gradient with a new "
         "tensor (p.grad = p.grad / scale): divide it in place, p.grad.div_(scale), as "
         "GradScaler does, so that whatever holds the gradient tensors sees them unscaled."),
    Hint(_scaler_mistake(backoff_by_growth=True), "this matches backing off by dividing by "
         "growth_factor: after an overflow multiply the scale by backoff_factor (the two "
         "differ when backoff_factor is not 1 / growth_factor)."),
    Hint(_scaler_mistake(count_overflows=True), "this matches counting an overflow step as a "
         "clean one: after an overflow, back off and restart the count of clean steps at 0; "
         "only clean steps count toward growth_interval."),
    Hint(_scaler_mistake(reset_unscaled=False), "this matches never clearing the \"already "
         "unscaled\" flag: from the second step on, step() neither unscales the gradients nor "
         "checks them. Clear it in update(), so that each step's gradients are unscaled once."),
)

register(
    Check("DynamicLossScaler", "no_overflow",
          "trains like torch.amp.GradScaler when nothing overflows (gradients unscaled in place)",
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
