"""mlp_forward and mlp_backward: mistakes a learner might make, and correct answers."""

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- mlp_forward


@mutant("mlp_forward", fails=("output",))
def mlp_forward_no_relu(x, params):
    z = x @ params["W1"].T + params["b1"]
    return z @ params["W2"].T + params["b2"], (x, z, z, params)


@mutant("mlp_forward", fails=("cache",))
def mlp_forward_cache_swapped(x, params):
    z = x @ params["W1"].T + params["b1"]
    h = z.clamp(min=0)
    return h @ params["W2"].T + params["b2"], (x, h, z, params)


@mutant("mlp_forward", hint="x @ W1 without the transpose", fails=("output", "cache"))
def mlp_forward_untransposed(x, params):
    z = x @ params["W1"] + params["b1"]
    h = torch.relu(z)
    return h @ params["W2"] + params["b2"], (x, z, h, params)


@alternative("mlp_forward")
def mlp_forward_addmm(x, params):
    z = torch.addmm(params["b1"], x, params["W1"].t())
    h = z.clamp(min=0)
    return torch.addmm(params["b2"], h, params["W2"].t()), (x, z, h, params)


# --------------------------------------------------------------------------- mlp_backward


@mutant("mlp_backward", hint="transposed weight gradient", fails=("output_layer", "hidden_layer"))
def mlp_backward_transposed(dout, cache):
    x, z, h, p = cache
    dz = (dout @ p["W2"]) * (z > 0)
    return {"W2": h.T @ dout, "b2": dout.sum(0), "W1": x.T @ dz, "b1": dz.sum(0), "x": dz @ p["W1"]}


@mutant("mlp_backward", hint="leaving out the ReLU", fails=("hidden_layer", "input"))
def mlp_backward_no_mask(dout, cache):
    x, z, h, p = cache
    dz = dout @ p["W2"]
    return {"W2": dout.T @ h, "b2": dout.sum(0), "W1": dz.T @ x, "b1": dz.sum(0), "x": dz @ p["W1"]}


@mutant("mlp_backward", hint="averaging the bias", fails=("output_layer", "hidden_layer"))
def mlp_backward_bias_mean(dout, cache):
    x, z, h, p = cache
    dz = (dout @ p["W2"]) * (z > 0)
    return {"W2": dout.T @ h, "b2": dout.mean(0), "W1": dz.T @ x, "b1": dz.mean(0), "x": dz @ p["W1"]}


@mutant("mlp_backward", fails=("hidden_layer", "input"))
def mlp_backward_mask_from_gradient(dout, cache):
    x, z, h, p = cache
    dh = dout @ p["W2"]
    dz = dh * (dh > 0)
    return {"W2": dout.T @ h, "b2": dout.sum(0), "W1": dz.T @ x, "b1": dz.sum(0), "x": dz @ p["W1"]}


@mutant("mlp_backward", fails=("input",))
def mlp_backward_input_unmasked(dout, cache):
    x, z, h, p = cache
    dh = dout @ p["W2"]
    dz = dh * (z > 0)
    return {"W2": dout.T @ h, "b2": dout.sum(0), "W1": dz.T @ x, "b1": dz.sum(0), "x": dh @ p["W1"]}


@mutant("mlp_backward", fails=("output_layer", "hidden_layer", "input"))
def mlp_backward_with_autograd(dout, cache):
    x, z, h, p = cache
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    out = torch.relu(x @ leaves["W1"].T + leaves["b1"]) @ leaves["W2"].T + leaves["b2"]
    grads = torch.autograd.grad(out, list(leaves.values()), dout)
    return dict(zip(leaves, grads))


@alternative("mlp_backward")
def mlp_backward_einsum(dout, cache):
    x, z, h, p = cache
    dh = torch.einsum("bo,oh->bh", dout, p["W2"])
    dz = torch.where(z > 0, dh, torch.zeros_like(dh))
    return {
        "x": torch.einsum("bh,hi->bi", dz, p["W1"]),
        "W1": torch.einsum("bh,bi->hi", dz, x),
        "b1": dz.sum(0),
        "W2": torch.einsum("bo,bh->oh", dout, h),
        "b2": torch.einsum("bo->o", dout),
    }


@mutant("mlp_forward", hint="leaving out b2", fails=("output",))
def mlp_forward_no_b2(x, params):
    z = x @ params["W1"].T + params["b1"]
    h = torch.relu(z)
    return h @ params["W2"].T, (x, z, h, params)


@mutant("mlp_forward", hint="ReLU on the output", fails=("output",))
def mlp_forward_relu_on_output(x, params):
    z = x @ params["W1"].T + params["b1"]
    h = torch.relu(z)
    return torch.relu(h @ params["W2"].T + params["b2"]), (x, z, h, params)


@mutant("mlp_forward", hint="ran in place", fails=("cache",))
def mlp_forward_relu_in_place(x, params):
    z = x @ params["W1"].T + params["b1"]
    h = z.clamp_(min=0)  # z itself is overwritten
    return h @ params["W2"].T + params["b2"], (x, z, h, params)


@mutant("mlp_forward", hint="the cache (x, h, z, params)", fails=("cache",))
def mlp_forward_cache_order(x, params):
    z = x @ params["W1"].T + params["b1"]
    h = torch.relu(z)
    return h @ params["W2"].T + params["b2"], (x, h, z, params)


@alternative("mlp_forward")
def mlp_forward_einsum_where(x, params):
    z = torch.einsum("bi,hi->bh", x, params["W1"]) + params["b1"]
    h = torch.where(z > 0, z, torch.zeros_like(z))
    return torch.einsum("bh,oh->bo", h, params["W2"]) + params["b2"], (x, z, h, params)


def _backward_with_relu_factor(factor):
    def backward(dout, cache):
        x, z, h, p = cache
        dz = (dout @ p["W2"]) * factor(z, h)
        return {"x": dz @ p["W1"], "W1": dz.T @ x, "b1": dz.sum(0), "W2": dout.T @ h,
                "b2": dout.sum(0)}
    return backward


mutant("mlp_backward", hint="multiplying by h", fails=("hidden_layer", "input"))(
    _backward_with_relu_factor(lambda z, h: h))
mutant("mlp_backward", hint="the mask (z >= 0)", fails=("hidden_layer", "input"))(
    _backward_with_relu_factor(lambda z, h: (z >= 0).to(z.dtype)))


@alternative("mlp_backward")
def mlp_backward_masked_fill(dout, cache):
    x, z, h, p = cache
    dz = (dout @ p["W2"]).masked_fill(z <= 0, 0.0)
    return {"x": dz @ p["W1"], "W1": dz.T @ x, "b1": dz.sum(0), "W2": dout.T @ h, "b2": dout.sum(0)}


# Mistakes written by testers who had not seen the hints (appended: the order above is kept).


@mutant("mlp_forward", hint="an nn.Linear layer", fails=("output", "cache"))
def mlp_forward_nn_linear(x, params):
    first = torch.nn.Linear(params["W1"].shape[1], params["W1"].shape[0])  # float32
    with torch.no_grad():
        first.weight.copy_(params["W1"])
        first.bias.copy_(params["b1"])
    z = first(x)
    h = torch.relu(z)
    return h @ params["W2"].T + params["b2"], (x, z, h, params)


def _backward(dout, cache, *, dh_T=False, dx_T=False, keepdim=False, dim=0, dW1_no_mask=False):
    x, z, h, p = cache
    dh = dout @ (p["W2"].T if dh_T else p["W2"])
    dz = dh * (z > 0)
    return {"W2": dout.T @ h, "b2": dout.sum(dim, keepdim=keepdim),
            "W1": (dh if dW1_no_mask else dz).T @ x, "b1": dz.sum(dim, keepdim=keepdim),
            "x": dz @ (p["W1"].T if dx_T else p["W1"])}


@mutant("mlp_backward", hint="dout @ W2.T", fails=("output_layer", "hidden_layer", "input"))
def mlp_backward_dh_transposed(dout, cache):
    return _backward(dout, cache, dh_T=True)


@mutant("mlp_backward", hint="dz @ W1.T", fails=("output_layer", "hidden_layer", "input"))
def mlp_backward_dx_transposed(dout, cache):
    return _backward(dout, cache, dx_T=True)


@mutant("mlp_backward", hint="shape (1, d)", fails=("output_layer", "hidden_layer"))
def mlp_backward_bias_keepdim(dout, cache):
    return _backward(dout, cache, keepdim=True)


@mutant("mlp_backward", hint="summed over dim 1", fails=("output_layer", "hidden_layer"))
def mlp_backward_bias_over_units(dout, cache):
    return _backward(dout, cache, dim=1)


@mutant("mlp_backward", hint="computed from ∂L/∂h", fails=("hidden_layer",))
def mlp_backward_dW1_without_mask(dout, cache):
    return _backward(dout, cache, dW1_no_mask=True)


@mutant("mlp_backward", hint="calling autograd", fails=("output_layer", "hidden_layer", "input"))
def mlp_backward_with_backward(dout, cache):
    x, _, _, p = cache
    leaves = {k: v.clone().requires_grad_(True) for k, v in p.items()}
    xr = x.clone().requires_grad_(True)
    y = torch.relu(xr @ leaves["W1"].T + leaves["b1"]) @ leaves["W2"].T + leaves["b2"]
    y.backward(dout)
    return {"x": xr.grad, **{k: v.grad for k, v in leaves.items()}}
