"""The suite's order: the slowest scopes first, so that `pytest -n 2 --dist loadscope` ends both
workers at about the same time (xdist hands scopes out in collection order; a long module
collected last, such as a notebook under solutions/, would otherwise run alone at the end).

The seconds are rough figures from `make test` on 2 cores (pytest's --durations); a new slow
module belongs here too. Only the order changes: every test runs, each scope on one worker.
"""

SECONDS = {  # by node id prefix; the longest matching prefix counts
    "tests/test_browser.py": 250,
    "tests/test_classrun.py": 145,
    "tests/test_adversarial.py": 100,
    "tests/test_progress.py": 80,
    "tests/test_nbgrader_e2e.py::TestAutograde06": 60,
    "solutions/06_data_parallel": 50,
    "solutions/02_gradient_descent": 40,
    "tests/test_postgres.py": 35,
    "tests/test_nbgrader_e2e.py": 30,
    "tests/test_zip_collect.py": 30,
    "tests/test_a06_grading.py": 30,
    "solutions/05_mixed_precision": 30,
}


def _seconds(nodeid: str) -> int:
    matches = [prefix for prefix in SECONDS if nodeid.startswith(prefix)]
    return SECONDS[max(matches, key=len)] if matches else 0


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: -_seconds(item.nodeid))  # stable: the order within a scope is kept
