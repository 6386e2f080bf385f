"""Assignment 05, primer §3.5: number formats, bf16 rounding, loss scaling, fp8, memory per
parameter, gradient accumulation.

Each exercise: how its cases are made from a seed, the reference (torch, or a derivation), the
tolerance, and the hints (objects implementing a known mistake). One module per exercise or
group of exercises, imported below in the notebook's order (it is the order of the checks):

    float_formats.py      float_format (torch.finfo, and decoding every code of other formats)
    bfloat16_rounding.py  round_to_bfloat16
    memory_per_param.py   mixed_precision_bytes_per_param
    loss_scaling.py       DynamicLossScaler (side by side with torch.amp.GradScaler)
    fp8.py                fp8_quantize, fp8_dequantize
    accumulation.py       accumulate_gradients, train_with_accumulation

Mutants used to test these checks: tests/mutants/a05_mixed_precision/ (same module names).
"""

# Imported once by the grading sandbox before it forks a run per submission: optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

from . import (  # noqa: F401, I001  (registers the checks, in the notebook's order)
    float_formats,
    bfloat16_rounding,
    memory_per_param,
    loss_scaling,
    fp8,
    accumulation,
)
