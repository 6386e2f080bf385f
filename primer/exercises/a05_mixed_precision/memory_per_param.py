"""mixed_precision_bytes_per_param: bytes a training step keeps per parameter (parameters,
gradients, master weights, optimizer state), measured with torch's optimizers."""

from __future__ import annotations

import torch

from primer.grading import Case, Check, Hint, register

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
    """One case per optimizer (in an order drawn from the seed): the learner's function is asked
    for every param_dtype, with and without master weights (see _run_bytes)."""
    def cases(gen):
        names = [o for o in _OPTIMIZERS if select(o)]
        order = torch.randperm(len(names), generator=gen).tolist()
        out = [Case(f"optimizer={names[i]!r}, every param_dtype, with and without master weights",
                    (names[i],)) for i in order]
        if select("adamw"):
            out.append(Case("called with no arguments (the defaults: 'adamw', bfloat16, master "
                            "weights)", (None,)))
        return out
    return cases


def _run_bytes(fn, case):
    """The table of the case's optimizer, {set-up: bytes}, and the type of what came back: a
    whole table per case tells apart mistakes that agree on a single set-up."""
    (optimizer,) = case.args
    if optimizer is None:
        value = fn()
        return {"bytes with the defaults": value, "type": type(value).__name__}
    table, kinds = {}, set()
    for dtype in _DTYPES:
        for master in (True, False):
            value = fn(optimizer=optimizer, param_dtype=dtype, master_weights=master)
            table[f"param_dtype={str(dtype)[6:]}, master_weights={master}"] = value
            kinds.add(type(value).__name__)
    return {**table, "type": " and ".join(sorted(kinds))}


def _bytes_table(tensors_in_param_dtype=2, master_always=False, state_in_param_dtype=False,
                 adam_states=2, momentum_states=1, master_grad=False, master_ignores_flag=False,
                 as_float=False, grad_float32=False, state_always_float32=False):
    def bytes_per_param(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
        size = torch.finfo(param_dtype).bits // 8
        flag = True if master_ignores_flag else master_weights
        master = flag and (master_always or param_dtype != torch.float32)
        states = {"sgd": 0, "momentum": momentum_states, "adam": adam_states,
                  "adamw": adam_states}[optimizer]
        state_size = size if (state_in_param_dtype or not (flag or state_always_float32)) else 4
        grads = (4 - size) if grad_float32 else 0  # the gradient in float32, not param_dtype
        total = (size * tensors_in_param_dtype + grads + (8 if master_grad else 4) * master
                 + states * state_size)
        return float(total) if as_float else total
    return bytes_per_param


_BYTES_HINTS = (
    Hint(_bytes_table(master_always=True), "this matches adding a float32 master copy when the "
         "parameters are already float32 (then they are the master weights)."),
    Hint(_bytes_table(tensors_in_param_dtype=1), "this matches counting one tensor in "
         "param_dtype per parameter (the parameters and their gradients are two)."),
    Hint(_bytes_table(state_in_param_dtype=True), "this matches storing the optimizer state in "
         "param_dtype (with master weights the optimizer updates the float32 copy, so its state "
         "is float32)."),
    Hint(_bytes_table(adam_states=1), "this matches one state tensor for Adam/AdamW (they keep "
         "two: running means of g and of g²)."),
    Hint(_bytes_table(adam_states=3), "this matches three state tensors for Adam/AdamW: they "
         "keep two (running means of g and of g²); AdamW's weight decay needs no state."),
    Hint(_bytes_table(momentum_states=0), "this matches no state for SGD with momentum: it "
         "keeps one velocity tensor per parameter."),
    Hint(_bytes_table(master_grad=True), "this matches counting a float32 gradient for the "
         "master copy: it is made for the update only (from the 16-bit gradient) and not kept "
         "between steps."),
    Hint(_bytes_table(master_ignores_flag=True), "this matches adding the float32 master copy "
         "(and float32 state) even when master_weights=False: then the optimizer updates the "
         "16-bit parameters themselves, and its state is in param_dtype."),
    Hint(_bytes_table(as_float=True), "this matches returning a float (bits / 8 gives one): "
         "return an int, e.g. with bits // 8."),
    Hint(_bytes_table(grad_float32=True), "this matches counting the gradient in float32: "
         "backward() gives it in the parameters' dtype, param_dtype (the float32 gradient of "
         "the master copy is made for the update only)."),
    Hint(_bytes_table(state_always_float32=True), "this matches keeping the optimizer state in "
         "float32 even when master_weights=False: then the optimizer updates the 16-bit "
         "parameters themselves, and its state has their dtype, param_dtype."),
)

register(
    Check("mixed_precision_bytes_per_param", "adam",
          "bytes per parameter with Adam/AdamW, with and without float32 master weights",
          _bytes_cases(lambda o: o.startswith("adam")), _reference_bytes_per_param,
          run=_run_bytes, hints=_BYTES_HINTS, points=2),
    Check("mixed_precision_bytes_per_param", "sgd",
          "bytes per parameter with SGD and SGD with momentum",
          _bytes_cases(lambda o: not o.startswith("adam")), _reference_bytes_per_param,
          run=_run_bytes, hints=_BYTES_HINTS),
)
