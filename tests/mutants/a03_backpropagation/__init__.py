"""Assignment 03: mistakes a learner might make, and correct answers written differently.

One module per exercise or group of exercises, imported in the notebook's order (which is the
order of the variants):

- value.py: Value mutants. The first one fails every Value check and is self-contained: the
  end-to-end test pastes its source into the notebook in place of the learner's cell;
- value_alternatives.py: correct Value classes written differently;
- value_more.py: more Value mutants (testers' mistakes);
- gradient_checking.py: numerical_gradient and gradient_check;
- mlp.py: mlp_forward and mlp_backward;
- cross_entropy_backward.py: cross_entropy_backward;
- linear_flops.py: linear_flops.
"""

from . import value, value_alternatives, value_more  # noqa: F401, I001  (in the notebook's order)
from . import gradient_checking, mlp, cross_entropy_backward, linear_flops  # noqa: F401, I001
