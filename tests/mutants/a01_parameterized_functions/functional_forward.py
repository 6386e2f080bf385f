"""Assignment 01, functional_forward: mistakes a learner might make, and correct answers written
differently."""

import torch
import torch.nn.functional as F

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- functional_forward


@mutant("functional_forward", hint="copying θ into the model", fails=("model_unchanged",))
def forward_by_copy(model, theta, x):
    torch.nn.utils.vector_to_parameters(theta.detach(), model.parameters())
    return model(x)


@mutant("functional_forward", fails=("values",))
def forward_ignores_theta(model, theta, x):
    return model(x)


@mutant("functional_forward", hint="column by column", fails=("values",))
def forward_transposed_weights(model, theta, x):
    params, offset = {}, 0
    for name, p in model.named_parameters():
        chunk = theta[offset:offset + p.numel()]
        params[name] = chunk.reshape(p.shape[::-1]).T if p.dim() == 2 else chunk
        offset += p.numel()
    return torch.func.functional_call(model, params, (x,))


@alternative("functional_forward")
def forward_by_hand(model, theta, x):
    """Walks the Sequential layer by layer; works for Linear, BatchNorm1d and activation layers."""
    offset = 0
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            w_n, b_n = layer.weight.numel(), layer.bias.numel()
            w = theta[offset:offset + w_n].view(layer.out_features, layer.in_features)
            b = theta[offset + w_n:offset + w_n + b_n]
            offset += w_n + b_n
            x = F.linear(x, w, b)
        elif isinstance(layer, torch.nn.BatchNorm1d):
            k = layer.num_features
            w, b = theta[offset:offset + k], theta[offset + k:offset + 2 * k]
            offset += 2 * k
            x = F.batch_norm(x, layer.running_mean, layer.running_var, w, b, layer.training,
                             layer.momentum, layer.eps)
        else:
            x = layer(x)
    return x


# Appended (issue "feedback that names what learners get wrong"): each names its mistake.


def _slices(named, theta):
    params, offset = {}, 0
    for name, p in named:
        params[name] = theta[offset:offset + p.numel()].view_as(p)
        offset += p.numel()
    return params


@mutant("functional_forward", hint="trainable parameters only", fails=("values",))
def forward_trainable_only(model, theta, x):
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    return torch.func.functional_call(model, _slices(named, theta), (x,))


@mutant("functional_forward", hint="from the start of θ", fails=("values",))
def forward_without_offset(model, theta, x):
    params = {n: theta[:p.numel()].view_as(p) for n, p in model.named_parameters()}
    return torch.func.functional_call(model, params, (x,))


@mutant("functional_forward", hint="alphabetical order", fails=("values",))
def forward_sorted_names(model, theta, x):
    named = sorted(model.named_parameters(), key=lambda kv: kv[0])
    return torch.func.functional_call(model, _slices(named, theta), (x,))


@mutant("functional_forward", hint="no gradient reaches θ", fails=("gradient",))
def forward_detached_theta(model, theta, x):
    return torch.func.functional_call(model, _slices(model.named_parameters(), theta.detach()), (x,))


@mutant("functional_forward", hint="no gradient reaches θ", fails=("gradient",))
def forward_detached_output(model, theta, x):
    return torch.func.functional_call(model, _slices(model.named_parameters(), theta), (x,)).detach()


@mutant("functional_forward", hint="no gradient reaches θ", fails=("gradient",))
def forward_copy_and_restore(model, theta, x):
    saved = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        torch.nn.utils.vector_to_parameters(theta, model.parameters())
    y = model(x)
    with torch.no_grad():
        for p, s in zip(model.parameters(), saved):
            p.copy_(s)
    return y


@mutant("functional_forward", hint="copying θ into the model", fails=("model_unchanged", "gradient"))
def forward_assigns_data(model, theta, x):
    offset = 0
    for p in model.parameters():
        p.data = theta[offset:offset + p.numel()].detach().view_as(p).clone()
        offset += p.numel()
    return model(x)


@alternative("functional_forward")
def forward_with_split(model, theta, x):
    named = list(model.named_parameters())
    pieces = torch.split(theta, [p.numel() for _, p in named])
    params = {n: t.reshape(p.shape) for (n, p), t in zip(named, pieces)}
    return torch.func.functional_call(model, params, (x,))


@alternative("functional_forward")
def forward_on_a_deep_copy(model, theta, x):
    """A copy of the model whose Parameters are replaced by plain tensors cut from θ."""
    import copy
    clone = copy.deepcopy(model)
    for name, t in _slices(list(model.named_parameters()), theta).items():
        *path, leaf = name.split(".")
        owner = clone
        for part in path:
            owner = getattr(owner, part)
        delattr(owner, leaf)
        setattr(owner, leaf, t)
    return clone(x)


@mutant("functional_forward", hint="model.state_dict()", fails=("values",))
def forward_over_state_dict(model, theta, x):
    """(a tester's answer) θ sliced over state_dict(): buffers take slices too."""
    params, i = {}, 0
    for name, p in model.state_dict().items():
        n = p.numel()
        params[name] = theta[i:i + n].reshape(p.shape)
        i += n
    return torch.func.functional_call(model, params, (x,))
