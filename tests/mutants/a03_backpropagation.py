"""Assignment 03: mistakes a learner might make, and correct answers written differently."""

import math
import sys

import torch
import torch.nn.functional as F

from tests.mutants import alternative, mutant

# --------------------------------------------------------------------------- Value

# The first Value mutant fails every Value check and is self-contained: the end-to-end test
# pastes its source into the notebook in place of the learner's cell.


@mutant("Value", fails=("forward", "ops", "shared_nodes", "deep_chain"))
class ValueRsubBackwards:
    """`2 - v` computed as v - 2: __rsub__ forgets that the number is on the left."""

    def __init__(self, data, _children=()):
        self.data = float(data)
        self.grad = 0.0
        self._prev = tuple(_children)
        self._backward = lambda: None

    def _lift(self, other):
        return other if isinstance(other, type(self)) else type(self)(other)

    def __add__(self, other):
        other = self._lift(other)
        out = type(self)(self.data + other.data, (self, other))

        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = self._lift(other)
        out = type(self)(self.data * other.data, (self, other))

        def _backward():
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, p):
        out = type(self)(self.data ** p, (self,))

        def _backward():
            self.grad += p * self.data ** (p - 1) * out.grad
        out._backward = _backward
        return out

    def _unary(self, value, local):
        out = type(self)(value, (self,))

        def _backward():
            self.grad += local * out.grad
        out._backward = _backward
        return out

    def exp(self):
        e = math.exp(self.data)
        return self._unary(e, e)

    def log(self):
        return self._unary(math.log(self.data), 1.0 / self.data)

    def tanh(self):
        t = math.tanh(self.data)
        return self._unary(t, 1.0 - t * t)

    def relu(self):
        return self._unary(max(self.data, 0.0), float(self.data > 0))

    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __truediv__(self, other):
        return self * other ** -1

    def __radd__(self, other):
        return self + other

    def __rsub__(self, other):
        return self - other  # the mistake: other - self was meant

    def __rmul__(self, other):
        return self * other

    def __rtruediv__(self, other):
        return self ** -1 * other

    def backward(self):
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif node not in seen:
                seen.add(node)
                stack.append((node, True))
                stack.extend((c, False) for c in node._prev)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def _value_class(name, *, overwrite=False, traversal="topo", chain=True, seed_one=True,
                 tanh_local=None, log_local=None, pow_local=None, rtruediv=None):
    """A Value written in the usual way, with the requested mistakes switched on."""

    class V:
        def __init__(self, data, _children=()):
            self.data = float(data)
            self.grad = 0.0
            self._prev = tuple(_children)
            self._backward = lambda: None

        def _give(self, node, g):
            if overwrite:
                node.grad = g
            else:
                node.grad += g

        def _node(self, data, locals_):
            out = V(data, tuple(c for c, _ in locals_))

            def _backward():
                for child, local in locals_:
                    self._give(child, local * out.grad if chain else local)
            out._backward = _backward
            return out

        @staticmethod
        def _lift(o):
            return o if isinstance(o, V) else V(o)

        def __add__(self, o):
            o = self._lift(o)
            return self._node(self.data + o.data, [(self, 1.0), (o, 1.0)])

        def __mul__(self, o):
            o = self._lift(o)
            return self._node(self.data * o.data, [(self, o.data), (o, self.data)])

        def __pow__(self, p):
            x = self.data
            local = pow_local(x, p) if pow_local else p * x ** (p - 1)
            return self._node(x ** p, [(self, local)])

        def exp(self):
            e = math.exp(self.data)
            return self._node(e, [(self, e)])

        def log(self):
            x = self.data
            return self._node(math.log(x), [(self, log_local(x) if log_local else 1.0 / x)])

        def tanh(self):
            x, t = self.data, math.tanh(self.data)
            return self._node(t, [(self, tanh_local(x, t) if tanh_local else 1.0 - t * t)])

        def relu(self):
            return self._node(max(self.data, 0.0), [(self, float(self.data > 0))])

        def __neg__(self):
            return self * -1.0

        def __sub__(self, o):
            return self + (-o)

        def __truediv__(self, o):
            return self * o ** -1

        def __radd__(self, o):
            return self + o

        def __rsub__(self, o):
            return -self + o

        def __rmul__(self, o):
            return self * o

        def __rtruediv__(self, o):
            return rtruediv(self, o) if rtruediv else self ** -1 * o

        def backward(self):
            if seed_one:
                self.grad = 1.0
            if traversal == "revisit":  # no topological order: a node runs once per path
                stack = [self]
                while stack:
                    node = stack.pop()
                    node._backward()
                    stack.extend(node._prev)
            elif traversal == "bfs":  # each node once, breadth first
                queue, seen = [self], {self}
                for node in queue:
                    node._backward()
                    for c in node._prev:
                        if c not in seen:
                            seen.add(c)
                            queue.append(c)
            elif traversal == "recursive":  # the textbook recursive topological sort
                order, seen = [], set()

                def visit(node):
                    if node not in seen:
                        seen.add(node)
                        for c in node._prev:
                            visit(c)
                        order.append(node)
                visit(self)
                for node in reversed(order):
                    node._backward()
            else:
                order, seen, stack = [], set(), [(self, False)]
                while stack:
                    node, done = stack.pop()
                    if done:
                        order.append(node)
                    elif node not in seen:
                        seen.add(node)
                        stack.append((node, True))
                        stack.extend((c, False) for c in node._prev)
                for node in reversed(order):
                    node._backward()

    V.__name__ = V.__qualname__ = name
    return V


mutant("Value", hint="instead of accumulating", fails=("shared_nodes", "deep_chain"))(
    _value_class("ValueOverwrite", overwrite=True))
mutant("Value", hint="without a topological order", fails=("shared_nodes",))(
    _value_class("ValueNoTopologicalOrder", traversal="revisit"))
mutant("Value", hint="breadth-first", fails=("shared_nodes",))(
    _value_class("ValueBreadthFirst", traversal="bfs"))
mutant("Value", hint="RecursionError", fails=("deep_chain",))(
    _value_class("ValueRecursiveSort", traversal="recursive"))
mutant("Value", hint="out.grad", fails=("ops", "shared_nodes", "deep_chain"))(
    _value_class("ValueNoChainRule", chain=False))
mutant("Value", fails=("ops",))(_value_class("ValueNoSeed", seed_one=False))
mutant("Value", fails=("ops",))(_value_class("ValueTanhWithX", tanh_local=lambda x, t: 1 - x * x))
mutant("Value", fails=("ops",))(_value_class("ValueLogLocalLog", log_local=lambda x: math.log(x)))
mutant("Value", fails=("ops",))(_value_class("ValuePowLocal", pow_local=lambda x, p: p * x ** p))
mutant("Value", fails=("forward", "ops"))(
    _value_class("ValueRtruedivFlipped", rtruediv=lambda self, o: self * (1.0 / o)))


@alternative("Value")
class ValueKahnWithSlots:
    """Local derivatives stored as numbers (no closures), Kahn's algorithm for the order, and
    subtraction and division with their own rules."""

    __slots__ = ("data", "grad", "children", "locals", "__weakref__")

    def __init__(self, data, children=(), locals_=()):
        self.data, self.grad = float(data), 0.0
        self.children, self.locals = children, locals_

    @classmethod
    def lift(cls, o):
        return o if isinstance(o, cls) else cls(o)

    def __add__(self, o):
        o = self.lift(o)
        return ValueKahnWithSlots(self.data + o.data, (self, o), (1.0, 1.0))

    __radd__ = __add__

    def __sub__(self, o):
        o = self.lift(o)
        return ValueKahnWithSlots(self.data - o.data, (self, o), (1.0, -1.0))

    def __rsub__(self, o):
        return self.lift(o) - self

    def __mul__(self, o):
        o = self.lift(o)
        return ValueKahnWithSlots(self.data * o.data, (self, o), (o.data, self.data))

    __rmul__ = __mul__

    def __truediv__(self, o):
        o = self.lift(o)
        return ValueKahnWithSlots(self.data / o.data, (self, o),
                                  (1.0 / o.data, -self.data / o.data ** 2))

    def __rtruediv__(self, o):
        return self.lift(o) / self

    def __neg__(self):
        return ValueKahnWithSlots(-self.data, (self,), (-1.0,))

    def __pow__(self, p):
        return ValueKahnWithSlots(self.data ** p, (self,), (p * self.data ** (p - 1),))

    def exp(self):
        e = math.exp(self.data)
        return ValueKahnWithSlots(e, (self,), (e,))

    def log(self):
        return ValueKahnWithSlots(math.log(self.data), (self,), (1.0 / self.data,))

    def tanh(self):
        t = math.tanh(self.data)
        return ValueKahnWithSlots(t, (self,), (1.0 - t * t,))

    def relu(self):
        return ValueKahnWithSlots(self.data if self.data > 0 else 0.0, (self,),
                                  (1.0 if self.data > 0 else 0.0,))

    def backward(self):
        users = {id(self): 0}  # how many times each node is used by nodes above it
        nodes, stack = {id(self): self}, [self]
        while stack:
            node = stack.pop()
            for c in node.children:
                if id(c) not in nodes:
                    nodes[id(c)] = c
                    users[id(c)] = 0
                    stack.append(c)
                users[id(c)] += 1
        self.grad = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            for c, local in zip(node.children, node.locals):
                c.grad += local * node.grad
                users[id(c)] -= 1
                if users[id(c)] == 0:
                    ready.append(c)


@alternative("Value")
class ValueRecursiveWithHigherLimit:
    """A recursive topological sort that raises the recursion limit for the duration."""

    def __init__(self, data, _children=()):
        self.data, self.grad, self._prev = float(data), 0.0, _children
        self._backward = lambda: None

    def _op(self, data, pairs):
        out = ValueRecursiveWithHigherLimit(data, tuple(c for c, _ in pairs))

        def _backward():
            for c, local in pairs:
                c.grad += local * out.grad
        out._backward = _backward
        return out

    def _lift(self, o):
        return o if isinstance(o, ValueRecursiveWithHigherLimit) else ValueRecursiveWithHigherLimit(o)

    def __add__(self, o):
        o = self._lift(o)
        return self._op(self.data + o.data, [(self, 1.0), (o, 1.0)])

    def __mul__(self, o):
        o = self._lift(o)
        return self._op(self.data * o.data, [(self, o.data), (o, self.data)])

    def __pow__(self, p):
        return self._op(self.data ** p, [(self, p * self.data ** (p - 1))])

    def exp(self):
        return self._op(math.exp(self.data), [(self, math.exp(self.data))])

    def log(self):
        return self._op(math.log(self.data), [(self, 1 / self.data)])

    def tanh(self):
        return self._op(math.tanh(self.data), [(self, 1 - math.tanh(self.data) ** 2)])

    def relu(self):
        return self._op(max(0.0, self.data), [(self, 1.0 if self.data > 0 else 0.0)])

    __radd__ = __add__
    __rmul__ = __mul__

    def __neg__(self):
        return self * -1

    def __sub__(self, o):
        return self + -self._lift(o)

    def __rsub__(self, o):
        return self._lift(o) - self

    def __truediv__(self, o):
        return self * self._lift(o) ** -1

    def __rtruediv__(self, o):
        return self._lift(o) * self ** -1

    def backward(self):
        order, seen = [], set()

        def visit(node):
            if node not in seen:
                seen.add(node)
                for c in node._prev:
                    visit(c)
                order.append(node)
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))
        try:
            visit(self)
        finally:
            sys.setrecursionlimit(limit)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


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


@mutant("mlp_forward", fails=("output", "cache"))
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


# --------------------------------------------------------------------------- cross_entropy_backward


@mutant("cross_entropy_backward", hint="without the 1/N", fails=("values",))
def ce_backward_no_mean(logits, targets):
    return torch.softmax(logits, 1) - F.one_hot(targets, logits.shape[1]).to(logits.dtype)


@mutant("cross_entropy_backward", hint="without subtracting", fails=("values",))
def ce_backward_softmax_only(logits, targets):
    return torch.softmax(logits, 1) / len(targets)


@mutant("cross_entropy_backward", hint="batch dimension", fails=("values",))
def ce_backward_softmax_dim0(logits, targets):
    p = torch.softmax(logits, 0)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)


@mutant("cross_entropy_backward", hint="overflows", fails=("stable",))
def ce_backward_naive_exp(logits, targets):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    p[torch.arange(len(targets)), targets] -= 1
    return p / len(targets)


@mutant("cross_entropy_backward", fails=("values",))
def ce_backward_wrong_sign(logits, targets):
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (onehot - torch.softmax(logits, 1)) / len(targets)


@alternative("cross_entropy_backward")
def ce_backward_from_log_softmax(logits, targets):
    logp = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (logp.exp() - onehot) / logits.shape[0]


# --------------------------------------------------------------------------- linear_flops


@mutant("linear_flops", hint="one FLOP", fails=("forward", "backward"))
def flops_multiply_adds(batch, d_in, d_out):
    return batch * d_in * d_out, 2 * batch * d_in * d_out


@mutant("linear_flops", hint="only one product", fails=("backward",))
def flops_backward_like_forward(batch, d_in, d_out):
    return 2 * batch * d_in * d_out, 2 * batch * d_in * d_out


@mutant("linear_flops", fails=("forward",))
def flops_with_bias(batch, d_in, d_out):
    return 2 * batch * d_in * d_out + batch * d_out, 4 * batch * d_in * d_out


@alternative("linear_flops")
def flops_from_shapes(batch, d_in, d_out):
    multiply_adds = math.prod((batch, d_in, d_out))
    products_in_backward = 2
    return 2 * multiply_adds, products_in_backward * 2 * multiply_adds
