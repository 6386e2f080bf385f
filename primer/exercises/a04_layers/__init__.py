"""Assignment 04, primer §3.4: what a layer is. Linear, activations, SwiGLU, LayerNorm, a block.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). One module per exercise or group, in the
notebook's order:

- harness.py: what several exercises share: leaf tensors, the gradcheck verdict and its hint,
  loading weights into a module by parameter name, the module `run` (forward and backward), and
  the SwiGLU reference with its weights (MLPBlock is built on it);
- linear.py: LinearFunction and Linear (the module, and its initialization statistics), with
  linear_mistakes.py: the wrong Functions that LinearFunction's hints implement;
- activations.py: relu, gelu, silu;
- swiglu.py: SwiGLU;
- layer_norm.py: LayerNormFunction; layer_norm_module.py: LayerNorm (the module);
- mlp_block.py: MLPBlock.

Mutants used to test these checks: tests/mutants/a04_layers/.

Layers are stateful, so the `run` functions do the whole procedure: build the learner's
Function or module, load weights drawn from the case (by parameter name, the names the notebook
asks for), run forward and backward with a seeded upstream gradient, and return the output and
every gradient by name. The references are torch's own layers (F.linear, F.layer_norm,
nn.LayerNorm, F.gelu, ...) or the formula assembled from torch modules.
"""

# Imported once by the grading sandbox before it forks a run per submission: optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

# Registers the checks, in the notebook's order:
from . import linear, activations, swiglu, layer_norm, layer_norm_module, mlp_block  # noqa: F401, I001
