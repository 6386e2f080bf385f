"""Value's cases as programs: the operations, and random graphs and chains that stay valid."""

from __future__ import annotations

import math

import torch

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
