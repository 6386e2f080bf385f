"""Grade one assignment for the whole class: verified in a sandbox, in parallel, resumable.

    python autograder/grade.py ASSIGNMENT [--workers N] [--student ID ...] [--force] [--cell-timeout S]
    make autograde ASSIGNMENT=... [WORKERS=N] [STUDENT=ID] [FORCE=1]

Prints a line per student (score / max, seconds, or why the notebook could not be graded) and a
progress bar with an ETA on stderr, then writes the class report (autograder/class-report/A/).
A student already graded from the same submission is skipped; a changed submission is regraded;
--force regrades (with --student, just those). Ctrl-C stops cleanly; running again resumes.
Exit status: 0 when the run finished (bad submissions included), 1 when the run itself failed
(bad arguments, no gradebook or assignment, another run in progress, sandbox refused), 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

COURSE = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None, course: Path = COURSE) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("--workers", type=int, default=os.cpu_count(),
                        help="sandboxed workers in parallel (default: the number of cores)")
    parser.add_argument("--student", action="append", default=[], metavar="ID",
                        help="grade only this student (repeatable)")
    parser.add_argument("--force", action="store_true", help="regrade even unchanged submissions")
    parser.add_argument("--cell-timeout", type=float, metavar="S",
                        help="seconds per learner cell (default: nbgrader_config.py)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    # nbgrader runs `alembic` from PATH: this environment's first
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    sys.path.insert(0, str(course))

    from primer.grader.classrun import ClassRun, RunFailed, sigterm_as_interrupt
    from primer.grader.report import write_report

    try:
        with sigterm_as_interrupt():
            run = ClassRun(course, args.assignment, workers=args.workers, students=args.student,
                           force=args.force, cell_seconds=args.cell_timeout,
                           progress=not args.no_progress)
            run.run()
    except RunFailed as exc:
        print(f"grade.py: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted: the students finished so far are saved; run the same command again "
              "to grade the rest", file=sys.stderr)
        return 130
    print()
    print(write_report(course, args.assignment, run.stray))
    return 0


if __name__ == "__main__":
    sys.exit(main())
