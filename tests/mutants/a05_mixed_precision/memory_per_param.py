"""mixed_precision_bytes_per_param: wrong and right learner implementations."""

import torch

from tests.mutants import alternative, mutant


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


_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


@mutant("mixed_precision_bytes_per_param", hint="three state tensors", fails=("adam",))
def bytes_adam_three_states(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    states = {**_STATES, "adam": 3, "adamw": 3}[optimizer]
    p = _size(param_dtype)
    master = master_weights and param_dtype != torch.float32
    return 2 * p + 4 * master + (4 if master_weights else p) * states


@mutant("mixed_precision_bytes_per_param", hint="no state for SGD with momentum", fails=("sgd",))
def bytes_momentum_without_state(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    states = {**_STATES, "momentum": 0}[optimizer]
    p = _size(param_dtype)
    master = master_weights and param_dtype != torch.float32
    return 2 * p + 4 * master + (4 if master_weights else p) * states


@mutant("mixed_precision_bytes_per_param", hint="float32 gradient for the master copy")
def bytes_master_gradient_kept(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    p = _size(param_dtype)
    master = master_weights and param_dtype != torch.float32
    return 2 * p + 8 * master + (4 if master_weights else p) * _STATES[optimizer]


@mutant("mixed_precision_bytes_per_param", hint="even when master_weights=False")
def bytes_master_whatever_the_flag(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    p = _size(param_dtype)
    return 2 * p + 4 * (param_dtype != torch.float32) + 4 * _STATES[optimizer]


@mutant("mixed_precision_bytes_per_param", hint="returning a float")
def bytes_as_float(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    p = torch.finfo(param_dtype).bits / 8
    master = master_weights and param_dtype != torch.float32
    return 2 * p + 4 * master + (4 if master_weights else p) * _STATES[optimizer]


@alternative("mixed_precision_bytes_per_param")
def bytes_by_counting_tensors(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    low = torch.empty((), dtype=param_dtype).element_size()
    copy = master_weights and low < 4
    updated = 4 if copy else low  # the tensor the optimizer updates, and so its state's dtype
    tensors = [low, low] + ([4] if copy else []) + [updated] * _STATES[optimizer]
    return sum(tensors)


@mutant("mixed_precision_bytes_per_param", hint="counting the gradient in float32", fails=("adam",))
def bytes_float32_gradient(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    p = _size(param_dtype)
    master = master_weights and param_dtype != torch.float32
    return p + 4 + 4 * master + (4 if master_weights else p) * _STATES[optimizer]


@mutant("mixed_precision_bytes_per_param", hint="state in float32 even when master_weights=False",
        fails=("adam",))
def bytes_float32_state_always(optimizer="adamw", param_dtype=torch.bfloat16, master_weights=True):
    p = _size(param_dtype)
    return 2 * p + 4 * (master_weights and p < 4) + 4 * _STATES[optimizer]
