"""Assignment 02, gradient_descent: mistakes a learner might make, and correct answers written
differently.

The first mutant here is pasted into a notebook by the nbgrader end-to-end test, so it only uses
what the notebook's first cell imports (torch).
"""

import torch

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- gradient_descent


@mutant("gradient_descent", hint="climbs the loss")
def gd_ascent(loss_fn, theta0, lr, steps):
    theta = theta0.detach().clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        (grad,) = torch.autograd.grad(loss, theta)
        losses.append(loss.item())
        theta = (theta + lr * grad).detach()
    return theta, losses


@mutant("gradient_descent", hint="gradients that accumulate")
def gd_never_zeroes_grad(loss_fn, theta0, lr, steps):
    theta = theta0.clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            theta -= lr * theta.grad
    return theta.detach(), losses


@mutant("gradient_descent", hint="after each update", fails=("losses",))
def gd_loss_after_update(loss_fn, theta0, lr, steps):
    theta = theta0.clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        grad = torch.autograd.grad(loss_fn(theta), theta)[0]
        theta = (theta - lr * grad).detach()
        losses.append(loss_fn(theta).item())
    return theta, losses


@mutant("gradient_descent", hint="steps + 1 losses", fails=("losses",))
def gd_one_loss_too_many(loss_fn, theta0, lr, steps):
    theta = theta0.clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        losses.append(loss.item())
        theta = (theta - lr * torch.autograd.grad(loss, theta)[0]).detach()
    losses.append(loss_fn(theta).item())
    return theta, losses


@mutant("gradient_descent", fails=("theta",))
def gd_modifies_theta0(loss_fn, theta0, lr, steps):
    losses = []
    for _ in range(steps):
        theta = theta0.detach().requires_grad_(True)
        loss = loss_fn(theta)
        losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta0 -= lr * grad
    return theta0.clone(), losses


@mutant("gradient_descent", fails=("theta",))
def gd_stops_one_step_early(loss_fn, theta0, lr, steps):
    theta = theta0.clone()
    losses = []
    for _ in range(steps):
        theta.requires_grad_(True)
        loss = loss_fn(theta)
        losses.append(loss.item())
        if len(losses) < steps:
            theta = (theta - lr * torch.autograd.grad(loss, theta)[0]).detach()
    return theta.detach(), losses


@alternative("gradient_descent")
def gd_with_backward(loss_fn, theta0, lr, steps):
    theta = theta0.clone().detach().requires_grad_(True)
    losses = torch.zeros(steps, dtype=theta0.dtype)
    for t in range(steps):
        theta.grad = None
        loss = loss_fn(theta)
        loss.backward()
        losses[t] = loss.detach()
        with torch.no_grad():
            theta.sub_(lr * theta.grad)
    return theta.detach(), losses


@alternative("gradient_descent")
def gd_with_torch_func(loss_fn, theta0, lr, steps):
    value_and_grad = torch.func.grad_and_value(loss_fn)
    theta, losses = theta0, []
    for _ in range(steps):
        grad, loss = value_and_grad(theta)
        losses.append(float(loss))
        theta = theta - lr * grad
    return theta, losses


# --------------------------------------------------------------------------- added with the hints
# of the one-hint rule (appended after the mutants above).


@mutant("gradient_descent", hint="updating theta0 itself", fails=("theta",))
def gd_updates_theta0_without_copy(loss_fn, theta0, lr, steps):
    theta = theta0.requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss, theta)
        with torch.no_grad():
            theta -= lr * grad
    return theta.detach(), losses


@mutant("gradient_descent", hint="one update too few", fails=("theta",))
def gd_range_steps_minus_one(loss_fn, theta0, lr, steps):
    theta = theta0.detach().clone().requires_grad_(True)
    losses = [loss_fn(theta).item()] if steps else []
    for _ in range(steps - 1):
        (grad,) = torch.autograd.grad(loss_fn(theta), theta)
        with torch.no_grad():
            theta -= lr * grad
        losses.append(loss_fn(theta).item())
    return theta.detach(), losses


@mutant("gradient_descent", hint="still requires grad", fails=("theta",))
def gd_returns_theta_with_grad(loss_fn, theta0, lr, steps):
    theta = theta0.detach().clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        (grad,) = torch.autograd.grad(loss, theta)
        theta = (theta - lr * grad).detach().requires_grad_(True)
    return theta, losses


@mutant("gradient_descent", hint="losses kept as tensors", fails=("losses",))
def gd_appends_loss_tensors(loss_fn, theta0, lr, steps):
    theta = theta0.detach().clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss)
        (grad,) = torch.autograd.grad(loss, theta, retain_graph=True)
        with torch.no_grad():
            theta -= lr * grad
    return theta.detach(), losses


@alternative("gradient_descent")
def gd_with_data_sub(loss_fn, theta0, lr, steps):
    theta = theta0.detach().clone().requires_grad_()
    losses = []
    for _ in range(steps):
        theta.grad = None
        loss = loss_fn(theta)
        loss.backward()
        losses.append(loss.item())
        theta.data.sub_(lr * theta.grad)
    return theta.detach(), losses


# --------------------------------------------------------------------------- added with the hint
# for an update recorded by autograd (blind testers' answers, ported).


@mutant("gradient_descent", hint="update recorded by autograd", fails=("theta",))
def gd_update_on_graph(loss_fn, theta0, lr, steps):
    theta = theta0.clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        (g,) = torch.autograd.grad(loss, theta, create_graph=False)
        theta = theta - lr * g
    return theta, losses


@mutant("gradient_descent", hint="update recorded by autograd", fails=("theta",))
def gd_update_on_graph_detached_at_return(loss_fn, theta0, lr, steps):
    theta = theta0.clone().requires_grad_(True)
    losses = []
    for _ in range(steps):
        loss = loss_fn(theta)
        losses.append(loss.item())
        theta = theta.sub(lr * torch.autograd.grad(loss, theta)[0])
    return theta.detach(), losses


@alternative("gradient_descent")
def gd_with_torch_optim(loss_fn, theta0, lr, steps):
    theta = torch.nn.Parameter(theta0.clone())
    optimizer = torch.optim.SGD([theta], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(theta)
        losses.append(loss.item())
        loss.backward()
        optimizer.step()
    return theta.detach(), losses
