"""Benchmark: the CPU that verifying a notebook costs on top of executing it, per assignment.

    .venv/bin/python autograder/bench_verify.py [ASSIGNMENT ...] [--repeat 3]
    make bench-verify

For each assignment's solution notebook, in one warm sandbox (as a grading worker has; needs
root, else each run starts its own sandbox and the figures include Python's start-up):

- executing: the learner's cells and the test cells' `check` calls (visible and hidden) run as
  plain cells in the sandbox, which is what a kernel running the notebook does;
- verifying: what grading does, the sandbox calling the learner's objects on the grading cases
  (its CPU) plus the grading process judging the outputs (its own CPU).

It prints the median of `--repeat` runs of each, side by side, and the difference ("on top").
It asserts nothing about speed; it does check that the solution gets every point.

`--wrong` grades, instead of the solution, the solution with every exercise it can replace made a
known mistake that the checks name (a mutant of tests/mutants/ with a hint): the dearest case to
judge, since every registered mistake of every failing case is run to find the one that matches.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _as_plain_cells(nb: dict) -> dict:
    """The notebook with its test cells made ordinary code cells (hidden-test markers dropped), so
    that the sandbox runs their `check` calls as a kernel would, and nothing is left to verify."""
    plain = copy.deepcopy(nb)
    for cell in plain["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = "\n".join(line for line in source.splitlines() if not line.startswith("###"))
            cell["metadata"] = {}
    return plain


def _every_exercise_wrong(assignment: str, nb):
    """`nb` with each exercise's solution cell replaced by the first named mistake that works as a
    cell of its own (some mutants use helpers of their module) and fails a visible check naming it;
    and how many exercises were replaced."""
    sys.path.insert(0, str(REPO))
    from primer.grading import VISIBLE_SEED, checks_for, evaluate
    from tests.grading_course import edited, solution_cell_id, standalone_mutants
    from tests.helpers import exercises_in

    replaced = 0
    for exercise in exercises_in(assignment):
        for variant, source, obj in standalone_mutants(assignment, exercise):
            messages = [evaluate(c, obj, VISIBLE_SEED).message for c in checks_for(exercise)]
            if variant.hint and any(variant.hint in m and "is not defined" not in m for m in messages):
                nb, replaced = edited(nb, solution_cell_id(nb, exercise), source), replaced + 1
                break
    return nb, replaced


def measure(assignment: str, repeat: int, wrong: bool = False) -> tuple[float, float, float]:
    import nbformat

    from primer.exercises import sandbox_preload
    from primer.grader.nbgrader_plugin import warm_sandbox
    from primer.grader.sandbox import Sandbox
    from primer.grader.verify import verify

    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(REPO / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
    if wrong:
        nb, replaced = _every_exercise_wrong(assignment, nb)
        print(f"({assignment}: {replaced} exercises made a named mistake)", file=sys.stderr)
    plain = _as_plain_cells(nb)
    sandbox = Sandbox()
    uid = sandbox.uid_base + 970
    preload = sandbox_preload(assignment)
    box = warm_sandbox(sandbox, uid, preload)
    folder = REPO / "solutions" / assignment
    run = dict(seed=12345, sandbox=box, notebook_dir=folder, uid=uid, preload=preload)
    verify(plain, release, **run)  # warms the zygote (its start-up is not a notebook's cost)
    executing, sandbox_cpu, grader_cpu = [], [], []
    for _ in range(repeat):
        executed = verify(plain, release, **run)
        if (executed.notes or executed.problem) and not wrong:
            sys.exit(f"{assignment}: executing the solution went wrong: {executed.notes or executed.problem}")
        executing.append(executed.sandbox_cpu_seconds)
        started = time.process_time()
        verification = verify(nb, release, **run)
        grader_cpu.append(time.process_time() - started)
        sandbox_cpu.append(verification.sandbox_cpu_seconds)
        if not wrong and verification.score != verification.max_score:
            sys.exit(f"{assignment}: the solution scored {verification.score} / {verification.max_score}")
    return statistics.median(executing), statistics.median(sandbox_cpu), statistics.median(grader_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--wrong", action="store_true", help="every exercise a named mistake")
    args = parser.parse_args()
    assignments = args.assignments or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    print("| assignment | executing | verifying (sandbox + grader) | on top |")
    print("|---|---|---|---|")
    for assignment in assignments:
        executing, sandbox_cpu, grader_cpu = measure(assignment, args.repeat, args.wrong)
        on_top = sandbox_cpu + grader_cpu - executing
        print(f"| {assignment} | {executing:.2f} s | {sandbox_cpu:.2f} + {grader_cpu:.2f} = "
              f"{sandbox_cpu + grader_cpu:.2f} s | {on_top:+.2f} s |", flush=True)


if __name__ == "__main__":
    main()
