"""Value: running a program with a class, the torch reference, the cases, the hints, the checks."""

from __future__ import annotations

import torch

from primer.exercises.a03_backpropagation.value_mistakes import _scalar_value_class
from primer.exercises.a03_backpropagation.value_programs import (
    _APPLY,
    _BINARY,
    _CONST,
    _FORMAT,
    ALL_OPS,
    _constant,
    _node_names,
    _pick,
    _random_chain,
    _random_program,
    _u,
    _uses,
    _valid,
)
from primer.grading import Case, Check, Hint, register

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


def _node_labels(leaves, program):
    """One label per node, in the order the program creates them: a leaf's name and value, or an
    operation with the (correct) values of its inputs, so that the first node whose data differs
    is a sub-expression the learner can evaluate by hand."""
    names = _node_names(len(leaves))
    labels = [f"{name} = {x!r}" for name, x in zip(names, leaves)]
    data = [n.data for n in _build(_scalar_value_class(None), leaves, program)]
    for k, (op, *args) in enumerate(program):
        inputs = list(dict.fromkeys(args[:2] if op in _BINARY else args[:1]))
        refs = [names[a] for a in (args[:2] if op in _BINARY else args[:1])]
        c = args[1] if op in _CONST else None
        given = ", ".join(f"{names[a]} = {data[a]:.6g}" for a in inputs)
        labels.append(f"n{k} = {_FORMAT[op].format(*refs, c=c)} with {given}")
        names.append(f"n{k}")
    return labels


def _run_forward(cls, case):
    """The data of every node, in the order the program creates them, keyed by what it is."""
    leaves, program = case.args
    values = _floats([n.data for n in _build(cls, leaves, program)], "data").tolist()
    return dict(zip(_node_labels(leaves, program), values))


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
        out.append(Case(f"random graph, {n_leaves} leaves, {len(program)} operations "
                        "(a failure names the first node whose data differs)", (leaves, program)))
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
    # ReLU of a negative input (derivative 0), then at its kink: torch's derivative there is 0
    # (the table's a.data > 0), not 1
    a, w = -round(_u(gen, 0.3, 2.0), 4), round(_u(gen, 0.3, 2.0), 4)
    out.append(Case(f"out = (a.relu()) * w with a={a} (negative), w={w}",
                    ([a, 1.0, w], [("relu", 0), ("mul", 3, 2)])))
    w = round(_u(gen, 0.3, 2.0), 4)
    out.append(Case(f"out = (a.relu()) * w with a=0.0 (exactly), w={w}",
                    ([0.0, 1.0, w], [("relu", 0), ("mul", 3, 2)])))
    return out


def _value_shared_cases(gen):
    x, y = round(_u(gen, 0.5, 1.5), 4), round(_u(gen, 0.5, 1.5), 4)
    out = [
        Case(f"x + x with x={x}", ([x], [("add", 0, 0)])),
        Case(f"x * x with x={x}", ([x], [("mul", 0, 0)])),
        # a and x used twice, users in an order where the wrong traversals (overwriting,
        # revisiting, pre-order, no visited set, ...) all give different gradients: the hint
        # can tell which one it is
        Case(f"a = x.tanh(); out = (a.exp() + a) * x with x={x}",
             ([x], [("tanh", 0), ("exp", 1), ("add", 2, 1), ("mul", 3, 0)])),
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
    Hint(_scalar_value_class("no_seed"), "this matches a backward() that leaves its own grad at "
         "0: every gradient is then 0. Set self.grad = 1 (∂L/∂L) before running the rules."),
    Hint(_scalar_value_class("not_reversed"), "this matches running the rules in the post-order "
         "itself (leaves first): a node's rule ran before its users gave it a gradient. Walk the "
         "reverse of the post-order, from the output to the leaves."),
    Hint(_scalar_value_class("no_visited"), "this matches a depth-first post-order without a "
         "`visited` set: a node reached by two paths is listed, and its rule run, twice. Skip "
         "the nodes already visited (a set of nodes) so that each rule runs exactly once."),
    Hint(_scalar_value_class("preorder"), "this matches running the rules in depth-first "
         "pre-order (each node when first reached): a node reached again by a later path had "
         "already passed its gradient on. List each node after all of its children (post-order) "
         "and walk the reverse of that list."),
    Hint(_scalar_value_class("tanh_x"), "this matches tanh's backward written with the input, "
         "1 - a.data**2; the derivative is 1 - tanh(a)², that is 1 - out.data**2."),
    Hint(_scalar_value_class("exp_x"), "this matches exp's backward written with the input "
         "a.data; the derivative of e^a is e^a itself, out.data."),
    Hint(_scalar_value_class("log_mul"), "this matches log's backward multiplying by a.data; "
         "the derivative of ln a is 1/a: a.grad += out.grad / a.data."),
    Hint(_scalar_value_class("log_log"), "this matches log's backward using ln a as its "
         "derivative; the derivative of ln a is 1/a: a.grad += out.grad / a.data."),
    Hint(_scalar_value_class("pow_no_p"), "this matches a ** p's backward without the factor p: "
         "a.grad += p * a.data**(p-1) * out.grad."),
    Hint(_scalar_value_class("pow_x_p"), "this matches a ** p's backward with a.data**p; the "
         "exponent drops by one: a.grad += p * a.data**(p-1) * out.grad."),
    Hint(_scalar_value_class("relu_ge"), "this matches ReLU's backward with (a.data >= 0): at "
         "exactly 0 the derivative is taken as 0, as in the table and in torch: (a.data > 0)."),
    Hint(_scalar_value_class("sub_plus"), "this matches a - b computed as a + b: the "
         "subtraction must negate b, a + (-b)."),
    Hint(_scalar_value_class("rsub_swapped"), "this matches `2 - v` computed as v - 2: "
         "__rsub__(self, other) computes other - self, the number is on the left."),
    Hint(_scalar_value_class("rdiv_swapped"), "this matches `2 / v` computed as v / 2: "
         "__rtruediv__(self, other) computes other / self, that is other * self**-1."),
    Hint(_scalar_value_class("mul_own"), "this matches a * b's backward with each factor's "
         "own data (a.grad += a.data * out.grad); the derivative of a·b with respect to a is "
         "b: a.grad += b.data * out.grad, b.grad += a.data * out.grad."),
    Hint(_scalar_value_class("log_out"), "this matches log's backward dividing by out.data "
         "(ln a); the derivative of ln a is 1/a, the input: a.grad += out.grad / a.data."),
    Hint(_scalar_value_class("relu_one"), "this matches ReLU's backward passing the gradient "
         "on for negative inputs too (a mask that is always 1, like out.data >= 0: ReLU's "
         "output is never negative). The mask is the input's sign: (a.data > 0)."),
    *(Hint(_scalar_value_class(m), "this matches a negation or subtraction that cuts the "
           "graph: -b (or a - b) was made from the number b.data, as a new Value with no "
           "children, so b gets no gradient. Build them from operations on Values: -b is "
           "b * -1, a - b is a + (-b).") for m in ("neg_cut", "sub_cut")),
    *(Hint(_scalar_value_class(f"no_wrap{ops}{neg}"), "this matches using a number's .data: "
           "in `v + 2` or `v * 2` the other operand is a Python number, which has no .data. "
           "Turn it into a Value first: other = other if isinstance(other, Value) else "
           "Value(other).") for ops in ("_add_mul", "_add", "_mul") for neg in ("", "_int")),
    *(Hint(_scalar_value_class(f"no_{r}"), f"this matches a Value without __{r}__: for "
           "`2 + v`, `2 - v`, `2 * v` or `2 / v` Python calls v.__radd__(2), v.__rsub__(2), "
           "v.__rmul__(2) or v.__rtruediv__(2), because the number does not know Value. "
           "Define all four (e.g. __radd__(self, other) returns self + other).")
      for r in ("radd", "rsub", "rmul", "rtruediv")),
)

register(
    Check("Value", "forward", "computes the data of every node of random expression graphs",
          _value_forward_cases, _TorchValue, run=_run_forward, hints=_VALUE_HINTS),
    Check("Value", "ops", "gives torch.autograd's gradient for each operation, reversed ones too",
          _value_ops_cases, _TorchValue, run=_run_data_and_grads, hints=_VALUE_HINTS, points=2),
    Check("Value", "shared_nodes", "accumulates gradients of nodes used several times",
          _value_shared_cases, _TorchValue, run=_run_leaf_grads, hints=_VALUE_HINTS, points=2),
    # The traversal's mistakes only: each hint runs the 5,000-node chain, and a wrong backward
    # rule of one operation is named by `ops` (one case per operation).
    Check("Value", "deep_chain", "backpropagates through 5,000 nodes without recursion",
          _value_deep_cases, _TorchValue, run=_run_leaf_grads, hints=_VALUE_HINTS[:7]),
)
