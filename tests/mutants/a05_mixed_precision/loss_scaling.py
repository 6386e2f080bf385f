"""DynamicLossScaler: wrong and right learner implementations."""

import torch

from tests.mutants import alternative, mutant


class _Scaler:
    """Shared by the scaler mutants below; each overrides one piece with a mistake."""

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self.scale_value = init_scale
        self.growth_factor, self.backoff_factor = growth_factor, backoff_factor
        self.growth_interval = growth_interval
        self.good_steps, self.total_steps = 0, 0
        self.found_inf, self.unscaled = False, False

    def scale(self, loss):
        return loss * self.scale_value

    def _grads(self, optimizer):
        return [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]

    def _bad(self, g):
        return not bool(torch.isfinite(g).all())

    def unscale_(self, optimizer):
        for g in self._grads(optimizer):
            g.div_(self.scale_value)
        self.found_inf = any(self._bad(g) for g in self._grads(optimizer))
        self.unscaled = True

    def step(self, optimizer):
        if not self.unscaled:
            self.unscale_(optimizer)
        if not self.found_inf:
            optimizer.step()

    def update(self):
        if self.found_inf:
            self.scale_value *= self.backoff_factor
            self.good_steps = 0
        else:
            self.good_steps += 1
            if self.good_steps == self.growth_interval:
                self.scale_value *= self.growth_factor
                self.good_steps = 0
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", hint="scaled gradients", fails=("no_overflow",))
class ScalerNeverUnscales(_Scaler):
    def unscale_(self, optimizer):
        self.found_inf = any(self._bad(g) for g in self._grads(optimizer))
        self.unscaled = True


@mutant("DynamicLossScaler", hint="still steps", fails=("skips_overflow",))
class ScalerStepsOnOverflow(_Scaler):
    def step(self, optimizer):
        if not self.unscaled:
            self.unscale_(optimizer)
        optimizer.step()


@mutant("DynamicLossScaler", hint="only for inf", fails=("skips_overflow",))
class ScalerChecksOnlyInf(_Scaler):
    def _bad(self, g):
        return bool(torch.isinf(g).any())


@mutant("DynamicLossScaler", hint="not resetting", fails=("growth",))
class ScalerKeepsCountingAfterOverflow(_Scaler):
    def update(self):
        if self.found_inf:
            self.scale_value *= self.backoff_factor
        else:
            self.good_steps += 1
            if self.good_steps % self.growth_interval == 0:
                self.scale_value *= self.growth_factor
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", hint="since the start", fails=("growth",))
class ScalerGrowsOnGlobalSteps(_Scaler):
    def update(self):
        self.total_steps += 1
        if self.found_inf:
            self.scale_value *= self.backoff_factor
        elif self.total_steps % self.growth_interval == 0:
            self.scale_value *= self.growth_factor
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", fails=("growth",))
class ScalerGrowsEveryCleanStep(_Scaler):
    def update(self):
        self.scale_value *= self.backoff_factor if self.found_inf else self.growth_factor
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", fails=("skips_overflow",))
class ScalerNeverBacksOff(_Scaler):
    def update(self):
        self.backoff_factor = 1.0
        super().update()


@mutant("DynamicLossScaler", hint="unscaling twice", fails=("unscale_before_clipping",))
class ScalerUnscalesTwice(_Scaler):
    def step(self, optimizer):
        self.unscale_(optimizer)
        if not self.found_inf:
            optimizer.step()


@alternative("DynamicLossScaler")
class ScalerWithTensorState:
    """Keeps the scale as a float32 tensor and checks all gradients at once, like torch does."""

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self._scale = torch.tensor(init_scale, dtype=torch.float32)
        self.growth, self.backoff, self.interval = growth_factor, backoff_factor, growth_interval
        self.tracker = 0
        self.state = {}

    def scale(self, loss):
        return loss * self._scale

    def unscale_(self, optimizer):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        inv = self._scale.double().reciprocal().float()
        torch._foreach_mul_(grads, inv)
        finite = torch.stack([torch.isfinite(g).all() for g in grads]).all()
        self.state[id(optimizer)] = not bool(finite)

    def step(self, optimizer):
        if id(optimizer) not in self.state:
            self.unscale_(optimizer)
        if not self.state[id(optimizer)]:
            return optimizer.step()

    def update(self):
        found = any(self.state.values())
        self.state = {}
        if found:
            self._scale *= self.backoff
            self.tracker = 0
            return
        self.tracker += 1
        if self.tracker >= self.interval:
            self._scale *= self.growth
            self.tracker = 0


@alternative("DynamicLossScaler")
class ScalerPlain:
    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self.s = float(init_scale)
        self.growth_factor, self.backoff_factor = growth_factor, backoff_factor
        self.growth_interval = growth_interval
        self.clean_steps = 0
        self.overflow = None  # None: not unscaled yet in this step

    def scale(self, loss):
        return self.s * loss

    def unscale_(self, optimizer):
        self.overflow = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.grad /= self.s
                if torch.isnan(p.grad).any() or torch.isinf(p.grad).any():
                    self.overflow = True

    def step(self, optimizer):
        if self.overflow is None:
            self.unscale_(optimizer)
        if self.overflow:
            return None
        return optimizer.step()

    def update(self):
        if self.overflow:
            self.s = self.s * self.backoff_factor
            self.clean_steps = 0
        else:
            self.clean_steps = self.clean_steps + 1
            if self.clean_steps == self.growth_interval:
                self.s, self.clean_steps = self.s * self.growth_factor, 0
        self.overflow = None


@mutant("DynamicLossScaler", hint="only optimizer.param_groups[0]", fails=("no_overflow",))
class ScalerFirstGroupOnly(_Scaler):
    def _grads(self, optimizer):
        return [p.grad for p in optimizer.param_groups[0]["params"] if p.grad is not None]


@mutant("DynamicLossScaler", fails=("no_overflow",))
class ScalerForgetsNoneGradients(_Scaler):
    def _grads(self, optimizer):
        return [p.grad for g in optimizer.param_groups for p in g["params"]]


@mutant("DynamicLossScaler", hint="growth_interval + 1", fails=("growth",))
class ScalerGrowsOneStepLate(_Scaler):
    def update(self):
        if self.found_inf:
            self.scale_value *= self.backoff_factor
            self.good_steps = 0
        else:
            self.good_steps += 1
            if self.good_steps > self.growth_interval:
                self.scale_value *= self.growth_factor
                self.good_steps = 0
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", hint="restart the count of clean steps after growing", fails=("growth",))
class ScalerNeverRestartsAfterGrowth(_Scaler):
    def update(self):
        if self.found_inf:
            self.scale_value *= self.backoff_factor
            self.good_steps = 0
        else:
            self.good_steps += 1
            if self.good_steps >= self.growth_interval:
                self.scale_value *= self.growth_factor
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", hint="remembering an overflow forever", fails=("skips_overflow",))
class ScalerStickyOverflow(_Scaler):
    def unscale_(self, optimizer):
        before = self.found_inf
        super().unscale_(optimizer)
        self.found_inf = self.found_inf or before

    def update(self):
        found = self.found_inf
        super().update()
        self.found_inf = found


@mutant("DynamicLossScaler", hint="updating the scale inside step()", fails=("growth",))
class ScalerUpdatesInStep(_Scaler):
    def step(self, optimizer):
        super().step(optimizer)
        found = self.found_inf
        self.update()
        self.found_inf = found


@mutant("DynamicLossScaler", hint="never finding the inf/NaN", fails=("skips_overflow",))
class ScalerChecksTheLoss(_Scaler):
    def scale(self, loss):
        self.found_inf = not bool(torch.isfinite(loss))
        return loss * self.scale_value

    def unscale_(self, optimizer):
        for g in self._grads(optimizer):
            g.div_(self.scale_value)
        self.unscaled = True


@alternative("DynamicLossScaler")
class ScalerWithReciprocal:
    """Multiplies by a float32 1/scale like GradScaler, keeps the scale as a float32 tensor."""

    def __init__(self, init_scale=2.0**16, growth_factor=2.0, backoff_factor=0.5, growth_interval=2000):
        self._scale = torch.tensor(float(init_scale))
        self._growth, self._backoff, self._interval = growth_factor, backoff_factor, growth_interval
        self._clean, self._found, self._done = 0, False, False

    def scale(self, loss):
        return loss * self._scale

    def unscale_(self, optimizer):
        if self._done:
            return
        inv = self._scale.double().reciprocal().float()
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.mul_(inv)
                    self._found |= not bool(torch.isfinite(p.grad).all())
        self._done = True

    def step(self, optimizer):
        self.unscale_(optimizer)
        if not self._found:
            optimizer.step()

    def update(self):
        if self._found:
            self._scale = self._scale * self._backoff
            self._clean = 0
        else:
            self._clean += 1
            if self._clean == self._interval:
                self._scale, self._clean = self._scale * self._growth, 0
        self._found, self._done = False, False


@mutant("DynamicLossScaler", hint="multiplying the gradients by the scale", fails=("no_overflow",))
class ScalerUnscalesByMultiplying(_Scaler):
    def unscale_(self, optimizer):
        for g in self._grads(optimizer):
            g.mul_(self.scale_value)
        self.found_inf = any(self._bad(g) for g in self._grads(optimizer))
        self.unscaled = True


@mutant("DynamicLossScaler", hint="replacing each gradient with a new tensor", fails=("no_overflow",))
class ScalerReplacesGradients(_Scaler):
    def unscale_(self, optimizer):
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = p.grad / self.scale_value
        self.found_inf = any(self._bad(g) for g in self._grads(optimizer))
        self.unscaled = True


@mutant("DynamicLossScaler", hint="dividing by growth_factor", fails=("skips_overflow",))
class ScalerBacksOffByGrowthFactor(_Scaler):
    def update(self):
        if self.found_inf:
            self.scale_value /= self.growth_factor
            self.good_steps = 0
        else:
            self.good_steps += 1
            if self.good_steps == self.growth_interval:
                self.scale_value *= self.growth_factor
                self.good_steps = 0
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", hint="counting an overflow step as a clean one", fails=("growth",))
class ScalerCountsOverflowSteps(_Scaler):
    def update(self):
        if self.found_inf:
            self.scale_value *= self.backoff_factor
        self.good_steps += 1
        if self.good_steps >= self.growth_interval:
            self.scale_value *= self.growth_factor
            self.good_steps = 0
        self.found_inf, self.unscaled = False, False


@mutant("DynamicLossScaler", hint='"already unscaled" flag', fails=("no_overflow",))
class ScalerRemembersUnscaling(_Scaler):
    def update(self):
        unscaled = self.unscaled
        super().update()
        self.unscaled = unscaled
