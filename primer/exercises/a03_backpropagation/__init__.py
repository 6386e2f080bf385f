"""Assignment 03, primer §3.3: backpropagation: scalar autograd, gradient checks, manual backward.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). One module per exercise or group of exercises, in
the notebook's order:

- value_programs.py: Value's cases as programs (the operations, random graphs and long chains);
- value.py: Value: running a program, the torch reference (_TorchValue), cases, hints, checks;
- gradient_checking.py: numerical_gradient and gradient_check;
- mlp.py: mlp_forward and mlp_backward;
- cross_entropy_backward.py: cross_entropy_backward;
- linear_flops.py: linear_flops.

Mutants used to test these checks: tests/mutants/a03_backpropagation/.

`Value` is a class. Its cases are *programs*: a list of leaf values and a list of operations whose
operands are earlier nodes (so a node can feed several others) or Python numbers. `run` executes
the program with the class it is given, calls `backward()` on the last node and returns the data
of the nodes or the gradients of the leaves as float64 tensors. The reference is the same program
executed by `_TorchValue`, a thin adapter over 0-d float64 tensors differentiated by
torch.autograd.
"""

from . import value, gradient_checking, mlp, cross_entropy_backward, linear_flops  # noqa: F401, I001  (registers the checks, in the notebook's order)
