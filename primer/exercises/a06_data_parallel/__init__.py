"""Assignment 06, primer §3.5–3.6: data parallelism with gloo, from notebook cells.

Every distributed check runs the learner's object on several gloo ranks with `primer.launch`
(forked workers, a short deadline) and compares with torch.distributed itself: its collectives,
`DistributedSampler` and `DistributedDataParallel`. A check's `run` does the whole procedure
(build the per-rank model from a seed, train K steps, ...) inside the workers and returns plain
tensors. A learner whose ranks deadlock fails with a message that says "deadlock" within
`LAUNCH_TIMEOUT` seconds; a rank that raises fails with that rank's error.

One module per exercise, in the notebook's order:
- shard_indices.py: `shard_indices` (DistributedSampler's indices, drop_last=True);
- broadcast_parameters.py: `broadcast_parameters` (parameters and buffers from rank src);
- allreduce_gradients.py: `allreduce_gradients` (averaged gradients, K steps vs. one process);
- ring_allreduce.py: `ring_allreduce` (point-to-point only; its sums and its traffic);
- overlapped_dp.py: `OverlappedDP` (bucketed asynchronous all-reduces vs. DistributedDataParallel).
launches.py holds what they share: the launch and check deadlines (LAUNCH_TIMEOUT,
CHECK_TIMEOUT), the caching of the reference's launches, the conversion of the workers' outputs,
the seeded models, data and shards the workers build, and CallCounts, which names the cause of a
deadlock or a rank's error from what each rank called (a rank that never called the collective,
blocking sends on every rank, isend requests never waited for, a send to the wrong neighbour,
all_reduce of a None gradient).
Mutants used to test these checks: tests/mutants/a06_data_parallel/ (the same module names).
"""

# Imported once by the grading sandbox before it forks a run per submission: DDP and optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

from . import (  # noqa: F401, I001  (registers the checks, in the notebook's order)
    shard_indices,
    broadcast_parameters,
    allreduce_gradients,
    ring_allreduce,
    overlapped_dp,
)
