"""numerical_gradient and gradient_check: mistakes a learner might make, and correct answers."""

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- numerical_gradient


@mutant("numerical_gradient", hint="forward differences", fails=("values",))
def numgrad_forward_difference(f, x, eps=1e-6):
    x = x.clone()
    g = torch.zeros_like(x)
    f0 = f(x).item()
    for i in range(x.numel()):
        old = x.view(-1)[i].item()
        x.view(-1)[i] = old + eps
        g.view(-1)[i] = (f(x).item() - f0) / eps
        x.view(-1)[i] = old
    return g


@mutant("numerical_gradient", hint="changed x", fails=("input_unchanged",))
def numgrad_add_subtract_in_place(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(x.numel()):
        flat[i] += eps
        plus = f(x).item()
        flat[i] -= 2 * eps
        minus = f(x).item()
        flat[i] += eps
        g.view(-1)[i] = (plus - minus) / (2 * eps)
    return g


@mutant("numerical_gradient", fails=("values",))
def numgrad_float32(f, x, eps=1e-6):
    x32 = x.float().clone()
    g = torch.zeros_like(x32)
    for i in range(x32.numel()):
        e = torch.zeros_like(x32).view(-1)
        e[i] = eps
        g.view(-1)[i] = (f(x32 + e.view_as(x32)) - f(x32 - e.view_as(x32))) / (2 * eps)
    return g.to(x.dtype)


@mutant("numerical_gradient", fails=("values", "any_shape"))
def numgrad_divides_by_eps(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros(x.numel(), dtype=x.dtype)
        e[i] = eps
        e = e.view_as(x)
        g.view(-1)[i] = (f(x + e) - f(x - e)) / eps
    return g


@mutant("numerical_gradient", fails=("any_shape",))
def numgrad_flat_output(f, x, eps=1e-6):
    out = []
    for i in range(x.numel()):
        e = torch.zeros(x.numel(), dtype=x.dtype)
        e[i] = eps
        out.append((f(x + e.view_as(x)) - f(x - e.view_as(x))).item() / (2 * eps))
    return torch.tensor(out, dtype=x.dtype)


@alternative("numerical_gradient")
def numgrad_with_basis(f, x, eps=1e-6):
    basis = torch.eye(x.numel(), dtype=x.dtype) * eps
    values = [(f(x + b.view_as(x)) - f(x - b.view_as(x))) / (2 * eps) for b in basis]
    return torch.stack(values).view_as(x)


@alternative("numerical_gradient")
def numgrad_restores_saved_value(f, x, eps=1e-6):
    flat = x.view(-1)  # perturbs x itself, and puts every entry back exactly
    grad = torch.empty_like(flat)
    for i in range(flat.numel()):
        saved = flat[i].clone()
        flat[i] = saved + eps
        up = float(f(x))
        flat[i] = saved - eps
        down = float(f(x))
        flat[i] = saved
        grad[i] = (up - down) / (2 * eps)
    return grad.view(x.shape)


# --------------------------------------------------------------------------- gradient_check


def _central(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    for i in range(x.numel()):
        e = torch.zeros(x.numel(), dtype=x.dtype)
        e[i] = eps
        e = e.view_as(x)
        g.view(-1)[i] = (f(x + e) - f(x - e)) / (2 * eps)
    return g


def _analytic(f, x):
    xr = x.detach().clone().requires_grad_(True)
    return torch.autograd.grad(f(xr), xr)[0]


@mutant("gradient_check", hint="absolute", fails=("finds_bugs",))
def gradcheck_absolute_error(f, x):
    return (_analytic(f, x) - _central(f, x)).abs().max().item()


@mutant("gradient_check", hint="mean", fails=("finds_bugs",))
def gradcheck_mean_error(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).abs() / torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)).mean().item()


@mutant("gradient_check", fails=("finds_bugs",))
def gradcheck_relative_to_numeric(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).abs() / n.abs().clamp_min(1e-12)).max().item()


@mutant("gradient_check", fails=("finds_bugs",))
def gradcheck_always_zero(f, x):
    return 0.0


@alternative("gradient_check")
def gradcheck_python_loop(f, x):
    a = _analytic(f, x).reshape(-1).tolist()
    n = _central(f, x).reshape(-1).tolist()
    return max(abs(ai - ni) / max(abs(ai), abs(ni), 1e-12) for ai, ni in zip(a, n))


# Mistakes named by the hints of i14 (appended after each exercise's existing ones).


def _one_at_a_time(f, x, eps, *, divide=2.0):
    copy, g = x.clone(), torch.zeros_like(x)
    flat = copy.view(-1)
    for i in range(x.numel()):
        saved = flat[i].item()
        flat[i] = saved + eps
        plus = f(copy).item()
        flat[i] = saved - eps
        minus = f(copy).item()
        flat[i] = saved
        g.view(-1)[i] = (plus - minus) / (divide * eps)
    return g


@mutant("numerical_gradient", hint="twice the gradient", fails=("values", "any_shape"))
def numgrad_over_eps_named(f, x, eps=1e-6):
    return _one_at_a_time(f, x, eps, divide=1.0)


@mutant("numerical_gradient", hint="every entry at once", fails=("values",))
def numgrad_all_entries_at_once(f, x, eps=1e-6):
    d = (f(x + eps) - f(x - eps)) / (2 * eps)
    return torch.ones_like(x) * d


@mutant("numerical_gradient", hint="calling f on the flattened x", fails=("any_shape",))
def numgrad_f_of_flat(f, x, eps=1e-6):
    flat = x.reshape(-1).clone()
    g = torch.zeros_like(flat)
    for i in range(flat.numel()):
        saved = flat[i].item()
        flat[i] = saved + eps
        plus = f(flat).item()
        flat[i] = saved - eps
        minus = f(flat).item()
        flat[i] = saved
        g[i] = (plus - minus) / (2 * eps)
    return g.view_as(x)


@mutant("numerical_gradient", hint="perturbing x[i] for i < x.shape[0]", fails=("any_shape",))
def numgrad_first_index_only(f, x, eps=1e-6):
    copy, g = x.clone(), torch.zeros_like(x)
    for i in range(x.shape[0]):
        saved = copy[i].clone()
        copy[i] = saved + eps
        plus = f(copy)
        copy[i] = saved - eps
        minus = f(copy)
        copy[i] = saved
        g[i] = (plus - minus) / (2 * eps)
    return g


@mutant("numerical_gradient", hint="a step of 1e-3", fails=("values",))
def numgrad_fixed_step(f, x, eps=1e-6):
    return _one_at_a_time(f, x, 1e-3)


@mutant("numerical_gradient", hint="a float32 result", fails=("values",))
def numgrad_float32_named(f, x, eps=1e-6):
    return _one_at_a_time(f, x, eps).float()


@mutant("gradient_check", hint="without the 1e-12", fails=("correct_is_tiny",))
def gradcheck_no_floor(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).abs() / torch.maximum(a.abs(), n.abs())).max().item()


@mutant("gradient_check", hint="|a| + |n|", fails=("finds_bugs",))
def gradcheck_sum_of_magnitudes(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).abs() / (a.abs() + n.abs()).clamp_min(1e-12)).max().item()


@mutant("gradient_check", hint="dividing by |a| alone", fails=("finds_bugs",))
def gradcheck_relative_to_analytic(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).abs() / a.abs().clamp_min(1e-12)).max().item()


@mutant("gradient_check", hint="ratio of norms", fails=("finds_bugs",))
def gradcheck_norms(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).norm() / max(a.norm().item(), n.norm().item(), 1e-12)).item()


@mutant("gradient_check", hint="returning a tensor", fails=("correct_is_tiny",))
def gradcheck_returns_tensor(f, x):
    a, n = _analytic(f, x), _central(f, x)
    return ((a - n).abs() / torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)).max()


@alternative("gradient_check")
def gradcheck_with_torch_where(f, x):
    a, n = _analytic(f, x), _central(f, x)
    scale = torch.where(a.abs() > n.abs(), a.abs(), n.abs()).clamp_min(1e-12)
    return float(((a - n).abs() / scale).amax())


# Mistakes written by testers who had not seen the hints (appended: the order above is kept).


@mutant("numerical_gradient", hint="never putting the entries back", fails=("values",))
def numgrad_perturbs_x_never_restored(f, x, eps=1e-6):
    flat = x.view(-1)
    grad = torch.zeros_like(flat)
    for i in range(flat.numel()):
        flat[i] += eps
        fp = f(x).item()
        flat[i] -= 2 * eps
        fm = f(x).item()
        grad[i] = (fp - fm) / (2 * eps)
    return grad.reshape(x.shape)


@mutant("numerical_gradient", hint="the second call saw x itself", fails=("values",))
def numgrad_minus_side_at_x(f, x, eps=1e-6):
    xc = x.clone().reshape(-1)
    grad = torch.zeros_like(xc)
    for i in range(xc.numel()):
        old = xc[i].item()
        xc[i] = old + eps
        fp = f(xc.reshape(x.shape)).item()
        xc[i] -= eps
        fm = f(xc.reshape(x.shape)).item()
        xc[i] = old
        grad[i] = (fp - fm) / (2 * eps)
    return grad.reshape(x.shape)


def _relative(a, n):
    return ((a - n).abs() / torch.maximum(a.abs(), n.abs()).clamp_min(1e-12)).max().item()


@mutant("gradient_check", hint="a step much larger than 1e-6", fails=("finds_bugs",))
def gradcheck_large_step(f, x):
    return _relative(_analytic(f, x), _central(f, x, eps=1e-2))


@mutant("gradient_check", hint="converting x to float32", fails=("finds_bugs", "correct_is_tiny"))
def gradcheck_in_float32(f, x):
    x32 = x.float()
    return _relative(_analytic(f, x32), _central(f, x32))


@mutant("gradient_check", hint="on the caller's x", fails=("input_unchanged",))
def gradcheck_requires_grad_on_caller(f, x):
    x.requires_grad_(True)
    (a,) = torch.autograd.grad(f(x), x)
    return _relative(a, _central(f, x.detach()))


@mutant("gradient_check", fails=("input_unchanged",))
def gradcheck_backward_on_caller(f, x):
    x.requires_grad_(True)
    f(x).backward()
    return _relative(x.grad, _central(f, x.detach()))


@alternative("numerical_gradient")
def numgrad_ndindex(f, x, eps=1e-6):
    import numpy as np

    xc, grad = x.detach().clone(), torch.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        keep = xc[idx].item()
        xc[idx] = keep + eps
        up = f(xc).item()
        xc[idx] = keep - eps
        down = f(xc).item()
        xc[idx] = keep
        grad[idx] = (up - down) / (2 * eps)
    return grad


@alternative("gradient_check")
def gradcheck_backward_on_copy(f, x):
    xr = x.detach().clone().requires_grad_()
    f(xr).backward()
    a, n = xr.grad.reshape(-1).tolist(), _central(f, x).reshape(-1).tolist()
    return float(max(abs(ai - ni) / max(abs(ai), abs(ni), 1e-12) for ai, ni in zip(a, n)))
