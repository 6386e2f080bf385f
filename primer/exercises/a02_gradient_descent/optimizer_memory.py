"""optimizer_state_bytes and training_bytes_per_param: the memory an optimizer's state, and
training as a whole, take per parameter."""

from __future__ import annotations

import torch
from torch import nn

from primer.exercises._common import seeded
from primer.exercises.a02_gradient_descent.adam import _AdamLike
from primer.exercises.a02_gradient_descent.cases import _int
from primer.grading import Case, Check, Hint, register

# --------------------------------------------------------------------------- optimizer memory


def _reference_state_bytes(optimizer) -> int:
    """Bytes of every tensor in the optimizer's per-parameter state (the step counters too)."""
    return sum(t.nbytes for state in optimizer.state_dict()["state"].values()
               for t in state.values() if isinstance(t, torch.Tensor))


def _stepped(gen, make, dtype=torch.float32, widths=(8, 32, 4), freeze_first=False, steps=1):
    with seeded(gen):
        model = nn.Sequential(nn.Linear(widths[0], widths[1]), nn.Tanh(),
                              nn.Linear(widths[1], widths[2])).to(dtype)
        x = torch.randn(5, widths[0], dtype=dtype)
    if freeze_first:
        model[0].requires_grad_(False)
    optimizer = make(model.parameters())
    for _ in range(steps):
        optimizer.zero_grad()
        model(x).square().mean().backward()
        optimizer.step()
    return optimizer


def _state_cases(gen):
    w = (8, _int(gen, 16, 64), 4)
    return [
        Case(f"SGD(momentum=0.9), MLP {w}, float32",
             (_stepped(gen, lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9), widths=w),)),
        Case(f"Adam, MLP {w}, float32", (_stepped(gen, torch.optim.Adam, widths=w),)),
        Case("AdamW(amsgrad=True), float32, 3 steps",
             (_stepped(gen, lambda ps: torch.optim.AdamW(ps, amsgrad=True), steps=3),)),
        Case("RMSprop(momentum=0.9, centered=True), float32",
             (_stepped(gen, lambda ps: torch.optim.RMSprop(ps, momentum=0.9, centered=True)),)),
    ]


def _state_edge_cases(gen):
    return [
        Case("Adam before its first step (state is created lazily)",
             (_stepped(gen, torch.optim.Adam, steps=0),)),
        Case("SGD without momentum (keeps no state)",
             (_stepped(gen, lambda ps: torch.optim.SGD(ps, lr=0.1)),)),
        Case("Adam on a float64 model", (_stepped(gen, torch.optim.Adam, dtype=torch.float64),)),
        Case("Adam on a bfloat16 model", (_stepped(gen, torch.optim.Adam, dtype=torch.bfloat16),)),
        Case("Adam with the first layer frozen (no gradient, so no state)",
             (_stepped(gen, torch.optim.Adam, freeze_first=True),)),
        Case("an Adam written like yours: state['t'] is a Python int (not a tensor), float64",
             (_stepped(gen, _AdamLike, dtype=torch.float64),)),
    ]


def _state_bytes_without_step(optimizer):
    return sum(t.nbytes for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor) and t.dim() > 0)


def _state_numel(optimizer):
    return sum(t.numel() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def _state_four_bytes(optimizer):
    return sum(4 * t.numel() for s in optimizer.state.values() for t in s.values()
               if isinstance(t, torch.Tensor))


def _state_parameter_bytes(optimizer):
    return sum(p.nbytes for g in optimizer.param_groups for p in g["params"])


def _state_parameter_element_size(optimizer):
    return sum(t.numel() * p.element_size() for p, s in optimizer.state.items()
               for t in s.values() if isinstance(t, torch.Tensor))


def _state_first_parameter(optimizer):
    for s in optimizer.state.values():
        return sum(t.nbytes for t in s.values() if isinstance(t, torch.Tensor))
    return 0


def _state_bytes_as_float(optimizer):
    return float(_reference_state_bytes(optimizer))


def _state_numel_of_everything(optimizer):
    """The mistake: every value of the state taken for a tensor (an int step counter is not)."""
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values())


def _state_element_size_of_everything(optimizer):
    return sum(t.element_size() * t.numel() for s in optimizer.state.values() for t in s.values())


def _state_nbytes_of_everything(optimizer):
    return sum(t.nbytes for s in optimizer.state.values() for t in s.values())


_NOT_TENSORS = ("this matches treating every value in the state as a tensor; an optimizer may "
                "keep other values there (this Adam keeps its step counter t as a Python int). "
                "Count only tensors: `if isinstance(t, torch.Tensor)`.")


def _run_state_bytes(fn, case):
    """The answer and its type: the text asks for an int (a count of bytes)."""
    n = fn(*case.args)
    return {"bytes": n, "type": type(n).__name__}


_STATE_HINTS = (
    Hint(_state_bytes_without_step, "this matches leaving out the step counters: torch keeps "
         "state['step'] as a 0-dimensional tensor (4 bytes per parameter tensor); count every "
         "tensor in the state."),
    Hint(_state_numel, "this matches counting elements; bytes = numel() × element_size()."),
    Hint(_state_four_bytes, "this matches assuming 4 bytes per element; use each tensor's own "
         "element_size() (8 for float64, 2 for bfloat16)."),
    Hint(_state_parameter_bytes, "this matches the bytes of the parameters themselves; the "
         "optimizer's state is in optimizer.state[p], a dict of tensors per parameter."),
    Hint(_state_parameter_element_size, "this matches the parameter's element_size() for every "
         "state tensor; the step counter is float32 whatever the parameter's dtype: use each "
         "tensor's own t.element_size()."),
    Hint(_state_first_parameter, "this matches counting the state of one parameter only; add "
         "up over every parameter: for state in optimizer.state.values(): ..."),
    Hint(_state_bytes_as_float, "the count is right but a float; return an int (sum the ints "
         "t.numel() * t.element_size(), without dividing)."),
    # one per way the int shows (the learner's error is matched by its first line)
    Hint(_state_numel_of_everything, _NOT_TENSORS),
    Hint(_state_element_size_of_everything, _NOT_TENSORS),
    Hint(_state_nbytes_of_everything, _NOT_TENSORS),
)


_DTYPE_OF_BYTES = {2: torch.bfloat16, 4: torch.float32, 8: torch.float64}
_OPTIMIZERS = {
    "sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
    "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
    "adam": lambda ps: torch.optim.Adam(ps),
    "adamw": lambda ps: torch.optim.AdamW(ps),
}


def _reference_training_bytes(optimizer, param_bytes=4):
    """Measured: a Linear(8, 8) in the matching dtype takes one step with torch's optimizer;
    weights + gradients + per-element state, divided by the number of parameters. The step
    counters (one scalar per tensor, not per parameter) are left out."""
    dtype = _DTYPE_OF_BYTES[param_bytes]
    model = nn.Linear(8, 8).to(dtype)
    opt = _OPTIMIZERS[optimizer](model.parameters())
    model(torch.ones(2, 8, dtype=dtype)).sum().backward()
    opt.step()
    params = list(model.parameters())
    total = sum(p.nbytes + p.grad.nbytes for p in params)
    total += sum(t.nbytes for s in opt.state.values() for t in s.values()
                 if isinstance(t, torch.Tensor) and t.dim() > 0)
    n = sum(p.numel() for p in params)
    assert total % n == 0
    return total // n


def _training_cases(gen):
    return [Case("each optimizer, default param_bytes", ())]


def _training_precision_cases(gen):
    return [Case(f"each optimizer, param_bytes={b}", (), {"param_bytes": b}) for b in (2, 8)]


def _run_training(fn, case):
    """The answer for every optimizer name, so that one case shows which of them is off."""
    return {name: fn(name, *case.args, **case.kwargs) for name in _OPTIMIZERS}


_STATE_SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def _training_no_grad(optimizer, param_bytes=4):
    return param_bytes * (1 + _STATE_SLOTS[optimizer])


def _training_state_only(optimizer, param_bytes=4):
    return param_bytes * _STATE_SLOTS[optimizer]


def _training_fixed_4(optimizer, param_bytes=4):
    return 4 * (2 + _STATE_SLOTS[optimizer])


def _training_adamw_one_buffer(optimizer, param_bytes=4):
    return param_bytes * (2 + {**_STATE_SLOTS, "adamw": 1}[optimizer])


def _training_momentum_two_buffers(optimizer, param_bytes=4):
    return param_bytes * (2 + {**_STATE_SLOTS, "momentum": 2}[optimizer])


def _training_with_counters(optimizer, param_bytes=4):
    return param_bytes * (2 + _STATE_SLOTS[optimizer]) + 4 * optimizer.startswith("adam")


def _training_adamw_three_buffers(optimizer, param_bytes=4):
    return param_bytes * (2 + {**_STATE_SLOTS, "adamw": 3}[optimizer])


def _training_momentum_no_buffer(optimizer, param_bytes=4):
    return param_bytes * (2 + {**_STATE_SLOTS, "momentum": 0}[optimizer])


def _training_float32_state(optimizer, param_bytes=4):
    return 2 * param_bytes + 4 * _STATE_SLOTS[optimizer]


_TRAINING_HINTS = (
    Hint(_training_no_grad, "this matches weights + state without the gradients; during "
         "training every parameter also has a gradient of the same size."),
    Hint(_training_state_only, "this matches the optimizer state alone; add the weights and "
         "the gradients."),
    Hint(_training_fixed_4, "this matches 4 bytes per number whatever param_bytes is; every "
         "tensor here has param_bytes per element."),
    Hint(_training_adamw_one_buffer, "this matches AdamW with one buffer; AdamW keeps the same "
         "two moments as Adam (m and v): only its weight decay differs."),
    Hint(_training_momentum_two_buffers, "this matches two buffers for SGD with momentum; it "
         "keeps one, the momentum buffer."),
    Hint(_training_with_counters, "this matches adding the step counter; it is one number per "
         "tensor, not per parameter, so leave it out."),
    Hint(_training_adamw_three_buffers, "this matches AdamW with a third buffer; AdamW keeps the "
         "same two moments as Adam (m and v): its decay p ← p·(1 − lr·wd) needs no state."),
    Hint(_training_momentum_no_buffer, "this matches SGD with momentum keeping no state; it keeps "
         "one buffer per parameter (the momentum buffer), as large as the parameter."),
    Hint(_training_float32_state, "this matches an optimizer state of 4 bytes per number "
         "whatever param_bytes is; torch's optimizers keep their buffers in the parameter's "
         "dtype, so here every tensor has param_bytes per element."),
)

register(
    Check("optimizer_state_bytes", "after_step", "counts the bytes of every state tensor of "
          "torch's optimizers after a step", _state_cases, _reference_state_bytes,
          run=_run_state_bytes, hints=_STATE_HINTS),
    Check("optimizer_state_bytes", "edge_cases", "handles no step yet, no state, frozen "
          "layers, float64 and bfloat16, values that are not tensors", _state_edge_cases,
          _reference_state_bytes, run=_run_state_bytes, hints=_STATE_HINTS),
    Check("training_bytes_per_param", "float32",
          "weights + gradients + state per parameter, as measured on torch's optimizers",
          _training_cases, _reference_training_bytes, run=_run_training, hints=_TRAINING_HINTS),
    Check("training_bytes_per_param", "any_precision",
          "the same for 2- and 8-byte parameters", _training_precision_cases,
          _reference_training_bytes, run=_run_training, hints=_TRAINING_HINTS),
)
