"""A learner's progress report: `make progress`, or `python -m primer.progress notebooks`.

For every assignment it runs, in a process of its own per notebook (forked from one that has
imported torch and the course once), the notebook's set-up cell, the learner's cells (the ones
marked `# YOUR CODE HERE` in the release) and the visible part of every graded test cell, then
prints a table: assignment → exercise → passed, failed (with the first line of the check's
explanation) or not started, with points and a total.

It reads the notebooks and never writes to them (no outputs are saved, nothing is renamed).
Demonstration cells are not run, so the report is quick. The grade itself comes from the
autograder, which also runs hidden tests on fresh inputs: passing here is necessary, not
sufficient.

A notebook that is not valid JSON, or that was renamed or deleted, gets a line that says so and
the report goes on with the others.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pkgutil
import re
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from primer import notebooks

DEFAULT_TIMEOUT = 60.0  # seconds per notebook; a learner's endless loop stops here
NOT_IMPLEMENTED = "is not implemented yet"
PASSED, FAILED, NOT_STARTED, NOT_RUN = "passed", "failed", "not started", "not run"


# --------------------------------------------------------------------------- what to report on

def course_assignments() -> list[str]:
    """The course's assignments, from its exercise specs (primer/exercises/aNN_name/).

    This is how the report knows about a notebook that a learner deleted with its folder.
    """
    from primer import exercises

    path = [str(Path(exercises.__file__).parent)]  # listed, not imported (no torch needed)
    return sorted(m.name[1:] for m in pkgutil.iter_modules(path) if re.fullmatch(r"a\d\d_\w+", m.name))


@dataclass
class Cell:
    """One graded test cell of the learner's notebook, and what running it showed."""

    grade_id: str
    exercise: str
    points: float
    status: str = NOT_RUN
    message: str = ""


@dataclass
class Notebook:
    assignment: str
    path: Path
    problem: str = ""  # set when the notebook cannot be run (missing, renamed, not JSON)
    cells: list[Cell] = field(default_factory=list)
    note: str = ""  # e.g. the set-up cell failed, or the notebook timed out
    seconds: float = 0.0  # wall-clock time of its process
    cpu_seconds: float | None = None  # CPU time of its process (known when it finished)


def discover(folder: Path) -> list[Notebook]:
    """One entry per assignment: the course's, plus any other assignment folder in `folder`."""
    folders = {p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")
               and any(p.glob("*.ipynb"))} if folder.is_dir() else set()
    found = []
    for assignment in sorted(set(course_assignments()) | folders):
        path = folder / assignment / f"{assignment}.ipynb"
        entry = Notebook(assignment, path)
        if not path.exists():
            others = sorted(p.name for p in (folder / assignment).glob("*.ipynb")) \
                if (folder / assignment).is_dir() else []
            if others:
                entry.problem = (f"{path.name} not found, but this folder has {', '.join(others)}: "
                                 f"renamed? The autograder and this report look for {path.name}")
            else:
                entry.problem = f"{path} not found (deleted or moved?)"
        else:
            try:
                json.loads(path.read_text(encoding="utf-8"))  # for the line and column of a JSON error
                nb = notebooks.read(path)
                entry.cells = [_cell(c) for c in notebooks.graded_cells(nb)]
            except json.JSONDecodeError as exc:
                entry.problem = (f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: "
                                 f"{exc.msg}); repair it in a text editor or restore it from git")
            except Exception as exc:  # nbformat's own reading errors, unreadable files
                entry.problem = f"{path.name} could not be read as a notebook: {_first_line(exc)}"
        found.append(entry)
    return found


def _cell(graded: notebooks.GradedCell) -> Cell:
    keys = graded.check_keys
    return Cell(graded.grade_id, keys[0].split(".")[0] if keys else graded.grade_id, graded.points)


def _first_line(exc: BaseException | str) -> str:
    if isinstance(exc, SyntaxError):  # not "(<ipython-input-1-629d8bd1a26f>, line 1)"
        return f"{type(exc).__name__}: {exc.msg} (line {exc.lineno} of the cell)"
    text = str(exc).strip().splitlines()
    line = text[0] if text else ""
    name = type(exc).__name__ if isinstance(exc, BaseException) else ""
    return f"{name}: {line}" if name and not line.startswith(("✗", name)) else line or name


# --------------------------------------------------------------------------- running one notebook

def _outcome(error: BaseException | None, exercise: str, broken_cell: str) -> tuple[str, str]:
    from primer.grading import CheckFailed

    if error is None:
        return PASSED, ""
    first = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, NotImplementedError) or (isinstance(error, CheckFailed)
                                                  and NOT_IMPLEMENTED in first):
        return NOT_STARTED, ""
    if isinstance(error, CheckFailed):  # the first line; and the named mistake, when there is one
        hints = [line.strip() for line in str(error).splitlines() if line.strip().startswith("Hint:")]
        return FAILED, "\n".join([first, *hints[:1]])
    if broken_cell:
        return FAILED, f"the cell that defines it raised {broken_cell}"
    if isinstance(error, NameError) and exercise in str(error):
        return FAILED, f"`{exercise}` is not defined: is its cell missing, renamed or not a solution cell?"
    return FAILED, _first_line(error)


def run_notebook(path: Path, results: Path) -> None:
    """Worker (its own process): run set-up, learner and visible test cells; one JSON line per graded cell."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    config = Config()
    config.HistoryManager.enabled = False  # nothing written to ~/.ipython
    shell = InteractiveShell.instance(config=config)
    nb = notebooks.read(path)
    os.chdir(path.parent)  # as in Jupyter: relative paths and imports start at the notebook's folder
    sys.path.insert(0, str(path.parent))

    def run(source: str) -> BaseException | None:
        sink = io.StringIO()
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            result = shell.run_cell(source, store_history=False, silent=True)
        return result.error_before_exec or result.error_in_exec

    with open(results, "a", encoding="utf-8") as out:
        def emit(record: dict) -> None:
            out.write(json.dumps(record) + "\n")
            out.flush()

        code_cells = [c for c in nb.cells if c.cell_type == "code"]
        error = run(notebooks.setup_cell(nb)) if code_cells else None
        if error is not None:
            emit({"note": f"the set-up cell (the first code cell) raised {_first_line(error)}"})
        broken_cell = ""  # the error of the learner's cell that the next graded cells test
        for cell in code_cells[1:]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution") and not meta.get("grade"):
                error = run(cell.source)
                broken_cell = "" if error is None else _first_line(error)
            elif meta.get("grade"):
                graded = notebooks.GradedCell(meta.get("grade_id", "?"), 0.0, cell.source)
                exercise = _cell(graded).exercise
                status, message = _outcome(run(graded.visible_source), exercise, broken_cell)
                emit({"grade_id": graded.grade_id, "status": status, "message": message})
        emit({"cpu_seconds": time.process_time()})  # all of this process's threads


# What every notebook's worker imports before anything else (torch alone is about 1.5 s of CPU).
# A fork server imports them once, and each notebook's worker is forked from it: still a fresh
# process per notebook, with the learner's code in it alone. (A process has one fork server: if
# the grader's started it first, its preload is the one, and these are imported by each worker.)
WORKER_PRELOAD = ["torch", "matplotlib.pyplot", "IPython.core.interactiveshell", "primer"]


def _worker(path: str, results: str) -> None:
    """A notebook's worker, forked from the fork server: a session of its own (so that a deadline
    kills it and whatever it started), nothing on stdin or stdout, stderr kept for the report."""
    os.setsid()
    with open(os.devnull, "rb") as null_in, open(os.devnull, "wb") as null_out, \
            open(Path(results).with_suffix(".stderr"), "wb") as err:
        os.dup2(null_in.fileno(), 0)
        os.dup2(null_out.fileno(), 1)
        os.dup2(err.fileno(), 2)
    sys.stdin, sys.stdout, sys.stderr = (open(0, "r", closefd=False), open(1, "w", closefd=False),
                                         open(2, "w", closefd=False))
    sys.dont_write_bytecode = True
    # IPYTHONDIR: a throw-away profile, so that nothing is written to the learner's ~/.ipython.
    os.environ.update(MPLBACKEND="Agg", IPYTHONDIR=str(Path(results).with_suffix(".ipython")))
    import matplotlib

    matplotlib.use("Agg")  # (pyplot may have been imported with the fork server's backend)
    try:
        run_notebook(Path(path), Path(results))
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    sys.stdout.flush()
    sys.stderr.flush()


def _start(entry: Notebook, results: Path):
    import multiprocessing

    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_PRELOAD)
    proc = ctx.Process(target=_worker, args=(str(entry.path.resolve()), str(results)),
                       name=f"primer-progress-{entry.assignment}")
    proc.start()
    return proc


def _collect(entry: Notebook, results: Path, proc, timed_out: float | None) -> None:
    records = [json.loads(line) for line in results.read_text(encoding="utf-8").splitlines() if line]
    by_id = {c.grade_id: c for c in entry.cells}
    notes = []
    for record in records:
        if "cpu_seconds" in record:
            entry.cpu_seconds = record["cpu_seconds"]
        elif "note" in record:
            notes.append(record["note"])
        elif record["grade_id"] in by_id:
            by_id[record["grade_id"]].status = record["status"]
            by_id[record["grade_id"]].message = record["message"]
    if timed_out is not None:
        notes.append(f"stopped after {timed_out:g} s (a loop that never ends?); later tests were not run")
    elif proc.exitcode != 0:
        err = results.with_suffix(".stderr")
        stderr = err.read_text(errors="replace").strip().splitlines() if err.exists() else []
        notes.append(f"the notebook's process stopped (exit code {proc.exitcode})"
                     + (f": {stderr[-1]}" if stderr else ""))
    entry.note = "; ".join(notes)


def run_all(entries: list[Notebook], timeout: float = DEFAULT_TIMEOUT, jobs: int | None = None) -> None:
    """Run the readable notebooks, `jobs` at a time, each in its own process with a deadline."""
    todo = [e for e in entries if not e.problem]
    jobs = max(1, jobs or min(len(todo), os.cpu_count() or 1))
    with tempfile.TemporaryDirectory(prefix="primer-progress-") as tmp:
        running: list = []  # (entry, its results file, its process, when it started)
        while todo or running:
            while todo and len(running) < jobs:
                entry = todo.pop(0)
                results = Path(tmp) / f"{entry.assignment}.jsonl"
                results.touch()
                running.append((entry, results, _start(entry, results), time.monotonic()))
            time.sleep(0.05)
            for item in list(running):
                entry, results, proc, started = item
                elapsed = time.monotonic() - started
                if proc.is_alive() and elapsed < timeout:
                    continue
                timed_out = None
                if proc.is_alive():
                    try:
                        os.killpg(proc.pid, 9)  # the worker and anything it started
                    except ProcessLookupError:  # (not yet in a session of its own)
                        proc.kill()
                    timed_out = timeout
                proc.join()
                entry.seconds = elapsed
                _collect(entry, results, proc, timed_out)
                proc.close()
                running.remove(item)


# --------------------------------------------------------------------------- the table

def _points(x: float) -> str:
    return f"{x:g}"


def exercise_rows(entry: Notebook) -> list[tuple[str, str, float, float, str]]:
    """(exercise, status, points earned, points possible, message) in notebook order."""
    rows: dict[str, list[Cell]] = {}
    for cell in entry.cells:
        rows.setdefault(cell.exercise, []).append(cell)
    out = []
    for exercise, cells in rows.items():
        statuses = {c.status for c in cells}
        if statuses == {PASSED}:
            status = PASSED
        elif statuses == {NOT_STARTED}:
            status = NOT_STARTED
        elif statuses == {NOT_RUN}:
            status = NOT_RUN
        else:
            status = FAILED
        messages = [c.message for c in cells if c.status == FAILED and c.message]
        earned = sum(c.points for c in cells if c.status == PASSED)
        out.append((exercise, status, earned, sum(c.points for c in cells), messages[0] if messages else ""))
    return out


def report(entries: list[Notebook], folder: Path) -> str:
    lines = [f"Progress in {folder}/ (visible tests only; the autograder also runs hidden tests "
             "on fresh inputs)", ""]
    width = max([len("exercise")] + [len(c.exercise) for e in entries for c in e.cells])
    total = possible = 0.0
    unreadable = 0
    for entry in entries:
        if entry.problem:
            unreadable += 1
            lines += [f"{entry.assignment}", f"  ! {entry.problem}", ""]
            continue
        rows = exercise_rows(entry)
        earned = sum(r[2] for r in rows)
        out_of = sum(r[3] for r in rows)
        total, possible = total + earned, possible + out_of
        lines.append(f"{entry.assignment}   {_points(earned)} / {_points(out_of)} points")
        if entry.note:
            lines.append(f"  ! {entry.note}")
        for exercise, status, got, of, message in rows:
            line = f"  {exercise:<{width}}  {status:<11}  {_points(got):>3} / {_points(of):<3}"
            first, *more = message.splitlines() or [""]
            lines.append((line + f"  {first}" if first else line).rstrip())
            lines += [" " * (len(line) + 2) + extra for extra in more]
        if not rows:
            lines.append("  (no graded cells)")
        lines.append("")
    summary = f"Total: {_points(total)} / {_points(possible)} points"
    if unreadable:
        summary += (f" ({unreadable} notebook{'s' * (unreadable != 1)} could not be read and "
                    f"{'are' if unreadable != 1 else 'is'} not counted)")
    lines.append(summary)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m primer.progress", description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", nargs="?", default="notebooks",
                        help="the notebooks folder (default: notebooks)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds per notebook (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--jobs", type=int, default=None, help="notebooks run at once (default: CPU count)")
    args = parser.parse_args(argv)
    folder = Path(args.folder)
    entries = discover(folder)
    run_all(entries, timeout=args.timeout, jobs=args.jobs)
    print(report(entries, folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
