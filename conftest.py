"""The suite's order: the slowest scopes first, so that `pytest -n 3 --dist loadscope` ends the
workers at about the same time. xdist hands scopes out in collection order only with
`--no-loadscope-reorder` (the Makefile passes it): by default it sorts scopes by their number of
tests, which ran the 6-test browser module late and left one worker idle for the last 40 s.

The seconds are rough figures from `make test` (2 workers) on 2 cores (the start and end of each scope's
tests on its worker); a new slow module belongs here too. Only the order changes: every test
runs, each scope on one worker.
"""

import pytest

from tests.helpers import solution_output_problem

SECONDS = {  # by node id prefix; the longest matching prefix counts
    "tests/test_browser.py": 140,
    "tests/test_classrun.py": 150,
    "tests/test_exercises.py": 290,
    "tests/test_progress.py": 33,
    "tests/test_adversarial.py": 65,
    "tests/test_nbgrader_e2e.py::TestAutograde06": 40,
    "tests/test_postgres.py": 32,
    "tests/test_a06_torchrun.py": 32,
    "tests/test_launch.py": 26,
    "solutions/06_data_parallel": 26,
    "tests/test_a06_grading.py": 23,
    "tests/test_nbgrader_e2e.py": 22,
    "tests/test_zip_collect.py": 18,
    "solutions/02_gradient_descent": 15,
    "solutions/05_mixed_precision": 13,
    "tests/test_zygote.py": 13,
    "solutions/07_model_parallel": 13,
    "tests/test_release.py": 13,
    "tests/test_binder.py": 12,
    "solutions/04_layers": 10,
    "tests/test_sandbox.py": 10,
    "solutions/03_backpropagation": 8,
}


def pytest_configure(config):
    # Tests interrupt the programs they start (a kernel's launch, an instructor's grade.py) with
    # SIGINT. A shell starts a background job (`make test &`) with SIGINT ignored, every program
    # it starts would inherit that, and an ignored SIGINT interrupts nothing: the tests would hang
    # or pass vacuously. Handled here, it is the default again in every program started after.
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)

    # The test workers share two cores: each judges in-process checks on one torch thread. Their
    # tensors are tiny, and two workers' thread pools spinning on two cores cost system time
    # (tests/test_exercises.py: 101 s of CPU with torch's default threads, 85 s with one).
    import torch

    torch.set_num_threads(1)


def _seconds(nodeid: str) -> int:
    matches = [prefix for prefix in SECONDS if nodeid.startswith(prefix)]
    return SECONDS[max(matches, key=len)] if matches else 0


def _forks_ranks(item) -> bool:
    """In tests/test_exercises.py: whether the item judges an exercise of 06 or 07, whose checks
    fork gloo ranks from the test process. Forking costs in proportion to the process's memory
    (the kernel copies its page tables, then tears them down), and the module's tests keep adding
    to it (01-05's: 180 MB of heap). The 06/07 tests took 153 s after 01-05's, 122 s alone. So
    they go first."""
    if not item.nodeid.startswith("tests/test_exercises.py::") or not hasattr(item, "callspec"):
        return False
    params = item.callspec.params
    assignment = params.get("assignment") or getattr(params.get("variant"), "assignment", "")
    return assignment.removeprefix("a")[:2] in ("06", "07")


def pytest_collection_modifyitems(session, config, items):
    # Stable: the order within a scope is kept, but for test_exercises' 06 and 07.
    items.sort(key=lambda item: (-_seconds(item.nodeid), not _forks_ranks(item)))


# --------------------------------------------------------------------------- solution notebooks
# nbval executes every solution notebook (hidden tests included) and fails a cell that raises.
# What a solution cell shows is checked here, on the outputs nbval collected (no second run):
# nothing on stderr (a warning a learner would see), and every figure shown as an image, not as
# its text ("<Figure size 640x480 with 1 Axes>", which is what a broken backend gives).
# tests/test_browser.py shows the released notebooks, and 01 completed, in JupyterLab itself.

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    outcome = yield
    if outcome.excinfo is None and item.nodeid.startswith("solutions/") and hasattr(item, "test_outputs"):
        problem = solution_output_problem(item.test_outputs)
        if problem:
            outcome.force_exception(AssertionError(f"{item.nodeid}: {problem}"))
