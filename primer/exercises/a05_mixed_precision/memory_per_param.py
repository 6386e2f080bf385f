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
