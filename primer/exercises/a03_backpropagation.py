"""Assignment 03, primer §3.3: backpropagation: scalar autograd, gradient checks, manual backward.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). Mutants used to test these checks:
tests/mutants/a03_backpropagation.py.

`Value` is a class. Its cases are *programs*: a list of leaf values and a list of operations whose
operands are earlier nodes (so a node can feed several others) or Python numbers. `run` executes
the program with the class it is given, calls `backward()` on the last node and returns the data
of the nodes or the gradients of the leaves as float64 tensors. The reference is the same program
executed by `_TorchValue`, a thin adapter over 0-d float64 tensors differentiated by
torch.autograd.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from primer.exercises._common import randint, randn
from primer.grading import Case, Check, Hint, register
from primer.rules import forbid

# --------------------------------------------------------------------------- Value: programs

# Operations of a program. Binary ops take two node indices; "…_c" ops and the reversed ops take a
# node index and a Python number (reversed: the number is on the left, so Python calls
# Value.__radd__, __rsub__, ...); unary ops take a node index.
_APPLY = {
    "add": lambda n, i, j: n[i] + n[j],
    "sub": lambda n, i, j: n[i] - n[j],
    "mul": lambda n, i, j: n[i] * n[j],
    "div": lambda n, i, j: n[i] / n[j],
    "add_c": lambda n, i, c: n[i] + c,
    "sub_c": lambda n, i, c: n[i] - c,
    "mul_c": lambda n, i, c: n[i] * c,
    "div_c": lambda n, i, c: n[i] / c,
    "radd": lambda n, i, c: c + n[i],
    "rsub": lambda n, i, c: c - n[i],
    "rmul": lambda n, i, c: c * n[i],
    "rdiv": lambda n, i, c: c / n[i],
    "pow": lambda n, i, c: n[i] ** c,
    "neg": lambda n, i: -n[i],
    "exp": lambda n, i: n[i].exp(),
    "log": lambda n, i: n[i].log(),
    "tanh": lambda n, i: n[i].tanh(),
    "relu": lambda n, i: n[i].relu(),
}
_FORMAT = {
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "add_c": "{0} + {c}", "sub_c": "{0} - {c}", "mul_c": "{0} * {c}", "div_c": "{0} / {c}",
    "radd": "{c} + {0}", "rsub": "{c} - {0}", "rmul": "{c} * {0}", "rdiv": "{c} / {0}",
    "pow": "{0} ** {c}", "neg": "-{0}", "exp": "{0}.exp()", "log": "{0}.log()",
    "tanh": "{0}.tanh()", "relu": "{0}.relu()",
}
_BINARY = ("add", "sub", "mul", "div")
_CONST = ("add_c", "sub_c", "mul_c", "div_c", "radd", "rsub", "rmul", "rdiv", "pow")
_UNARY = ("neg", "exp", "log", "tanh", "relu")
ALL_OPS = _BINARY + _CONST + _UNARY
_EXPONENTS = (2, 3, -1, 0.5, 1.5, -0.5)


class _Float:
    """Plain Python floats with the Value interface: used only to keep generated programs valid."""

    __slots__ = ("data",)

    def __init__(self, data):
        self.data = data

    def __add__(self, o):
        return _Float(self.data + _d(o))

    __radd__ = __add__

    def __sub__(self, o):
        return _Float(self.data - _d(o))

    def __rsub__(self, o):
        return _Float(_d(o) - self.data)

    def __mul__(self, o):
        return _Float(self.data * _d(o))

    __rmul__ = __mul__

    def __truediv__(self, o):
        return _Float(self.data / _d(o))

    def __rtruediv__(self, o):
        return _Float(_d(o) / self.data)

    def __pow__(self, p):
        return _Float(self.data ** p)

    def __neg__(self):
        return _Float(-self.data)

    def exp(self):
        return _Float(math.exp(self.data))

    def log(self):
        return _Float(math.log(self.data))

    def tanh(self):
        return _Float(math.tanh(self.data))

    def relu(self):
        return _Float(max(self.data, 0.0))


def _d(o):
    return o.data if isinstance(o, _Float) else o


class _Floats:
    """vals[i] as a _Float, made only when an operation asks for it."""

    def __init__(self, vals):
        self.vals = vals

    def __getitem__(self, i):
        return _Float(self.vals[i])


def _apply_float(op, vals, args) -> float:
    return _APPLY[op](_Floats(vals), *args).data


def _valid(op: str, vals: list[float], args: tuple) -> bool:
    """Keep away from domain edges (log of ≤0, division by ~0, ReLU's kink) and large values."""
    v = vals[args[0]]
    if op == "div" and abs(vals[args[1]]) < 0.5:
        return False
    if op == "rdiv" and abs(v) < 0.5:
        return False
    if op == "log" and v < 0.2:
        return False
    if op == "pow" and (args[1] != int(args[1]) or args[1] < 0) and v < 0.3:
        return False
    if op == "exp" and v > 2.5:
        return False
    if op == "relu" and abs(v) < 0.05:
        return False
    return abs(_apply_float(op, vals, args)) <= 30.0


class _Draws:
    """Uniform numbers from a torch.Generator, drawn 4,096 at a time (one call each is slow)."""

    def __init__(self, gen: torch.Generator):
        self.gen, self.buffer = gen, []

    def rand(self) -> float:
        if not self.buffer:
            self.buffer = torch.rand(4096, generator=self.gen, dtype=torch.float64).tolist()[::-1]
        return self.buffer.pop()


def _rand(src) -> float:
    if isinstance(src, _Draws):
        return src.rand()
    return float(torch.rand((), generator=src, dtype=torch.float64))


def _u(src, lo, hi) -> float:
    """Uniform in [lo, hi) from a torch.Generator or _Draws."""
    return lo + (hi - lo) * _rand(src)


def _pick(src, n: int) -> int:
    """Uniform in {0, …, n-1}."""
    return min(int(_rand(src) * n), n - 1)


def _constant(gen, op) -> float:
    if op == "pow":
        return _EXPONENTS[_pick(gen, len(_EXPONENTS))]
    return round(_u(gen, 0.5, 2.0), 3) * (1 if _pick(gen, 2) else -1)


def _random_args(gen, op, n_nodes, recent):
    def node():  # half the time one of the most recent nodes (depth), else any node (reuse)
        return n_nodes - 1 - _pick(gen, min(recent, n_nodes)) if _pick(gen, 2) else _pick(gen, n_nodes)
    if op in _BINARY:
        return (node(), node())
    if op in _CONST:
        return (node(), _constant(gen, op))
    return (node(),)


def _random_program(gen, n_leaves: int, n_ops: int):
    """Leaves and operations with every kind of op at least once; then all unused nodes summed."""
    gen = _Draws(gen)
    leaves = [round(_u(gen, 0.3, 2.0), 4) * (1 if _pick(gen, 4) else -1) for _ in range(n_leaves)]
    vals = list(leaves)
    program = []
    kinds = list(ALL_OPS)
    for i in range(len(kinds) - 1, 0, -1):  # shuffled (Fisher–Yates)
        j = _pick(gen, i + 1)
        kinds[i], kinds[j] = kinds[j], kinds[i]
    attempt = 0
    while len(program) < n_ops or kinds:
        # every other attempt takes the next op kind still missing, the others a random kind,
        # so that the graph keeps growing even while a missing kind has no valid operands
        op = kinds[0] if kinds and attempt % 2 == 0 else ALL_OPS[_pick(gen, len(ALL_OPS))]
        attempt += 1
        args = _random_args(gen, op, len(vals), recent=4)
        if not _valid(op, vals, args):
            continue
        program.append((op, *args))
        vals.append(_apply_float(op, vals, args))
        if op in kinds:
            kinds.remove(op)
    return leaves, _sum_unused(program, len(leaves))


def _sum_unused(program, n_leaves):
    """Add up every node that nothing uses, so that every node contributes to the output."""
    used = set()
    for op, *args in program:
        used.update(args[:2] if op in _BINARY else args[:1])
    n = n_leaves + len(program)
    unused = [i for i in range(n) if i not in used and i != n - 1]
    program = list(program)
    last = n - 1
    for i in unused:
        program.append(("add", last, i))
        last = n_leaves + len(program) - 1
    return program


def _uses(program, n_leaves):
    counts = [0] * (n_leaves + len(program))
    for op, *args in program:
        for i in args[:2] if op in _BINARY else args[:1]:
            counts[i] += 1
    return counts


def _random_chain(gen, n_leaves: int, length: int):
    """A chain: every operation takes the previous node (plus a leaf or a number).

    A step is accepted only if the product of the derivatives d(node)/d(previous node) from the
    start of the chain stays between 0.1 and 10 (and ReLU only sees positive inputs), so the
    output's gradient with respect to every node of the chain is between 0.01 and 100: nothing
    vanishes or overflows along 5,000 steps, and each leaf, used hundreds of times, receives
    hundreds of contributions of similar size.
    """
    gen = _Draws(gen)
    leaves = [round(_u(gen, 0.5, 1.5), 4) * (1 if _pick(gen, 3) else -1) for _ in range(n_leaves)]
    vals = list(leaves)
    program = []
    kinds = list(ALL_OPS)
    attempt, log_product = 0, 0.0
    while len(program) < length:
        op = kinds[0] if kinds and attempt % 2 == 0 else ALL_OPS[_pick(gen, len(ALL_OPS))]
        attempt += 1
        prev = len(vals) - 1
        if op in _BINARY:
            leaf = _pick(gen, n_leaves)
            args = (prev, leaf) if _pick(gen, 2) else (leaf, prev)
        elif op in _CONST:
            args = (prev, _constant(gen, op))
        else:
            args = (prev,)
        if not _valid(op, vals, args) or (op == "relu" and vals[prev] < 0):
            continue
        slope = abs(_chain_slope(op, vals, args, prev))
        if slope < 1e-3 or abs(log_product + math.log(slope)) > math.log(10.0):
            continue
        log_product += math.log(slope)
        program.append((op, *args))
        vals.append(_apply_float(op, vals, args))
        if op in kinds:
            kinds.remove(op)
    return leaves, program


def _chain_slope(op, vals, args, prev):
    """d(new node)/d(previous node), by a central difference on Python floats."""
    h = 1e-6

    def f(v):
        saved = vals[prev]
        vals[prev] = v
        try:
            return _apply_float(op, vals, args)
        finally:
            vals[prev] = saved

    v = vals[prev]
    if op == "relu" or (op == "log" and v - h <= 0):
        return 1.0 if v > 0 else 0.0
    return (f(v + h) - f(v - h)) / (2 * h)


def _node_names(n_leaves):
    return [chr(ord("a") + i) for i in range(n_leaves)]


def _describe_program(leaves, program, limit=3) -> str:
    names = _node_names(len(leaves))
    lines = []
    for k, (op, *args) in enumerate(program[:limit]):
        refs = [names[a] for a in (args[:2] if op in _BINARY else args[:1])]
        c = args[1] if op in _CONST else None
        name = f"n{k}"
        lines.append(f"{name} = {_FORMAT[op].format(*refs, c=c)}")
        names.append(name)
    more = f"; … ({len(program) - limit} more)" if len(program) > limit else ""
    return "; ".join(lines) + more


# --------------------------------------------------------------------------- Value: running


class _TorchValue:
    """The reference: the Value interface over a 0-d float64 tensor; torch.autograd differentiates."""

    def __init__(self, data, _tensor=None):
        if _tensor is None:
            _tensor = torch.tensor(float(data), dtype=torch.float64, requires_grad=True)
        self.t = _tensor

    @property
    def data(self) -> float:
        return self.t.item()

    @property
    def grad(self) -> float:
        return 0.0 if self.t.grad is None else self.t.grad.item()

    @staticmethod
    def _raw(o):
        return o.t if isinstance(o, _TorchValue) else o

    def __add__(self, o):
        return _TorchValue(None, self.t + self._raw(o))

    def __radd__(self, o):
        return _TorchValue(None, o + self.t)

    def __sub__(self, o):
        return _TorchValue(None, self.t - self._raw(o))

    def __rsub__(self, o):
        return _TorchValue(None, o - self.t)

    def __mul__(self, o):
        return _TorchValue(None, self.t * self._raw(o))

    def __rmul__(self, o):
        return _TorchValue(None, o * self.t)

    def __truediv__(self, o):
        return _TorchValue(None, self.t / self._raw(o))

    def __rtruediv__(self, o):
        return _TorchValue(None, o / self.t)

    def __pow__(self, p):
        return _TorchValue(None, self.t ** p)

    def __neg__(self):
        return _TorchValue(None, -self.t)

    def exp(self):
        return _TorchValue(None, self.t.exp())

    def log(self):
        return _TorchValue(None, self.t.log())

    def tanh(self):
        return _TorchValue(None, self.t.tanh())

    def relu(self):
        return _TorchValue(None, torch.relu(self.t))

    def backward(self):
        self.t.backward()


def _build(cls, leaves, program):
    nodes = [cls(x) for x in leaves]
    for op, *args in program:
        nodes.append(_APPLY[op](nodes, *args))
    return nodes


def _floats(values, what: str) -> torch.Tensor:
    out = []
    for i, v in enumerate(values):
        try:
            out.append(float(v))
        except (TypeError, ValueError):
            raise TypeError(f"the {what} of node {i} is {v!r}, not a number") from None
    return torch.tensor(out, dtype=torch.float64)


def _run_forward(cls, case):
    """The data of every node, in the order the program creates them."""
    leaves, program = case.args
    return _floats([n.data for n in _build(cls, leaves, program)], "data")


def _run_leaf_grads(cls, case):
    """The gradient of the last node with respect to every leaf."""
    leaves, program = case.args
    nodes = _build(cls, leaves, program)
    nodes[-1].backward()
    return _floats([n.grad for n in nodes[:len(leaves)]], "grad")


def _run_data_and_grads(cls, case):
    leaves, program = case.args
    nodes = _build(cls, leaves, program)
    data = _floats([n.data for n in nodes], "data")
    nodes[-1].backward()
    return {"data": data, "grad": _floats([n.grad for n in nodes[:len(leaves)]], "grad")}


def _value_forward_cases(gen):
    out = []
    for n_leaves, n_ops in [(2, 12), (3, 25), (4, 40)]:
        leaves, program = _random_program(gen, n_leaves, n_ops)
        out.append(Case(f"random graph, {n_leaves} leaves, {len(program)} operations: "
                        f"{_describe_program(leaves, program)}; compared: the data of "
                        f"{', '.join(_node_names(n_leaves)[:n_leaves])}, n0, n1, … in this order",
                        (leaves, program)))
    return out


def _value_ops_cases(gen):
    """One case per operation: y = op(a[, b]) then out = y * w, so y's gradient is not 1."""
    out = []
    for op in ALL_OPS:
        for _ in range(200):
            leaves = [round(_u(gen, 0.3, 2.0), 4) * (1 if _pick(gen, 3) else -1) for _ in range(3)]
            args = ((0, 1) if op in _BINARY else (0, _constant(gen, op)) if op in _CONST else (0,))
            if _valid(op, leaves, args):
                break
        program = [(op, *args), ("mul", 3, 2)]
        refs = ["a", "b"][: 2 if op in _BINARY else 1]
        expr = _FORMAT[op].format(*refs, c=args[1] if op in _CONST else None)
        out.append(Case(f"out = ({expr}) * w with a={leaves[0]}, b={leaves[1]}, w={leaves[2]}",
                        (leaves, program)))
    return out


def _value_shared_cases(gen):
    x, y = round(_u(gen, 0.5, 1.5), 4), round(_u(gen, 0.5, 1.5), 4)
    out = [
        Case(f"x + x with x={x}", ([x], [("add", 0, 0)])),
        Case(f"x * x with x={x}", ([x], [("mul", 0, 0)])),
        # a = x.tanh() feeds two equal branches: b = a*3 and c = a*3, out = b + c
        Case(f"a = x.tanh(); out = a*3 + a*3 with x={x}",
             ([x], [("tanh", 0), ("mul_c", 1, 3.0), ("mul_c", 1, 3.0), ("add", 2, 3)])),
        # a feeds a short branch (a*2) and a long one ((a*0.5).tanh().exp())
        Case(f"a = x*y; out = a*2 + (a*0.5).tanh().exp() with x={x}, y={y}",
             ([x, y], [("mul", 0, 1), ("mul_c", 2, 2.0), ("mul_c", 2, 0.5), ("tanh", 4), ("exp", 5),
                       ("add", 3, 6)])),
    ]
    for n_leaves, n_ops in [(2, 15), (3, 30), (3, 60)]:
        leaves, program = _random_program(gen, n_leaves, n_ops)
        uses = _uses(program, n_leaves)
        hub = max(range(n_leaves, len(uses)), key=lambda i: uses[i])
        out.append(Case(f"random graph, {n_leaves} leaves, {len(program)} operations, an inner "
                        f"node used {uses[hub]} times", (leaves, program)))
    return out


def _value_deep_cases(gen):
    leaves, program = _random_chain(gen, 4, 5000)
    return [Case("a chain of 5,000 operations (each takes the previous node), 4 leaves",
                 (leaves, program))]


def _scalar_value_class(mistake: str | None = None):
    """A plain-Python Value with one known mistake, for the hints (not the reference)."""

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
        def _v(o):
            return o if isinstance(o, V) else V(o)

        def __add__(self, o):
            o = self._v(o)
            return self._make(self.data + o.data, [(self, 1.0), (o, 1.0)])

        __radd__ = __add__

        def __mul__(self, o):
            o = self._v(o)
            return self._make(self.data * o.data, [(self, o.data), (o, self.data)])

        __rmul__ = __mul__

        def __neg__(self):
            return self * -1.0

        def __sub__(self, o):
            return self + (-self._v(o))

        def __rsub__(self, o):
            return self._v(o) + (-self)

        def __pow__(self, p):
            return self._make(self.data ** p, [(self, p * self.data ** (p - 1))])

        def __truediv__(self, o):
            return self * self._v(o) ** -1

        def __rtruediv__(self, o):
            return self._v(o) * self ** -1

        def exp(self):
            e = math.exp(self.data)
            return self._make(e, [(self, e)])

        def log(self):
            return self._make(math.log(self.data), [(self, 1.0 / self.data)])

        def tanh(self):
            t = math.tanh(self.data)
            return self._make(t, [(self, 1.0 - t * t)])

        def relu(self):
            return self._make(max(self.data, 0.0), [(self, float(self.data > 0))])

        def backward(self):
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
            order, seen, stack = [], set(), [(self, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    order.append(node)
                elif id(node) not in seen:
                    seen.add(id(node))
                    stack.append((node, True))
                    stack.extend((c, False) for c in node.children)
            for node in reversed(order):
                if node.rule:
                    node.rule()

    V.__name__ = f"Value_{mistake}"
    return V


_VALUE_HINTS = (
    Hint(_scalar_value_class("overwrite"), "this matches setting a gradient with `=` instead of "
         "accumulating it with `+=`: a node used twice (x + x, x * x, a node feeding two others) "
         "must receive the sum of the gradients from all its uses."),
    Hint(_scalar_value_class("revisit"), "this matches walking the graph without a topological "
         "order: a node reached by two paths runs its backward rule twice and passes its "
         "gradient on twice. Sort the nodes topologically (each node after all the nodes that "
         "use it) and run each rule exactly once."),
    Hint(_scalar_value_class("bfs"), "this matches visiting each node once but in breadth-first "
         "order: a node's backward rule ran before all its users had added their gradient. "
         "Use a topological order (reverse of a depth-first post-order)."),
    Hint(_scalar_value_class("no_chain"), "this matches leaving out `out.grad` in a backward "
         "rule: each local derivative must be multiplied by the gradient arriving from the "
         "output (chain rule)."),
)

register(
    Check("Value", "forward", "computes the data of every node of random expression graphs",
          _value_forward_cases, _TorchValue, run=_run_forward),
    Check("Value", "ops", "gives torch.autograd's gradient for each operation, reversed ones too",
          _value_ops_cases, _TorchValue, run=_run_data_and_grads, hints=_VALUE_HINTS, points=2),
    Check("Value", "shared_nodes", "accumulates gradients of nodes used several times",
          _value_shared_cases, _TorchValue, run=_run_leaf_grads, hints=_VALUE_HINTS, points=2),
    Check("Value", "deep_chain", "backpropagates through 5,000 nodes without recursion",
          _value_deep_cases, _TorchValue, run=_run_leaf_grads, hints=_VALUE_HINTS),
)

# --------------------------------------------------------------------------- numerical_gradient

# Smooth test functions of a float64 tensor. |f| stays below ~10 and curvature is not small, so
# central differences with eps=1e-6 are within ~1e-9 of the true gradient while forward
# differences are off by ~eps·f''/2 ≈ 1e-6.


class _Fn:
    """A scalar function of a tensor, with a name for messages and, for gradient_check, the
    correct function whose autograd gradient is the true gradient."""

    def __init__(self, name, fn, exact=None):
        self.name, self.fn, self.exact = name, fn, exact or fn

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self):
        return self.name

    def __deepcopy__(self, memo):
        return self


def _smooth_functions(gen, shape):
    n = math.prod(shape)
    A = randn(gen, n, n, dtype=torch.float64, scale=0.5)
    v = randn(gen, n, dtype=torch.float64)
    return [
        _Fn("f(x) = sum(x**3) / 3", lambda x: (x ** 3).sum() / 3),
        _Fn("f(x) = logsumexp(2x)", lambda x: torch.logsumexp(2 * x.reshape(-1), 0)),
        _Fn("f(x) = v · tanh(A x)", lambda x: v @ torch.tanh(A @ x.reshape(-1))),
        _Fn("f(x) = sum(sin(x) · x)", lambda x: (x.sin() * x).sum()),
    ]


def _away_from_zero(gen, *shape):
    """Values with 0.4 ≤ |x| ≤ 1.4, so that no gradient entry is tiny."""
    magnitude = 0.4 + torch.rand(*shape, generator=gen, dtype=torch.float64)
    sign = torch.randint(0, 2, shape, generator=gen).to(torch.float64) * 2 - 1
    return magnitude * sign


def _numgrad_value_cases(gen):
    out = []
    for f in _smooth_functions(gen, (6,)):
        out.append(Case(f"{f}, x of shape (6,)", (f, _away_from_zero(gen, 6))))
    f = _smooth_functions(gen, (4,))[0]
    out.append(Case(f"{f}, x of shape (4,), eps=1e-5", (f, _away_from_zero(gen, 4)), {"eps": 1e-5}))
    return out


def _numgrad_shape_cases(gen):
    out = []
    for shape in [(3, 4), (2, 3, 2), (1,)]:
        for f in _smooth_functions(gen, shape)[1:3]:
            out.append(Case(f"{f}, x of shape {shape}", (f, _away_from_zero(gen, *shape))))
    return out


def _reference_numerical_gradient(f, x, eps=1e-6):
    """The exact gradient, by torch.autograd (what central differences approximate)."""
    x = x.detach().clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(x), x)
    return grad


def _run_input_unchanged(fn, case):
    f, x = case.args
    before = x.clone()
    fn(f, x, **case.kwargs)
    return torch.equal(before, x)


def _numgrad_forward(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    fx = float(f(x))
    for i in range(x.numel()):
        e = torch.zeros_like(x).reshape(-1)
        e[i] = eps
        g.view(-1)[i] = (float(f(x + e.view_as(x))) - fx) / eps
    return g


def _numgrad_in_place(f, x, eps=1e-6):
    g = torch.zeros_like(x)
    flat = x.view(-1)
    for i in range(x.numel()):
        flat[i] += eps
        plus = float(f(x))
        flat[i] -= 2 * eps
        minus = float(f(x))
        flat[i] += eps
        g.view(-1)[i] = (plus - minus) / (2 * eps)
    return g


_NUMGRAD_HINTS = (
    Hint(_numgrad_forward, "this matches forward differences (f(x+eps) - f(x)) / eps, whose "
         "error is about eps·f''/2. Central differences (f(x+eps) - f(x-eps)) / (2·eps) are "
         "accurate to about eps²."),
)

register(
    Check("numerical_gradient", "values",
          "approximates torch.autograd.grad by central differences",
          _numgrad_value_cases, _reference_numerical_gradient, hints=_NUMGRAD_HINTS, points=2),
    Check("numerical_gradient", "any_shape", "works for x of any shape, same shape out",
          _numgrad_shape_cases, _reference_numerical_gradient, hints=_NUMGRAD_HINTS),
    Check("numerical_gradient", "input_unchanged", "leaves x exactly as it was",
          _numgrad_shape_cases, _reference_numerical_gradient, run=_run_input_unchanged,
          hints=(Hint(_numgrad_in_place, "your function changed x. Work on a copy "
                      "(x.clone()), or save each entry and put it back: adding and subtracting "
                      "eps can leave a rounding error in x."),)),
)

# --------------------------------------------------------------------------- gradient_check


class _CubeWrong(torch.autograd.Function):
    """x³ with the derivative written as 2x² (should be 3x²)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x ** 2


class _TanhWrong(torch.autograd.Function):
    """tanh with the derivative written as 1 + tanh² (should be 1 - tanh²)."""

    @staticmethod
    def forward(ctx, x):
        t = torch.tanh(x)
        ctx.save_for_backward(t)
        return t

    @staticmethod
    def backward(ctx, g):
        (t,) = ctx.saved_tensors
        return g * (1 + t * t)


class _MeanSquareMissingN(torch.autograd.Function):
    """mean(x²) whose backward forgets the 1/N."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x * x).mean()

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * 2 * x


class _SquareLastEntryDropped(torch.autograd.Function):
    """x² elementwise whose backward forgets the last entry's gradient."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        grad = g * 2 * x
        grad.view(-1)[-1] = 0.0
        return grad


def _gradcheck_buggy_cases(gen):
    w = _away_from_zero(gen, 5)
    return [
        Case("x³ with backward 2x²",
             (_Fn("sum(x³), backward 2x²", lambda x: _CubeWrong.apply(x).sum(),
                  lambda x: (x ** 3).sum()), _away_from_zero(gen, 5))),
        Case("w · tanh(x) with backward 1 + tanh²",
             (_Fn("w · tanh(x), backward 1 + tanh²", lambda x: w @ _TanhWrong.apply(x),
                  lambda x: w @ torch.tanh(x)), _away_from_zero(gen, 5))),
        Case("mean(x²) with backward 2x (1/N missing)",
             (_Fn("mean(x²), backward 2x", lambda x: _MeanSquareMissingN.apply(x),
                  lambda x: (x * x).mean()), _away_from_zero(gen, 3, 4))),
        Case("sum(x²) whose backward drops the last entry",
             (_Fn("sum(x²), last entry dropped", lambda x: _SquareLastEntryDropped.apply(x).sum(),
                  lambda x: (x * x).sum()), _away_from_zero(gen, 8))),
    ]


def _gradcheck_correct_cases(gen):
    """Correct gradients. The functions act entry by entry and every gradient entry has
    magnitude ≥ 0.1 while |f| ≤ 15, so the rounding noise of central differences (about
    1e-10·|f| / |gradient entry|) stays far below the 1e-7 tolerance."""
    w = _away_from_zero(gen, 6)
    functions = [
        _Fn("f(x) = sum(x**3) / 3", lambda x: (x ** 3).sum() / 3),
        _Fn("f(x) = sum(sin(x) · x)", lambda x: (x.sin() * x).sum()),
        _Fn("f(x) = sum(exp(x)) / 2", lambda x: x.exp().sum() / 2),
        _Fn("f(x) = w · tanh(x)", lambda x: (w.view_as(x) * torch.tanh(x)).sum()),
    ]
    return [Case(f"{f} (a correct gradient), x of shape {shape}", (f, _away_from_zero(gen, *shape)))
            for f in functions for shape in [(6,), (2, 3)]]


def _relative_error(a, n):
    return float(((a - n).abs() / torch.maximum(torch.maximum(a.abs(), n.abs()),
                                                 torch.tensor(1e-12, dtype=a.dtype))).max())


def _reference_gradient_check(f, x):
    """max_i |a_i - n_i| / max(|a_i|, |n_i|, 1e-12), with n the *true* gradient (derivation:
    autograd of the correct function) in place of its central-difference estimate."""
    x1 = x.detach().clone().requires_grad_(True)
    (analytic,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (true,) = torch.autograd.grad(f.exact(x2), x2)
    return _relative_error(analytic, true)


def _gradcheck_absolute(f, x):
    x1 = x.detach().clone().requires_grad_(True)
    (a,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (n,) = torch.autograd.grad(f.exact(x2), x2)
    return float((a - n).abs().max())


def _gradcheck_mean(f, x):
    x1 = x.detach().clone().requires_grad_(True)
    (a,) = torch.autograd.grad(f(x1), x1)
    x2 = x.detach().clone().requires_grad_(True)
    (n,) = torch.autograd.grad(f.exact(x2), x2)
    return float(((a - n).abs() / torch.maximum(a.abs(), n.abs())).mean())


register(
    Check("gradient_check", "finds_bugs",
          "reports the largest relative error of a wrong backward",
          _gradcheck_buggy_cases, _reference_gradient_check,
          hints=(Hint(_gradcheck_absolute, "this matches the largest *absolute* error "
                      "|a - n|; divide each entry by max(|a|, |n|, 1e-12)."),
                 Hint(_gradcheck_mean, "this matches the *mean* relative error; return the "
                      "largest one (one wrong entry is enough to make a gradient wrong).")), points=2),
    Check("gradient_check", "correct_is_tiny", "reports ≈ 0 (below 1e-7) for a correct gradient",
          _gradcheck_correct_cases, _reference_gradient_check),
)

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


def _mlp_backward_by_hand(transpose=False, mask=True, bias_mean=False):
    def backward(dout, cache):
        x, z, h, p = cache
        dW2 = (h.T @ dout) if transpose else (dout.T @ h)
        db2 = dout.mean(0) if bias_mean else dout.sum(0)
        dh = dout @ p["W2"]
        dz = dh * (z > 0) if mask else dh
        dW1 = (x.T @ dz) if transpose else (dz.T @ x)
        db1 = dz.mean(0) if bias_mean else dz.sum(0)
        return {"x": dz @ p["W1"], "W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return backward


_MLP_HINTS = (
    Hint(_mlp_backward_by_hand(transpose=True), "this matches a transposed weight gradient. "
         "For y = x Wᵀ + b the gradient ∂L/∂W = (∂L/∂y)ᵀ x has W's shape (out, in)."),
    Hint(_mlp_backward_by_hand(mask=False), "this matches leaving out the ReLU: its derivative "
         "is 1 where z > 0 and 0 elsewhere, so multiply the gradient by (z > 0)."),
    Hint(_mlp_backward_by_hand(bias_mean=True), "this matches averaging the bias gradient over "
         "the batch; every example adds its gradient, so sum over the batch."),
)


def _reference_mlp_backward_keys(keys):
    def reference(dout, cache):
        grads = _autograd_mlp_backward(dout, cache)
        return {k: grads[k] for k in keys}
    return reference


register(
    Check("mlp_forward", "output", "computes Linear → ReLU → Linear like F.linear and relu",
          _mlp_cases, _reference_mlp_forward, run=_run_mlp_output),
    Check("mlp_forward", "cache", "returns the cache (x, z, h, params)",
          _mlp_cases, _reference_mlp_forward, run=_run_mlp_cache),
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

# --------------------------------------------------------------------------- cross_entropy_backward


def _reference_ce_backward(logits, targets):
    """∂/∂logits of F.cross_entropy (mean over the batch), by torch.autograd."""
    z = logits.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(F.cross_entropy(z, targets), z)
    return grad


def _ce_backward_cases(gen):
    out = []
    for n, c, dtype in [(8, 5, torch.float32), (1, 3, torch.float32), (16, 10, torch.float64),
                        (32, 4, torch.float64)]:
        out.append(Case(f"logits ({n}, {c}) {str(dtype)[6:]}",
                        (randn(gen, n, c, dtype=dtype, scale=2.0), randint(gen, c, n))))
    return out


def _ce_backward_stable_cases(gen):
    return [
        Case("logits × 1000 (float32)", (randn(gen, 8, 5) * 1000.0, randint(gen, 5, 8))),
        Case("logits × 1000 (float64)", (randn(gen, 6, 7, dtype=torch.float64) * 1000.0,
                                         randint(gen, 7, 6))),
    ]


def _ce_backward_no_mean(logits, targets):
    return torch.softmax(logits, 1) - F.one_hot(targets, logits.shape[1]).to(logits.dtype)


def _ce_backward_no_onehot(logits, targets):
    return torch.softmax(logits, 1) / logits.shape[0]


def _ce_backward_wrong_dim(logits, targets):
    onehot = F.one_hot(targets, logits.shape[1]).to(logits.dtype)
    return (torch.softmax(logits, 0) - onehot) / logits.shape[0]


def _ce_backward_naive(logits, targets):
    p = logits.exp() / logits.exp().sum(1, keepdim=True)
    return (p - F.one_hot(targets, logits.shape[1]).to(logits.dtype)) / logits.shape[0]


_CE_BACKWARD_HINTS = (
    Hint(_ce_backward_no_mean, "this matches softmax − one-hot without the 1/N: the loss is "
         "the *mean* over the N examples, so each row of the gradient is divided by N."),
    Hint(_ce_backward_no_onehot, "this matches softmax / N without subtracting the one-hot "
         "targets: ∂ℓ/∂z_c = p_c − [c = y]."),
    Hint(_ce_backward_wrong_dim, "this matches a softmax over the batch dimension; normalize "
         "each row (dim=1) over the classes."),
    Hint(_ce_backward_naive, "exp() of large logits overflows (inf/inf = nan). Subtract each "
         "row's maximum before exponentiating."),
)

register(
    Check("cross_entropy_backward", "values",
          "equals autograd's gradient of F.cross_entropy: (softmax − one-hot)/N",
          _ce_backward_cases, _reference_ce_backward, hints=_CE_BACKWARD_HINTS, points=2),
    Check("cross_entropy_backward", "stable", "stays finite and exact for logits in the thousands",
          _ce_backward_stable_cases, _reference_ce_backward, hints=_CE_BACKWARD_HINTS),
)

# --------------------------------------------------------------------------- linear_flops


def _reference_linear_flops(batch, d_in, d_out):
    """torch's FLOP counter on a bias-free Linear on the meta device (no memory, no compute):
    the forward, and the backward when the input needs its gradient too (a hidden layer)."""
    with torch.device("meta"):
        layer = nn.Linear(d_in, d_out, bias=False)
        x = torch.empty(batch, d_in, requires_grad=True)
    counter = FlopCounterMode(display=False)
    with counter:
        y = layer(x)
    forward = counter.get_total_flops()
    with counter:
        y.backward(torch.empty_like(y))
    return forward, counter.get_total_flops()


def _linear_flops_cases(gen):
    sizes = [(1, 1, 1), (32, 784, 128), (7, 3, 5), (2048, 4096, 4096), (1_000_000, 12288, 49152)]
    sizes.append(tuple(int(v) for v in torch.randint(1, 5000, (3,), generator=gen)))
    return [Case(f"batch={b:,}, d_in={i:,}, d_out={o:,}", (b, i, o)) for b, i, o in sizes]


def _run_index(k):
    def run(fn, case):
        out = fn(*case.args)
        return out[k] if isinstance(out, (tuple, list)) and len(out) == 2 else out
    return run


def _flops_macs(batch, d_in, d_out):
    return batch * d_in * d_out, 2 * batch * d_in * d_out


def _flops_weight_only(batch, d_in, d_out):
    return 2 * batch * d_in * d_out, 2 * batch * d_in * d_out


register(
    Check("linear_flops", "forward", "counts 2 FLOPs per multiply-add of x Wᵀ",
          _linear_flops_cases, _reference_linear_flops, run=_run_index(0),
          hints=(Hint(_flops_macs, "this matches counting a multiply-add as one FLOP; it is "
                      "two (a multiplication and an addition)."),)),
    Check("linear_flops", "backward", "counts the two products of the backward (∂x and ∂W)",
          _linear_flops_cases, _reference_linear_flops, run=_run_index(1),
          hints=(Hint(_flops_weight_only, "this matches counting only one product in the "
                      "backward; it computes two of the forward's size: ∂L/∂x = (∂L/∂y) W "
                      "and ∂L/∂W = (∂L/∂y)ᵀ x."),
                 Hint(_flops_macs, "this matches counting a multiply-add as one FLOP; it is "
                      "two (a multiplication and an addition)."))),
)

# "Don't use autograd here" (numerical_gradient's instructions).
forbid("numerical_gradient", "torch.autograd.grad", "torch.autograd.backward", "torch.Tensor.backward")
