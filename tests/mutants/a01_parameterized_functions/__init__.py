"""Assignment 01: mistakes a learner might make, and correct answers written differently.

One module per exercise, imported here in the notebook's order (the order of the variants
matters: tests take the first mutant of an exercise).
"""

from . import count_parameters, functional_forward, mse_loss, cross_entropy, next_token_loss, dataset_loss  # noqa: F401, I001  (registers the variants, in the notebook's order)
