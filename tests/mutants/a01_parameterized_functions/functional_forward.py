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


@mutant("functional_forward", fails=("values",))
def forward_transposed_weights(model, theta, x):
    params, offset = {}, 0
    for name, p in model.named_parameters():
        chunk = theta[offset:offset + p.numel()]
        params[name] = chunk.reshape(p.shape[::-1]).T if p.dim() == 2 else chunk
        offset += p.numel()
    return torch.func.functional_call(model, params, (x,))


@alternative("functional_forward")
def forward_by_hand(model, theta, x):
    """Walks the Sequential layer by layer; works for Linear and activation layers."""
    offset = 0
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            w_n, b_n = layer.weight.numel(), layer.bias.numel()
            w = theta[offset:offset + w_n].view(layer.out_features, layer.in_features)
            b = theta[offset + w_n:offset + w_n + b_n]
            offset += w_n + b_n
            x = F.linear(x, w, b)
        else:
            x = layer(x)
    return x
