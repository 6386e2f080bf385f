"""Assignment 07: mistakes a learner might make, and correct answers written differently.

Each is what a learner would define in the notebook (the notebook's first cell imports torch,
torch.distributed as dist, nn, F, ...); they run inside the launched gloo workers.

One module per exercise (or pair), imported here in the notebook's order: parallel_linear.py,
tensor_parallel_mlp.py, pipeline.py, sharded_adamw.py. The order of the variants matters: the end-to-end tests
(tests/grading_course.py) paste into a notebook the first mutant that fails every check of an
exercise.
"""

from . import (  # noqa: F401, I001  (registers the variants, in the notebook's order)
    parallel_linear,
    tensor_parallel_mlp,
    pipeline,
    sharded_adamw,
)
