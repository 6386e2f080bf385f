"""Every assignment's exercise specs, one module per assignment (aNN_<name>.py).

Importing this package registers all checks. A module holds, for each exercise, how its inputs
are made from a seed, the torch reference, the tolerance and the hints for known mistakes.
The mistakes a learner might write, used to test these checks, live in tests/mutants/.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
