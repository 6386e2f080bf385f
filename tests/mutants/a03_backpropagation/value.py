"""Value: mistakes a learner might make (the first one is pasted into the notebook end to end)."""

import math

from tests.mutants import mutant

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
                 tanh_local=None, log_local=None, pow_local=None, rtruediv=None, **overrides):
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

    for method, function in overrides.items():  # a method written with a mistake
        setattr(V, method, function)
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


# Mistakes named by the hints of i14 (appended: the order above is kept).


def _override(name, _unused, **methods):
    return _value_class(name, **methods)


def _exp_with_input(self):
    return self._node(math.exp(self.data), [(self, self.data)])


def _log_times_input(self):
    return self._node(math.log(self.data), [(self, self.data)])


def _pow_without_p(self, p):
    return self._node(self.data ** p, [(self, self.data ** (p - 1))])


def _relu_ge(self):
    return self._node(max(self.data, 0.0), [(self, float(self.data >= 0))])


def _sub_without_negation(self, o):
    return self + o


def _rtruediv_swapped(self, o):
    return self / o


def _backward_post_order_not_reversed(self):
    self.grad = 1.0
    order, seen, stack = [], set(), [(self, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            stack.append((node, True))
            stack.extend((c, False) for c in node._prev)
    for node in order:  # leaves first: the reverse is missing
        node._backward()


def _backward_pre_order(self):
    self.grad = 1.0
    order, seen, stack = [], set(), [self]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            order.append(node)
            stack.extend(node._prev)
    for node in order:
        node._backward()


mutant("Value", hint="e^a itself", fails=("ops",))(
    _override("ValueExpWithInput", "ValueExpBase", exp=_exp_with_input))
mutant("Value", hint="log's backward multiplying by a.data", fails=("ops",))(
    _override("ValueLogTimesInput", "ValueLogBase", log=_log_times_input))
mutant("Value", hint="without the factor p", fails=("ops",))(
    _override("ValuePowWithoutP", "ValuePowBase", __pow__=_pow_without_p))
mutant("Value", hint="(a.data >= 0)", fails=("ops",))(
    _override("ValueReluAtZero", "ValueReluBase", relu=_relu_ge))
mutant("Value", hint="a - b computed as a + b", fails=("forward", "ops"))(
    _override("ValueSubWithoutNegation", "ValueSubBase", __sub__=_sub_without_negation))
mutant("Value", hint="`2 / v` computed as v / 2", fails=("forward", "ops"))(
    _override("ValueRtruedivSwapped", "ValueRdivBase", __rtruediv__=_rtruediv_swapped))
mutant("Value", hint="post-order itself", fails=("ops", "shared_nodes"))(
    _override("ValuePostOrderNotReversed", "ValuePostBase", backward=_backward_post_order_not_reversed))
mutant("Value", fails=("shared_nodes",))(
    _override("ValuePreOrder", "ValuePreBase", backward=_backward_pre_order))
mutant("Value", hint="leaves its own grad at 0", fails=("ops",))(
    _value_class("ValueNoSeedNamed", seed_one=False))
mutant("Value", hint="tanh's backward written with the input", fails=("ops",))(
    _value_class("ValueTanhWithXNamed", tanh_local=lambda x, t: 1 - x * x))
mutant("Value", hint="log's backward using ln a", fails=("ops",))(
    _value_class("ValueLogLocalLogNamed", log_local=lambda x: math.log(x)))
mutant("Value", hint="with a.data**p", fails=("ops",))(
    _value_class("ValuePowLocalNamed", pow_local=lambda x, p: p * x ** p))
mutant("Value", hint="depth-first pre-order", fails=("shared_nodes",))(
    _value_class("ValuePreOrderNamed", backward=_backward_pre_order))


def _backward_without_visited_set(self):
    self.grad = 1.0
    order, stack = [], [(self, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in node._prev)
    for node in reversed(order):
        node._backward()


mutant("Value", hint="without a `visited` set", fails=("shared_nodes",))(
    _value_class("ValueNoVisitedSet", backward=_backward_without_visited_set))
