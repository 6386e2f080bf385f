"""Assignment 06: mistakes a learner might make, and correct answers written differently.

Each is what a learner would define in the notebook (the notebook's first cell imports torch,
torch.distributed as dist, nn, F, ...); they run inside the launched gloo workers.

One module per exercise, imported here in the notebook's order: shard_indices.py,
broadcast_parameters.py, allreduce_gradients.py, ring_allreduce.py, overlapped_dp.py. The order
of the variants matters: the end-to-end tests (tests/grading_course.py) paste into a notebook the
first mutant that fails every check of an exercise (here shard_indices' shard_blocks), and
tests/test_a06_grading.py pastes ring_allreduce.ring_with_blocking_sends, the deadlock.
"""

from . import (  # noqa: F401, I001  (registers the variants, in the notebook's order)
    shard_indices,
    broadcast_parameters,
    allreduce_gradients,
    ring_allreduce,
    overlapped_dp,
)
