"""Assignment 02, optimizer_state_bytes and training_bytes_per_param: mistakes a learner might
make, and correct answers written differently."""

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- optimizer memory


@mutant("optimizer_state_bytes", hint="step counters", fails=("after_step",))
def state_bytes_without_step(optimizer):
    return sum(t.numel() * t.element_size() for s in optimizer.state.values()
               for k, t in s.items() if k != "step" and torch.is_tensor(t))


@mutant("optimizer_state_bytes", hint="counting elements", fails=("after_step",))
def state_numel(optimizer):
    return sum(t.numel() for s in optimizer.state.values() for t in s.values() if torch.is_tensor(t))


@mutant("optimizer_state_bytes", hint="4 bytes per element", fails=("edge_cases",))
def state_assumes_float32(optimizer):
    return sum(4 * t.numel() for s in optimizer.state.values() for t in s.values()
               if torch.is_tensor(t))


@mutant("optimizer_state_bytes", hint="bytes of the parameters themselves")
def state_counts_parameters(optimizer):
    return sum(p.numel() * p.element_size() for g in optimizer.param_groups for p in g["params"])


@alternative("optimizer_state_bytes")
def state_bytes_from_state_dict(optimizer):
    total = 0
    for per_param in optimizer.state_dict()["state"].values():
        total += sum(v.nbytes for v in per_param.values() if isinstance(v, torch.Tensor))
    return total


@alternative("optimizer_state_bytes")
def state_bytes_by_dtype(optimizer):
    tensors = [v for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v)]
    bits = sum(v.numel() * torch.finfo(v.dtype).bits if v.is_floating_point()
               else v.numel() * torch.iinfo(v.dtype).bits for v in tensors)
    return bits // 8


@mutant("training_bytes_per_param", hint="without the gradients")
def training_no_grads(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 1, "momentum": 2, "adam": 3, "adamw": 3}[optimizer]


@mutant("training_bytes_per_param", hint="state alone")
def training_state_only(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]


@mutant("training_bytes_per_param", hint="4 bytes per number", fails=("any_precision",))
def training_fixed_float32(optimizer, param_bytes=4):
    return {"sgd": 8, "momentum": 12, "adam": 16, "adamw": 16}[optimizer]


@mutant("training_bytes_per_param")
def training_adamw_three_buffers(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 2, "momentum": 3, "adam": 4, "adamw": 5}[optimizer]


@alternative("training_bytes_per_param")
def training_if_chain(optimizer, param_bytes=4):
    weights_and_grads = 2 * param_bytes
    if optimizer == "sgd":
        return weights_and_grads
    if optimizer == "momentum":
        return weights_and_grads + param_bytes
    return weights_and_grads + 2 * param_bytes


# --------------------------------------------------------------------------- added with the hints
# of the one-hint rule (appended after the mutants above).


@mutant("optimizer_state_bytes", hint="parameter's element_size()", fails=("edge_cases",))
def state_bytes_with_parameter_element_size(optimizer):
    return sum(t.numel() * p.element_size() for p, s in optimizer.state.items()
               for t in s.values() if isinstance(t, torch.Tensor))


@mutant("optimizer_state_bytes", hint="one parameter only", fails=("after_step",))
def state_bytes_of_first_parameter(optimizer):
    for state in optimizer.state.values():
        return sum(t.numel() * t.element_size() for t in state.values()
                   if isinstance(t, torch.Tensor))
    return 0


@mutant("optimizer_state_bytes", hint="right but a float")
def state_bytes_as_float(optimizer):
    return sum(t.numel() * t.element_size() / 1.0 for s in optimizer.state.values()
               for t in s.values() if isinstance(t, torch.Tensor))


@mutant("optimizer_state_bytes", fails=("edge_cases",))
def state_bytes_of_every_value(optimizer):
    return sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values())


@mutant("training_bytes_per_param", hint="AdamW with one buffer")
def training_adamw_like_momentum(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 2, "momentum": 3, "adam": 4, "adamw": 3}[optimizer]


@mutant("training_bytes_per_param", hint="two buffers for SGD with momentum")
def training_momentum_two_buffers(optimizer, param_bytes=4):
    return param_bytes * {"sgd": 2, "momentum": 4, "adam": 4, "adamw": 4}[optimizer]


@mutant("training_bytes_per_param", hint="adding the step counter")
def training_with_step_counters(optimizer, param_bytes=4):
    buffers = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]
    return (2 + buffers) * param_bytes + (4 if optimizer in ("adam", "adamw") else 0)


@alternative("training_bytes_per_param")
def training_match(optimizer, param_bytes=4):
    match optimizer:
        case "sgd":
            buffers = 0
        case "momentum":
            buffers = 1
        case _:
            buffers = 2
    return (2 + buffers) * param_bytes


@alternative("optimizer_state_bytes")
def state_bytes_nbytes_loop(optimizer):
    total = 0
    for state in optimizer.state.values():
        for value in state.values():
            if torch.is_tensor(value):
                total += value.nbytes
    return total


# --------------------------------------------------------------------------- added with the hints
# for values that are not tensors, AdamW's third buffer, momentum without state, a float32 state
# (blind testers' answers, ported).


@mutant("optimizer_state_bytes", hint="every value in the state as a tensor", fails=("edge_cases",))
def state_bytes_without_type_check(optimizer):
    total = 0
    for per_parameter in optimizer.state.values():
        for value in per_parameter.values():
            total += value.numel() * value.element_size()
    return total


@mutant("training_bytes_per_param", hint="AdamW with a third buffer", fails=("float32",))
def training_adamw_extra_buffer(optimizer, param_bytes=4):
    return {"sgd": 2, "momentum": 3, "adam": 4, "adamw": 5}[optimizer] * param_bytes


@mutant("training_bytes_per_param", hint="momentum keeping no state", fails=("float32",))
def training_momentum_for_free(optimizer, param_bytes=4):
    return {"sgd": 2, "momentum": 2, "adam": 4, "adamw": 4}[optimizer] * param_bytes


@mutant("training_bytes_per_param", hint="optimizer state of 4 bytes per number",
        fails=("any_precision",))
def training_state_in_float32(optimizer, param_bytes=4):
    buffers = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}[optimizer]
    return 2 * param_bytes + 4 * buffers


@alternative("training_bytes_per_param")
def training_measured_on_torch(optimizer, param_bytes=4):
    dtype = {2: torch.bfloat16, 4: torch.float32, 8: torch.float64}[param_bytes]
    p = torch.nn.Parameter(torch.zeros(1000, dtype=dtype))
    make = {"sgd": lambda: torch.optim.SGD([p], lr=0.1),
            "momentum": lambda: torch.optim.SGD([p], lr=0.1, momentum=0.9),
            "adam": lambda: torch.optim.Adam([p]), "adamw": lambda: torch.optim.AdamW([p])}
    opt = make[optimizer]()
    p.grad = torch.ones_like(p)
    opt.step()
    state = sum(t.nbytes for s in opt.state.values() for t in s.values()
                if isinstance(t, torch.Tensor) and t.dim() > 0)
    return (2 * p.nbytes + state) // p.numel()
