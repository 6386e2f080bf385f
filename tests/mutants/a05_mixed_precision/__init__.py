"""Assignment 05: mistakes a learner might make, and correct answers written differently.

One module per exercise or group of exercises, named like the spec modules in
primer/exercises/a05_mixed_precision/ and imported below in the same order.

The first float_format mutant (float_formats.py) fails every float_format check; the nbgrader
end-to-end test pastes it into a notebook, so it only uses names the notebook's first cell imports.
"""

from . import (  # noqa: F401, I001  (registers the variants, in this order)
    float_formats,
    bfloat16_rounding,
    memory_per_param,
    loss_scaling,
    fp8,
    accumulation,
)
