"""Value: mistakes written by testers who had not seen the hints (appended after value.py's)."""

import math

from tests.mutants import alternative, mutant
from tests.mutants.a03_backpropagation.value import _value_class


def _mul_own_data(self, o):
    o = self._lift(o)
    return self._node(self.data * o.data, [(self, self.data), (o, o.data)])


def _log_over_output(self):
    y = math.log(self.data)
    return self._node(y, [(self, 1.0 / y)])


def _relu_output_nonnegative(self):
    y = max(self.data, 0.0)
    return self._node(y, [(self, float(y >= 0))])


def _add_unwrapped(self, o):
    return self._node(self.data + o.data, [(self, 1.0), (o, 1.0)])


def _mul_unwrapped(self, o):
    return self._node(self.data * o.data, [(self, o.data), (o, self.data)])


def _neg_new_leaf(self):
    return type(self)(-self.data)


def _sub_number(self, o):
    return self + (-self._lift(o).data)


mutant("Value", hint="each factor's own data", fails=("ops",))(
    _value_class("ValueMulOwnData", __mul__=_mul_own_data))
mutant("Value", hint="dividing by out.data", fails=("ops",))(
    _value_class("ValueLogOverOutput", log=_log_over_output))
mutant("Value", hint="negative inputs too", fails=("ops",))(
    _value_class("ValueReluAlwaysOne", relu=_relu_output_nonnegative))
mutant("Value", hint="using a number's .data")(
    _value_class("ValueNumbersNotWrapped", __add__=_add_unwrapped, __mul__=_mul_unwrapped))
mutant("Value", hint="cuts the graph", fails=("ops",))(
    _value_class("ValueNegNewLeaf", __neg__=_neg_new_leaf))
mutant("Value", hint="cuts the graph", fails=("ops",))(
    _value_class("ValueSubNumber", __sub__=_sub_number))


def _without_radd():
    cls = _value_class("Value")  # the notebook's name, which Python's TypeError quotes
    del cls.__radd__
    return cls


mutant("Value", hint="without __radd__", fails=("forward",))(_without_radd())


def _backward_iterator_stack(self):
    """micrograd's build_topo made iterative: a stack of iterators over the children."""
    topo, visited, stack, path = [], set(), [iter([self])], []
    while stack:
        try:
            v = next(stack[-1])
        except StopIteration:
            stack.pop()
            if path:
                topo.append(path.pop())
            continue
        if v in visited:
            continue
        visited.add(v)
        path.append(v)
        stack.append(iter(v._prev))
    self.grad = 1
    for v in reversed(topo):
        v._backward()


alternative("Value")(_value_class("ValueIteratorStack", backward=_backward_iterator_stack))
