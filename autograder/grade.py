"""Autograde one assignment for every submitted student, then say what happened to each.

    python autograder/grade.py ASSIGNMENT [--timeout SECONDS]     (or: make autograde)

nbgrader gives a student 0 when their notebook is not valid JSON, is missing or crashes the
kernel, and only says so in a long log. This script checks each submission first, runs
`nbgrader autograde` for everyone (one bad submission never stops the others), and prints one
line per student: the score, or why there is none. Exit status: 0 when every submission was
processed (bad ones included), 1 when nbgrader itself could not run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
COURSE = HERE.parent


def submission_problem(folder: Path, assignment: str) -> str | None:
    """Why this student's submission cannot be graded as it is, or None."""
    expected = folder / f"{assignment}.ipynb"
    if not expected.exists():
        found = sorted(p.name for p in folder.glob("*.ipynb"))
        return (f"no {expected.name} (found: {', '.join(found) or 'no notebook'}); "
                "a renamed notebook is not graded")
    try:
        nb = json.loads(expected.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{expected.name} is not valid JSON ({exc}); the file is damaged or truncated"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return f"{expected.name} is JSON but not a notebook"
    return None


def nbgrader(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=HERE, env=env,
                          capture_output=True, text=True)


def scores(assignment: str) -> dict[str, tuple[float, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    url = f"sqlite:///{HERE / 'gradebook.db'}"
    with Gradebook(url) as gb:
        out = {}
        for student in gb.students:
            try:
                sub = gb.find_submission(assignment, student.id)
            except MissingEntry:
                continue
            out[student.id] = (sub.score, sub.max_score)
        return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--timeout", type=int, help="seconds per cell (default: nbgrader_config.py)")
    args = parser.parse_args(argv)

    submitted = COURSE / "submitted"
    students = sorted(p.name for p in submitted.iterdir() if (p / args.assignment).is_dir()) \
        if submitted.is_dir() else []
    if not students:
        print(f"no submissions in {submitted}/<student>/{args.assignment}/")
        return 1
    problems = {s: submission_problem(submitted / s / args.assignment, args.assignment)
                for s in students}

    extra = [f"--Execute.timeout={args.timeout}"] if args.timeout else []
    run = nbgrader("autograde", args.assignment, "--create", *extra)
    (HERE / f"autograde-{args.assignment}.log").write_text(run.stdout + run.stderr)
    graded = scores(args.assignment)
    autograded = COURSE / "autograded"

    print(f"{'student':24s} {'score':>12s}  notes")
    for s in students:
        done = (autograded / s / args.assignment / f"{args.assignment}.ipynb").exists()
        if done and s in graded:
            score, max_score = graded[s]
            print(f"{s:24s} {score:5g} / {max_score:<4g}  ")
        else:
            why = problems[s] or "the kernel died or nbgrader failed on this notebook (see the log)"
            print(f"{s:24s} {'0 (not graded)':>12s}  {why}")
    print(f"\nnbgrader's log: {HERE / f'autograde-{args.assignment}.log'}")
    if not graded and run.returncode != 0:
        print(run.stderr[-2000:], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
