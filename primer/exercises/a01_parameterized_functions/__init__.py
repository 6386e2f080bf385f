"""Assignment 01, primer §3.1: a model is a parameterized function; losses on a dataset.

Each exercise: how its cases are made from a seed, the torch reference, the tolerance, and the
hints (objects implementing a known mistake). One module per exercise, in the notebook's order:

    count_parameters.py     count_parameters
    functional_forward.py   functional_forward
    mse_loss.py             mse_loss
    cross_entropy.py        cross_entropy (and the functions its notebook forbids)
    next_token_loss.py      next_token_loss
    dataset_loss.py         dataset_loss

and logits.py, what cross_entropy and next_token_loss share: logits in the thousands whose values
in a row are far apart. Mutants used to test these checks: tests/mutants/a01_parameterized_functions/.
"""

from . import count_parameters, functional_forward, mse_loss, cross_entropy, next_token_loss, dataset_loss  # noqa: F401, I001  (registers the checks, in the notebook's order)
