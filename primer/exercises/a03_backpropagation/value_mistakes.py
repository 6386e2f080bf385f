"""Value: a plain-Python Value with one known mistake switched on, for the hints of value.py."""

from __future__ import annotations

import math


def _scalar_value_class(mistake: str | None = None):
    """A plain-Python Value with one known mistake, for the hints (not the reference)."""

    mistake = mistake or ""
    # "no_wrap_add_mul_int": numbers not turned into Values in + and *, -v as v * -1 (an int)
    unwrapped = mistake[len("no_wrap"):].split("_") if mistake.startswith("no_wrap") else ()

    class V:
        def __init__(self, data, children=(), rule=None):
            self.data, self.grad, self.children, self.rule = float(data), 0.0, children, rule

        def _acc(self, node, g):
            if mistake == "overwrite":
                node.grad = g
            else:
                node.grad += g

        def _make(self, data, pairs):
            """pairs: (child, local derivative)."""
            out = V(data, tuple(c for c, _ in pairs))

            def rule():
                for c, local in pairs:
                    self._acc(c, local if mistake == "no_chain" else local * out.grad)
            out.rule = rule
            return out

        @staticmethod
        def _v(o, op=""):
            if isinstance(o, V) or (op and op in unwrapped):
                return o
            return V(o)

        def __add__(self, o):
            o = self._v(o, "add")
            return self._make(self.data + o.data, [(self, 1.0), (o, 1.0)])

        def __radd__(self, o):
            return self + o

        def __mul__(self, o):
            o = self._v(o, "mul")
            if mistake == "mul_own":  # each factor's own data as its derivative
                return self._make(self.data * o.data, [(self, self.data), (o, o.data)])
            return self._make(self.data * o.data, [(self, o.data), (o, self.data)])

        def __rmul__(self, o):
            return self * o

        def __neg__(self):
            if mistake == "neg_cut":  # a new leaf: the graph is cut
                return V(-self.data)
            return self * (-1 if mistake.endswith("int") else -1.0)

        def __sub__(self, o):
            if mistake == "sub_plus":
                return self + self._v(o)
            if mistake == "sub_cut":  # subtracts the number o.data: no gradient reaches o
                return self + (-self._v(o).data)
            return self + (-self._v(o))

        def __rsub__(self, o):
            if mistake == "rsub_swapped":
                return self + (-self._v(o))
            return self._v(o) + (-self)

        def __pow__(self, p):
            x = self.data
            local = {"pow_no_p": x ** (p - 1), "pow_x_p": p * x ** p}.get(mistake, p * x ** (p - 1))
            return self._make(x ** p, [(self, local)])

        def __truediv__(self, o):
            return self * self._v(o) ** -1

        def __rtruediv__(self, o):
            if mistake == "rdiv_swapped":
                return self * self._v(o) ** -1
            return self._v(o) * self ** -1

        def exp(self):
            e = math.exp(self.data)
            return self._make(e, [(self, self.data if mistake == "exp_x" else e)])

        def log(self):
            x = self.data
            # Only the rule in use is evaluated: 1 / log(x) divides by zero at x = 1, where the
            # correct 1 / x is fine (the correct class is made here too, mistake None).
            rule = {"log_mul": lambda: x, "log_log": lambda: math.log(x),
                    "log_out": lambda: 1.0 / math.log(x)}.get(mistake, lambda: 1.0 / x)
            return self._make(math.log(x), [(self, rule())])

        def tanh(self):
            t = math.tanh(self.data)
            return self._make(t, [(self, 1.0 - self.data ** 2 if mistake == "tanh_x" else 1.0 - t * t)])

        def relu(self):
            # relu_one: 1 for every input but exactly 0, where it would match relu_ge (a mask
            # that is always 1 fails the negative input first, which relu_ge passes)
            mask = {"relu_ge": self.data >= 0, "relu_one": self.data != 0}.get(mistake, self.data > 0)
            return self._make(max(self.data, 0.0), [(self, float(mask))])

        def backward(self):
            if mistake != "no_seed":
                self.grad = 1.0
            if mistake == "revisit":  # no topological order: a node's rule runs once per path
                stack, steps = [self], 0
                while stack:
                    node = stack.pop()
                    steps += 1
                    if steps > 100_000:
                        raise RuntimeError("too many visits")
                    if node.rule:
                        node.rule()
                    stack.extend(node.children)
                return
            if mistake == "bfs":  # each node once, but in breadth-first order
                queue, seen = [self], {id(self)}
                for node in queue:
                    if node.rule:
                        node.rule()
                    for c in node.children:
                        if id(c) not in seen:
                            seen.add(id(c))
                            queue.append(c)
                return
            if mistake == "preorder":  # each node once, in depth-first pre-order
                order, seen, stack = [], set(), [self]
                while stack:
                    node = stack.pop()
                    if id(node) not in seen:
                        seen.add(id(node))
                        order.append(node)
                        stack.extend(node.children)
                for node in order:
                    if node.rule:
                        node.rule()
                return
            order, seen, stack = [], set(), [(self, False)]
            while stack:
                node, done = stack.pop()
                if len(order) > 100_000:
                    raise RuntimeError("too many visits")
                if done:
                    order.append(node)
                elif mistake == "no_visited" or id(node) not in seen:
                    seen.add(id(node))
                    stack.append((node, True))
                    stack.extend((c, False) for c in node.children)
            for node in order if mistake == "not_reversed" else reversed(order):
                if node.rule:
                    node.rule()

    for reflected in ("radd", "rsub", "rmul", "rtruediv"):
        if mistake == f"no_{reflected}":  # the reflected method is missing
            delattr(V, f"__{reflected}__")
    # a missing method's TypeError names the class, which the notebook calls Value
    V.__name__ = "Value" if mistake.startswith("no_r") else f"Value_{mistake}"
    return V
