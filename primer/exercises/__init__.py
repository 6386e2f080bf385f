"""Every assignment's exercise specs: a package per assignment (aNN_<name>/), a module per exercise.

Importing this package registers all checks. A module holds, for its exercise, how its inputs
are made from a seed, the torch reference, the tolerance and the hints for known mistakes.
The mistakes a learner might write, used to test these checks, live in tests/mutants/.

An assignment that fails to import is recorded in IMPORT_ERRORS instead of breaking the others:
a bug in one assignment's specs must not stop learners working on another.
"""

import importlib
import pkgutil
import sys
import traceback

IMPORT_ERRORS: dict[str, str] = {}

for _module in pkgutil.iter_modules(__path__):
    try:
        importlib.import_module(f"{__name__}.{_module.name}")
    except Exception:
        IMPORT_ERRORS[_module.name] = traceback.format_exc()


def sandbox_preload(assignment: str) -> tuple[str, ...]:
    """What the grading sandbox imports before forking this assignment's runs: the spec module's
    SANDBOX_PRELOAD ('02_gradient_descent' -> a02_gradient_descent.SANDBOX_PRELOAD)."""
    return tuple(getattr(sys.modules.get(f"{__name__}.a{assignment}"), "SANDBOX_PRELOAD", ()))
