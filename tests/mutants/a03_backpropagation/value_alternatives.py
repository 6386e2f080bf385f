"""Value: correct answers written differently."""

import math
import sys

from tests.mutants import alternative

# --------------------------------------------------------------------------- Value (alternatives)


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



@alternative("Value")
class ValueUserCounts:
    """Kahn's algorithm on counts of users, closures for the rules, numbers lifted in one place,
    and every reversed operation spelled out with its own node."""

    def __init__(self, data, _children=()):
        self.data, self.grad = float(data), 0.0
        self._prev, self._backward = tuple(_children), lambda: None

    @classmethod
    def _lift(cls, o):
        return o if isinstance(o, cls) else cls(o)

    def _unary(self, data, local):
        out = ValueUserCounts(data, (self,))

        def _backward():
            self.grad += local * out.grad
        out._backward = _backward
        return out

    def __add__(self, o):
        o = self._lift(o)
        out = ValueUserCounts(self.data + o.data, (self, o))

        def _backward():
            self.grad += out.grad
            o.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, o):
        o = self._lift(o)
        out = ValueUserCounts(self.data * o.data, (self, o))

        def _backward():
            self.grad += o.data * out.grad
            o.grad += self.data * out.grad
        out._backward = _backward
        return out

    def __pow__(self, p):
        return self._unary(self.data ** p, p * self.data ** (p - 1))

    def exp(self):
        e = math.exp(self.data)
        return self._unary(e, e)

    def log(self):
        return self._unary(math.log(self.data), 1.0 / self.data)

    def tanh(self):
        t = math.tanh(self.data)
        return self._unary(t, 1.0 - t * t)

    def relu(self):
        return self._unary(max(self.data, 0.0), 1.0 if self.data > 0 else 0.0)

    def __neg__(self):
        return self * -1

    def __sub__(self, o):
        return self + (-self._lift(o))

    def __truediv__(self, o):
        return self * self._lift(o) ** -1

    __radd__ = __add__
    __rmul__ = __mul__

    def __rsub__(self, o):
        return self._lift(o) - self

    def __rtruediv__(self, o):
        return self._lift(o) / self

    def backward(self):
        users, stack, seen = {}, [self], {self}
        while stack:
            node = stack.pop()
            for c in node._prev:
                users[c] = users.get(c, 0) + 1
                if c not in seen:
                    seen.add(c)
                    stack.append(c)
        self.grad = 1.0
        ready = [self]
        while ready:
            node = ready.pop()
            node._backward()
            for c in node._prev:
                users[c] -= 1
                if users[c] == 0:
                    ready.append(c)
