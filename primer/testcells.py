"""The notebooks' test cells and exercise numbers, generated from the specs (`make release` runs it).

    python -m primer.testcells solutions/NN_x/NN_x.ipynb [...]      rewrite them in place
    python -m primer.testcells --check solutions/NN_x/NN_x.ipynb    exit 1 if one is out of date

For each exercise, in the order the notebook defines them, each registered check
(primer/exercises/) gets one test cell: the visible call, the hidden call, and nbgrader's
metadata, with the check's points. An existing test cell is rewritten where it is (its grade id
and cell id are kept, as the gradebook knows them); a check without one gets a new cell next to
its exercise's others, in the order the checks are registered (the first after the solution
cell); a test cell whose check is no longer registered is removed. The "### Exercise N:"
headings are numbered in order, each counting the exercises it names in backticks
("### Exercises 3–5: `relu(x)`, `gelu(x)`, `silu(x)`").

Everything else in the notebook (text, solution cells, demonstrations) is the author's.
"""

from __future__ import annotations

import re
import sys

import nbformat

import primer.exercises  # noqa: F401  (registers every check)
from primer import notebooks
from primer.grading import REGISTRY, checks_for

HEADING = re.compile(r"^(#+ )Exercises? \d+(?:–\d+)?(:)(.*)$", re.M)
DEFINITION = re.compile(r"^(?:def|class) (\w+)", re.M)


def test_source(key: str, exercise: str) -> str:
    return (f'check("{key}", {exercise})\n### BEGIN HIDDEN TESTS\n'
            f'check("{key}", {exercise}, hidden=True)\n### END HIDDEN TESTS')


def test_metadata(grade_id: str, points: int) -> dict:
    return {"nbgrader": {"grade": True, "grade_id": grade_id, "locked": True, "points": points,
                         "schema_version": 3, "solution": False, "task": False}}


_nbgrader, _is_test = notebooks._nbgrader, notebooks.is_test_cell


def _key(cell) -> str | None:
    found = notebooks.CHECK_CALL.search(cell.source)
    return found.group(1) if found else None


def exercises_defined(nb) -> list[tuple[int, str]]:
    """(index of the solution cell, exercise) for each registered exercise, in notebook order."""
    registered = {spec.exercise for spec in REGISTRY.values()}
    found, seen = [], set()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _nbgrader(cell).get("solution"):
            for name in DEFINITION.findall(cell.source):
                if name in registered and name not in seen:
                    seen.add(name)
                    found.append((index, name))
    return found


def sync(nb) -> nbformat.NotebookNode:
    """The notebook with its test cells and exercise numbers as the specs say (a new object)."""
    nb = nbformat.from_dict(nb)
    defined = exercises_defined(nb)
    existing = {_key(c): c for c in nb.cells if _is_test(c)}
    wanted = {spec.key for _, name in defined for spec in checks_for(name)}
    nb.cells = [c for c in nb.cells if not _is_test(c) or _key(c) in wanted]
    for _, exercise in defined:
        for spec in checks_for(exercise):
            cell = existing.get(spec.key)
            if cell is None:
                cell = nbformat.v4.new_code_cell()
                _insert(nb, spec, cell)
                grade_id = f"test_{exercise}_{spec.name}"
            else:
                grade_id = _nbgrader(cell)["grade_id"]
            cell.source = test_source(spec.key, exercise)
            cell.metadata = nbformat.from_dict({**cell.metadata, **test_metadata(grade_id, spec.points)})
            cell.outputs, cell.execution_count = [], None
    _renumber(nb)
    return nb


def _insert(nb, spec, cell) -> None:
    """Where the check's test cell belongs: after the test cell of the check registered before it,
    else before the exercise's first test cell, else after its solution cell."""
    keys = [c.key for c in checks_for(spec.exercise)]
    earlier = set(keys[:keys.index(spec.key)])
    tests = [(i, _key(c)) for i, c in enumerate(nb.cells) if _is_test(c)
             and (_key(c) or "").split(".")[0] == spec.exercise]
    before = [i for i, key in tests if key in earlier]
    if before:
        nb.cells.insert(before[-1] + 1, cell)
    elif tests:
        nb.cells.insert(tests[0][0], cell)
    else:
        solution = next(i for i, name in exercises_defined(nb) if name == spec.exercise)
        nb.cells.insert(solution + 1, cell)


def _renumber(nb) -> None:
    """Number the exercise headings in order; a heading counts the exercises it names in backticks
    ("### Exercises 3–5: `relu(x)`, `gelu(x)`, `silu(x)`")."""
    number = 0

    def label(match: re.Match) -> str:
        nonlocal number
        count = max(1, len(re.findall(r"`[^`]+`", match.group(3))))
        first, number = number + 1, number + count
        return f"{match.group(1)}{f'Exercise {first}' if count == 1 else f'Exercises {first}–{number}'}:" \
               f"{match.group(3)}"

    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = HEADING.sub(label, cell.source)


def main(argv: list[str]) -> int:
    check_only = "--check" in argv
    stale = []
    for path in [a for a in argv if a != "--check"]:
        nb = nbformat.read(path, as_version=4)
        fresh = sync(nb)
        if fresh != nb:
            stale.append(path)
            if not check_only:
                nbformat.write(fresh, path)
    if stale:
        verb = "out of date with the specs (run `make release`)" if check_only else "updated from the specs"
        print("\n".join(f"{p}: {verb}" for p in stale))
    return 1 if stale and check_only else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
