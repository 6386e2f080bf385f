"""The course package that notebooks import: `from primer import check`.

Importing it registers every exercise's checks and installs the tripwires for the functions
exercises forbid (primer/rules.py) at once, before any learner cell runs: a name that a cell
imports or saves afterwards (`from torch.nn.functional import cross_entropy`, a default argument)
is already the tripwire, in the notebook as in the grading sandbox.
"""

from primer import exercises as _exercises  # noqa: F401  (registers the checks)
from primer import rules as _rules
from primer.grading import Case, Check, CheckFailed, Hint, check, evaluate, register

_rules.install()

__all__ = ["Case", "Check", "CheckFailed", "Hint", "check", "evaluate", "register"]
