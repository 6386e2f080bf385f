"""Assignment 05: mistakes a learner might make, and correct answers written differently."""

import math
import warnings

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- float_format
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


# --------------------------------------------------------------------------- round_to_bfloat16


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


# --------------------------------------------------------------------------- mixed_precision_bytes_per_param


def _size(dtype):
    return torch.empty((), dtype=dtype).element_size()


@mutant("mixed_precision_bytes_per_param", hint="already float32")
def bytes_master_always(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    states = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]
    p = _size(param_dtype)
    return 2 * p + (4 + 4 * states if master_weights else p * states)


@mutant("mixed_precision_bytes_per_param", hint="one tensor in param_dtype")
def bytes_without_grads(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    states = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]
    p = _size(param_dtype)
    master = master_weights and param_dtype != torch.float32
    return p + 4 * master + (4 if master_weights else p) * states


@mutant("mixed_precision_bytes_per_param", hint="state in param_dtype")
def bytes_state_in_param_dtype(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    states = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]
    p = _size(param_dtype)
    return 2 * p + 4 * (master_weights and param_dtype != torch.float32) + p * states


@mutant("mixed_precision_bytes_per_param", hint="one state tensor", fails=("adam",))
def bytes_adam_one_state(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    states = {"sgd": 0, "momentum": 1, "adam": 1, "adamw": 1}[optimizer]
    p = _size(param_dtype)
    master = master_weights and param_dtype != torch.float32
    return 2 * p + 4 * master + (4 if master_weights else p) * states


@mutant("mixed_precision_bytes_per_param")
def bytes_always_sixteen(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    return 16


@alternative("mixed_precision_bytes_per_param")
def bytes_by_table(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    low = {torch.float32: 4, torch.bfloat16: 2, torch.float16: 2}[param_dtype]
    table = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
    if master_weights:
        weights = low + low + (0 if low == 4 else 4)
        return weights + 4 * table[optimizer]
    return low * (2 + table[optimizer])


# --------------------------------------------------------------------------- DynamicLossScaler


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


# --------------------------------------------------------------------------- fp8_quantize


@mutant("fp8_quantize", hint="without clamping", fails=("delayed_amax",))
def fp8_no_clamp(x, dtype=torch.float8_e4m3fn, amax=None):
    amax = x.abs().max() if amax is None else amax
    scale = amax / torch.finfo(dtype).max
    return (x / scale).to(dtype), scale


@mutant("fp8_quantize", hint="without scaling", fails=("values", "error_bound"))
def fp8_no_scaling(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    return x.clamp(-fmax, fmax).to(dtype), torch.tensor(1.0)


@mutant("fp8_quantize", hint="finfo.max / amax", fails=("values",))
def fp8_returns_inverse_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else amax
    inv = fmax / amax
    return (x * inv).clamp(-fmax, fmax).to(dtype), inv


@mutant("fp8_quantize", hint="ignoring the `amax`", fails=("delayed_amax",))
def fp8_ignores_given_amax(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    scale = x.abs().max() / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype), scale


@mutant("fp8_quantize", fails=("values",))
def fp8_always_e4m3(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = 448.0
    amax = x.abs().max() if amax is None else amax
    scale = amax / fmax
    return (x / scale).clamp(-fmax, fmax).to(torch.float8_e4m3fn), scale


@mutant("fp8_quantize", fails=("values",))
def fp8_fake_quantized_float32(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    amax = x.abs().max() if amax is None else amax
    scale = amax / fmax
    return (x / scale).clamp(-fmax, fmax).to(dtype).float(), scale


@alternative("fp8_quantize")
def fp8_with_python_scale(x, dtype=torch.float8_e4m3fn, amax=None):
    info = torch.finfo(dtype)
    a = float(x.abs().max() if amax is None else amax)
    scale = torch.tensor(a / info.max, dtype=torch.float32)
    q = torch.clip(x / scale, min=-info.max, max=info.max).to(dtype)
    return q, scale


@alternative("fp8_quantize")
def fp8_with_where(x, dtype=torch.float8_e4m3fn, amax=None):
    fmax = torch.finfo(dtype).max
    if amax is None:
        amax = torch.amax(torch.abs(x))
    scale = amax.float() / fmax
    y = x.div(scale)
    y = torch.where(y > fmax, fmax, torch.where(y < -fmax, -fmax, y))
    return y.to(dtype), scale.reshape(1)


# --------------------------------------------------------------------------- fp8_dequantize


@mutant("fp8_dequantize", hint="dividing by the scale")
def fp8_dequantize_divides(q, scale):
    return q.float() / scale


@mutant("fp8_dequantize")
def fp8_dequantize_to_bfloat16(q, scale):
    return q.to(torch.bfloat16) * scale.to(torch.bfloat16)


@alternative("fp8_dequantize")
def fp8_dequantize_with_item(q, scale):
    return q.to(dtype=torch.float32).mul(float(scale))


# --------------------------------------------------------------------------- accumulate_gradients


@mutant("accumulate_gradients", hint="without dividing", fails=("even_split", "last_smaller"))
def accumulate_no_division(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for i in range(0, len(inputs), micro_batch_size):
        loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size]).backward()


@mutant("accumulate_gradients", hint="averaging the micro-batch means", fails=("last_smaller",))
def accumulate_mean_of_means(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    k = math.ceil(len(inputs) / micro_batch_size)
    for i in range(0, len(inputs), micro_batch_size):
        (loss_fn(model(inputs[i:i + micro_batch_size]), targets[i:i + micro_batch_size]) / k).backward()


@mutant("accumulate_gradients", hint="dropping the last", fails=("last_smaller",))
def accumulate_drop_last(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    k = len(inputs) // micro_batch_size
    for i in range(k):
        sl = slice(i * micro_batch_size, (i + 1) * micro_batch_size)
        (loss_fn(model(inputs[sl]), targets[sl]) / k).backward()


@mutant("accumulate_gradients", hint="left over", fails=("clears_old_gradients",))
def accumulate_without_zero_grad(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@mutant("accumulate_gradients", fails=("even_split",))
def accumulate_keeps_only_last(model, loss_fn, inputs, targets, micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        model.zero_grad()
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@alternative("accumulate_gradients")
def accumulate_with_autograd_grad(model, loss_fn, inputs, targets, micro_batch_size):
    params = list(model.parameters())
    total = [torch.zeros_like(p) for p in params]
    n = inputs.shape[0]
    for start in range(0, n, micro_batch_size):
        x, y = inputs[start:start + micro_batch_size], targets[start:start + micro_batch_size]
        grads = torch.autograd.grad(loss_fn(model(x), y), params)
        for t, g in zip(total, grads):
            t.add_(g, alpha=x.shape[0] / n)
    for p, t in zip(params, total):
        p.grad = t


@alternative("accumulate_gradients")
def accumulate_sum_reduction(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad(set_to_none=True)
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        loss = loss_fn(model(x), y) * x.shape[0]  # the micro-batch's sum of losses
        (loss / inputs.shape[0]).backward()


# --------------------------------------------------------------------------- train_with_accumulation


def _accumulate(model, loss_fn, inputs, targets, micro_batch_size):
    model.zero_grad()
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        (loss_fn(model(x), y) * len(x) / len(inputs)).backward()


@mutant("train_with_accumulation", hint="one optimizer step per micro-batch")
def train_steps_every_micro_batch(model, optimizer, loss_fn, inputs, targets, batch_size,
                                  micro_batch_size):
    for x, y in zip(inputs.split(micro_batch_size), targets.split(micro_batch_size)):
        optimizer.zero_grad()
        loss_fn(model(x), y).backward()
        optimizer.step()


@mutant("train_with_accumulation", hint="one step on the whole dataset")
def train_one_big_step(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    _accumulate(model, loss_fn, inputs, targets, micro_batch_size)
    optimizer.step()


@mutant("train_with_accumulation")
def train_skips_last_batch(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for start in range(0, len(inputs) - batch_size + 1, batch_size):
        _accumulate(model, loss_fn, inputs[start:start + batch_size],
                    targets[start:start + batch_size], micro_batch_size)
        optimizer.step()


@alternative("train_with_accumulation")
def train_with_split(model, optimizer, loss_fn, inputs, targets, batch_size, micro_batch_size):
    for x, y in zip(inputs.split(batch_size), targets.split(batch_size)):
        optimizer.zero_grad()
        _accumulate(model, loss_fn, x, y, micro_batch_size)
        optimizer.step()
