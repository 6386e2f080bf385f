"""Assignment 04: mistakes a learner might make, and correct answers written differently.

One module per exercise or group, imported below in the notebook's order (like the spec package
primer/exercises/a04_layers/): linear.py (LinearFunction, Linear), activations.py (relu, gelu,
silu), swiglu.py, layer_norm.py (LayerNormFunction), layer_norm_module.py (LayerNorm),
mlp_block.py. stand_ins.py holds the correct pieces several of them build on (a LinearFunction,
SwiGLU's weights).

Order matters for tests/test_nbgrader_e2e.py, which replaces the first exercise (notebook order)
that has a mutant failing *all* of that exercise's checks, and expects the student to lose that
exercise's points only. LinearFunction and Linear are used by later exercises (Linear calls
LinearFunction; SwiGLU and MLPBlock are built from Linear), so a mutant failing all their checks
would also cost those exercises' points. Every LinearFunction and Linear mutant here therefore
passes at least one of its checks (tests/test_a04_layers.py checks this), and the end-to-end
test uses the first relu mutant (nothing is built on relu). That mutant is pasted into the
notebook as the learner's cell, so it uses nothing but the notebook's imports.
"""

# Registers the variants, in the notebook's order:
from . import linear, activations, swiglu, layer_norm, layer_norm_module, mlp_block  # noqa: F401, I001
