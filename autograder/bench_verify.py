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


def measure(assignment: str, repeat: int) -> tuple[float, float, float]:
    import nbformat

    from primer.exercises import sandbox_preload
    from primer.grader.nbgrader_plugin import warm_sandbox
    from primer.grader.sandbox import Sandbox
    from primer.grader.verify import verify

    nb = nbformat.read(REPO / "solutions" / assignment / f"{assignment}.ipynb", as_version=4)
    release = nbformat.read(REPO / "notebooks" / assignment / f"{assignment}.ipynb", as_version=4)
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
        if executed.notes or executed.problem:
            sys.exit(f"{assignment}: executing the solution went wrong: {executed.notes or executed.problem}")
        executing.append(executed.sandbox_cpu_seconds)
        started = time.process_time()
        verification = verify(nb, release, **run)
        grader_cpu.append(time.process_time() - started)
        sandbox_cpu.append(verification.sandbox_cpu_seconds)
        if verification.score != verification.max_score:
            sys.exit(f"{assignment}: the solution scored {verification.score} / {verification.max_score}")
    return statistics.median(executing), statistics.median(sandbox_cpu), statistics.median(grader_cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    assignments = args.assignments or sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    print("| assignment | executing | verifying (sandbox + grader) | on top |")
    print("|---|---|---|---|")
    for assignment in assignments:
        executing, sandbox_cpu, grader_cpu = measure(assignment, args.repeat)
        on_top = sandbox_cpu + grader_cpu - executing
        print(f"| {assignment} | {executing:.2f} s | {sandbox_cpu:.2f} + {grader_cpu:.2f} = "
              f"{sandbox_cpu + grader_cpu:.2f} s | {on_top:+.2f} s |", flush=True)


if __name__ == "__main__":
    main()
