"""Assignment 02: mistakes a learner might make, and correct answers written differently.

One module per exercise or group of exercises, imported here in the notebook's order (the order
of the variants matters: tests take the first mutant of an exercise).

The first gradient_descent mutant is pasted into a notebook by the nbgrader end-to-end test, so
it only uses what the notebook's first cell imports (torch).
"""

from . import gradient_descent, minibatches, sgd, adam, optimizer_memory, schedules  # noqa: F401, I001  (registers the variants, in the notebook's order)
