"""mlp_forward and mlp_backward: a two-layer MLP's forward, its cache, and its backward by hand."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from primer.exercises._common import randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

# --------------------------------------------------------------------------- mlp_forward/backward

_MLP_SHAPES = [  # (batch, d_in, hidden, d_out, dtype)
    (4, 3, 5, 2, torch.float64),
    (8, 6, 6, 6, torch.float64),  # square: a transposed weight gradient has the right shape
    (1, 4, 7, 3, torch.float64),
    (16, 10, 32, 10, torch.float64),
    (5, 4, 3, 4, torch.float32),
]


def _mlp_params(gen, d_in, hidden, d_out, dtype):
    return {
        "W1": randn(gen, hidden, d_in, dtype=dtype, scale=d_in ** -0.5),
        "b1": randn(gen, hidden, dtype=dtype, scale=0.5),
        "W2": randn(gen, d_out, hidden, dtype=dtype, scale=hidden ** -0.5),
        "b2": randn(gen, d_out, dtype=dtype, scale=0.5),
    }


def _mlp_cases(gen):
    out = []
    for b, d_in, hidden, d_out, dtype in _MLP_SHAPES:
        params = _mlp_params(gen, d_in, hidden, d_out, dtype)
        x = randn(gen, b, d_in, dtype=dtype)
        if b == 16:  # exact zeros in z: example 0 is all zeros and 8 hidden units have no bias,
            x[0] = 0.0  # so z[0, :8] = 0, where ReLU's derivative is 0 (torch's and the text's)
            params["b1"][:8] = 0.0
        dout = randn(gen, b, d_out, dtype=dtype)
        out.append(Case(f"x ({b}, {d_in}) → {hidden} → {d_out}, {str(dtype)[6:]}",
                        (x, params), {"dout": dout}))
    return out


def _reference_mlp_forward(x, params):
    """Linear → ReLU → Linear with torch's own layers; the cache the exercise specifies."""
    z = F.linear(x, params["W1"], params["b1"])
    h = torch.relu(z)
    return F.linear(h, params["W2"], params["b2"]), (x, z, h, params)


def _run_mlp_output(fn, case):
    out = fn(*case.args)
    return out[0] if isinstance(out, tuple) and len(out) == 2 else out


def _run_mlp_cache(fn, case):
    out = fn(*case.args)
    return out[1] if isinstance(out, tuple) and len(out) == 2 else out


def _autograd_mlp_backward(dout, cache):
    """The reference: torch.autograd through F.linear and relu, seeded with dout."""
    x, _, _, params = cache
    leaves = {k: v.detach().clone().requires_grad_(True) for k, v in params.items()}
    leaves["x"] = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = F.linear(torch.relu(F.linear(leaves["x"], leaves["W1"], leaves["b1"])),
                       leaves["W2"], leaves["b2"])
        grads = torch.autograd.grad(out, list(leaves.values()), dout)
    return dict(zip(leaves, grads))


def _run_mlp_backward(keys):
    def run(fn, case):
        x, params = case.args
        _, cache = _reference_mlp_forward(x, params)
        with torch.no_grad():  # tensor operations only: no autograd graph to lean on
            grads = fn(case.kwargs["dout"], cache)
        if not isinstance(grads, dict):
            return grads
        return {k: v for k, v in grads.items() if k in keys or k not in ("x", "W1", "b1", "W2", "b2")}
    return run


def _mlp_backward_by_hand(transpose=False, mask=True, bias_mean=False, bias="sum0", dh_T=False,
                          dx_T=False, dW1_from_dh=False):
    def backward(dout, cache):
        x, z, h, p = cache
        total = {"sum0": lambda g: g.sum(0), "keepdim": lambda g: g.sum(0, keepdim=True),
                 "sum1": lambda g: g.sum(1)}[bias]
        dW2 = (h.T @ dout) if transpose else (dout.T @ h)
        db2 = dout.mean(0) if bias_mean else total(dout)
        dh = dout @ (p["W2"].T if dh_T else p["W2"])
        dz = {True: dh * (z > 0), False: dh, "h": dh * h, ">=": dh * (z >= 0)}[mask]
        dW1 = (x.T @ dz) if transpose else ((dh if dW1_from_dh else dz).T @ x)
        db1 = dz.mean(0) if bias_mean else total(dz)
        return {"x": dz @ (p["W1"].T if dx_T else p["W1"]), "W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return backward


def _mlp_backward_autograd(dout, cache):
    x, _, _, p = cache
    leaves = [t.clone().requires_grad_(True) for t in (x, p["W1"], p["b1"], p["W2"], p["b2"])]
    xr, W1, b1, W2, b2 = leaves
    out = torch.relu(xr @ W1.T + b1) @ W2.T + b2  # under no_grad: no graph
    return dict(zip(("x", "W1", "b1", "W2", "b2"), torch.autograd.grad(out, leaves, dout)))


_MLP_HINTS = (
    Hint(_mlp_backward_by_hand(transpose=True), "this matches a transposed weight gradient. "
         "For y = x Wᵀ + b the gradient ∂L/∂W = (∂L/∂y)ᵀ x has W's shape (out, in)."),
    Hint(_mlp_backward_by_hand(mask=False), "this matches leaving out the ReLU: its derivative "
         "is 1 where z > 0 and 0 elsewhere, so multiply the gradient by (z > 0)."),
    Hint(_mlp_backward_by_hand(bias_mean=True), "this matches averaging the bias gradient over "
         "the batch; every example adds its gradient, so sum over the batch."),
    Hint(_mlp_backward_by_hand(mask="h"), "this matches multiplying by h (dh * h) for the ReLU; "
         "its derivative is the mask [z > 0], 1 or 0, not the activation: dz = dh * (z > 0)."),
    Hint(_mlp_backward_by_hand(mask=">="), "this matches the mask (z >= 0): where z is exactly "
         "0 ReLU's derivative is taken as 0 (as torch does), so use (z > 0)."),
    Hint(_mlp_backward_by_hand(dh_T=True), "this matches ∂L/∂h = dout @ W2.T: W2 has shape "
         "(d_out, H), so (B, d_out) @ (d_out, H) is dout @ W2, without the transpose."),
    Hint(_mlp_backward_by_hand(dx_T=True), "this matches ∂L/∂x = dz @ W1.T: W1 has shape "
         "(H, d_in), so (B, H) @ (H, d_in) is dz @ W1, without the transpose."),
    Hint(_mlp_backward_by_hand(bias="keepdim"), "this matches bias gradients of shape (1, d) "
         "(sum with keepdim=True): a bias has shape (d,), so sum over the batch without keepdim, "
         "dout.sum(0)."),
    Hint(_mlp_backward_by_hand(bias="sum1"), "this matches bias gradients summed over dim 1 "
         "(one number per example, shape (B,)): sum over the batch, dim 0, to get one number "
         "per unit, shape (d,)."),
    Hint(_mlp_backward_by_hand(dW1_from_dh=True), "this matches ∂L/∂W1 computed from ∂L/∂h, "
         "without the ReLU's mask (b1's gradient had it): use dz = dh * (z > 0) for W1 too, "
         "dW1 = dz.T @ x."),
    Hint(_mlp_backward_autograd, "this matches calling autograd (.backward() or "
         "torch.autograd.grad): the test runs your function under torch.no_grad(), so nothing "
         "has a grad_fn, and the exercise asks for the gradients from the formulas above."),
)


def _forward_by_hand(b2=True, relu_out=False, cache="right", transposed=True, dtype=None):
    def forward(x, params):
        W1, W2 = (params["W1"].T, params["W2"].T) if transposed else (params["W1"], params["W2"])
        if dtype is None:
            z = x @ W1 + params["b1"]
        else:  # an nn.Linear of that dtype (F.linear is not watched in a hint)
            z = F.linear(x, params["W1"].to(dtype), params["b1"].to(dtype))
        h = torch.relu(z)
        out = h @ W2 + (params["b2"] if b2 else 0)
        out = torch.relu(out) if relu_out else out
        return out, {"right": (x, z, h, params), "h_for_z": (x, h, h, params),
                     "swapped": (x, h, z, params)}[cache]
    return forward


_FORWARD_HINTS = (
    Hint(_forward_by_hand(b2=False), "this matches leaving out b2: y = h W2ᵀ + b2."),
    Hint(_forward_by_hand(relu_out=True), "this matches a ReLU on the output too; the network "
         "is Linear → ReLU → Linear, and y is the second Linear's output, negative values "
         "included."),
    Hint(_forward_by_hand(cache="h_for_z"), "this matches a cache whose z is relu(z): either h "
         "was stored in z's place, or the ReLU ran in place (clamp_, relu_, z[z < 0] = 0) and "
         "overwrote z. Keep z and h = relu(z) as two tensors."),
    Hint(_forward_by_hand(cache="swapped"), "this matches the cache (x, h, z, params); the "
         "order is (x, z, h, params)."),
    Hint(_forward_by_hand(transposed=False), "this matches x @ W1 without the transpose: W1 "
         "has shape (H, d_in), the layout of nn.Linear, so z = x @ W1.T + b1 (and y = h @ W2.T "
         "+ b2)."),
    Hint(_forward_by_hand(dtype=torch.float32), "this matches an nn.Linear layer (float32 "
         "parameters by default) applied to the float64 x. The exercise asks for tensor "
         "operations on the given parameters, x @ W1.T + b1, without nn layers."),
)


def _reference_mlp_backward_keys(keys):
    def reference(dout, cache):
        grads = _autograd_mlp_backward(dout, cache)
        return {k: grads[k] for k in keys}
    return reference


register(
    Check("mlp_forward", "output", "computes Linear → ReLU → Linear like F.linear and relu",
          _mlp_cases, _reference_mlp_forward, run=_run_mlp_output, hints=_FORWARD_HINTS),
    Check("mlp_forward", "cache", "returns the cache (x, z, h, params)",
          _mlp_cases, _reference_mlp_forward, run=_run_mlp_cache, hints=_FORWARD_HINTS,
          levels=("cache item",)),
    Check("mlp_backward", "output_layer", "gives autograd's gradients of W2 and b2",
          _mlp_cases, _reference_mlp_backward_keys(("W2", "b2")), hints=_MLP_HINTS,
          run=_run_mlp_backward(("W2", "b2"))),
    Check("mlp_backward", "hidden_layer", "gives autograd's gradients of W1 and b1",
          _mlp_cases, _reference_mlp_backward_keys(("W1", "b1")), hints=_MLP_HINTS,
          run=_run_mlp_backward(("W1", "b1")), points=2),
    Check("mlp_backward", "input", "gives autograd's gradient of the input x",
          _mlp_cases, _reference_mlp_backward_keys(("x",)), hints=_MLP_HINTS,
          run=_run_mlp_backward(("x",))),
)

# "Tensor operations only (`@`, `.T`, `torch.relu` or `clamp`); no `nn` layers." (nn.Linear calls
# F.linear, so forbidding F.linear covers both.)
forbid("mlp_forward", "torch.nn.functional.linear")
# "No autograd" (mlp_backward's instructions).
forbid("mlp_backward", "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward")
