"""Assignment 02, primer §3.2: gradient descent, minibatches, SGD/Adam/AdamW, optimizer memory,
learning-rate schedules.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). One module per exercise or group of exercises, in
the notebook's order:

    gradient_descent.py   gradient_descent
    minibatches.py        minibatches
    sgd.py                SGD
    adam.py               Adam, AdamW
    optimizer_memory.py   optimizer_state_bytes, training_bytes_per_param
    schedules.py          lr_warmup_cosine, lr_warmup_linear, lr_warmup_constant_cooldown

and cases.py, what several of them share: random draws from the case generator, and the seeded
training problem that the optimizers are run on. Mutants used to test these checks:
tests/mutants/a02_gradient_descent/.

Stateful exercises (optimizers, schedules) are graded through their own `run`: it builds the
same seeded model and data for the reference (`torch.optim.SGD/Adam/AdamW`, schedulers from
`torch.optim.lr_scheduler`) and for the learner's object, and returns the whole trajectory.
"""

# Imported once by the grading sandbox before it forks a run per submission: optimizers import it
# lazily, which cost 1 s of CPU in every forked check runner (primer/grader/zygote.py).
SANDBOX_PRELOAD = ("torch._dynamo",)

from . import gradient_descent, minibatches, sgd, adam, optimizer_memory, schedules  # noqa: F401, I001  (registers the checks, in the notebook's order)
