"""Inside the sandbox: run a submission's cells, then run its objects on the grading cases.

    python -m primer.grader.harvest WORKDIR      (started by primer.grader.verify, in the sandbox)

Reads WORKDIR/job.json (the cells to run, and for each exercise the checks and seeds), writes
what the learner's objects returned to WORKDIR/out/ as data (primer.outputs.dumps), and nothing
else. It judges nothing: the grader compares these outputs with references it computes itself, so
whatever learner code does to this process (patching torch, the course package, this module) can
change the outputs it reports, never the comparison.

One crash costs only what it breaks. Three kinds of process:
- the coordinator (this module's main process) imports torch once and never runs learner code;
- a cell runner, forked from it, runs the cells in order, then forks
- one check runner per exercise, which runs that exercise's checks and writes each result.
A cell runner that dies or hangs in cell i (os._exit, a segfault, a loop that ignores signals, a
limit) is killed and replaced by a new one that runs the same cells again without cell i; a check
runner that dies loses only the check it was running.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import signal
import sys
import time
import traceback
from pathlib import Path

from primer.grader.sandbox import limit_message

CELL_FILENAME = "<cell {index}>"


# --------------------------------------------------------------------------- helpers

def describe_exception(exc: BaseException) -> str:
    if isinstance(exc, MemoryError) or "can't allocate memory" in str(exc):
        return f"{type(exc).__name__}: {limit_message('memory_mb')}"
    if isinstance(exc, OSError) and exc.errno in (errno.EAGAIN, errno.EFBIG):
        limit = "processes" if exc.errno == errno.EAGAIN else "file_mb"
        return f"{type(exc).__name__}: {limit_message(limit)}"
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno} of the cell)"
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:300]}" if lines else type(exc).__name__


def describe_end(status: int | None, timeout: float | None = None) -> str:
    """Why a process ended, from its wait status (or a deadline)."""
    if status is None:
        return f"did not finish within {timeout:g} s (a loop that never ends?); it was stopped"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return limit_message("cpu_seconds")
        if sig == signal.SIGXFSZ:
            return limit_message("file_mb")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return f"the process was killed by signal {sig} ({name})"
    return f"the process ended (exit code {os.WEXITSTATUS(status)}: os._exit or a crash)"


def _write_json(path: Path, data) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    tmp.replace(path)


def _silence_output() -> None:
    """Learner prints go nowhere: the grader needs outputs, not text (and 100 MB prints cost nothing)."""
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    os.close(null)


# --------------------------------------------------------------------------- the check runner

def _run_checks(obj, checks: list[dict], out: Path) -> None:
    """Run each check's cases on the learner's object; one file per check, written as it finishes."""
    import torch

    from primer.grading import get_check, run_case
    from primer.outputs import DataError, dumps

    for item in checks:
        spec = get_check(item["key"])
        outcomes = []
        for case in spec.cases(torch.Generator().manual_seed(item["seed"])):
            outcome = run_case(spec, obj, case)
            outcomes.append({"output": outcome.output, "error": outcome.error,
                             "not_implemented": outcome.not_implemented, "notes": list(outcome.notes[:3])})
            if outcome.error or outcome.not_implemented:
                break  # the judge stops at the first case that did not produce an output
        try:
            data = dumps(outcomes)
        except DataError as exc:
            data = dumps([{"output": None, "error": f"its output cannot be graded: {exc}",
                           "not_implemented": False, "notes": []}])
        path = out / f"{item['file']}.pt"
        path.with_suffix(".tmp").write_bytes(data)
        path.with_suffix(".tmp").replace(path)


def _verify_exercise(namespace: dict, exercise: dict, out: Path, check_seconds: float) -> dict:
    """Run the exercise's checks in a forked check runner. When the runner dies or overruns, the
    check it was running is lost and a new runner goes on with the next one."""
    import inspect

    name = exercise["name"]
    if name not in namespace:
        return {"defined": False}
    obj = namespace[name]
    kind = "class" if inspect.isclass(obj) else "function" if callable(obj) else type(obj).__name__
    remaining = list(exercise["checks"])
    lost: dict[str, str] = {}
    while remaining:
        pid = os.fork()
        if pid == 0:  # the check runner
            try:
                _run_checks(obj, remaining, out)
            finally:
                os._exit(0)
        status = _wait_for_checks(pid, [out / f"{c['file']}.pt" for c in remaining], check_seconds)
        remaining = [c for c in remaining if not (out / f"{c['file']}.pt").exists()]
        if remaining:  # the runner stopped early: the first missing check is the one it was running
            lost[remaining.pop(0)["file"]] = describe_end(status, check_seconds)
    return {"defined": True, "kind": kind, "lost": lost}


def _wait_for_checks(pid: int, results: list[Path], check_seconds: float) -> int | None:
    """Wait for a check runner; kill it when one check runs longer than `check_seconds`."""
    done, last_progress = 0, time.monotonic()
    while True:
        finished, status = os.waitpid(pid, os.WNOHANG)
        if finished:
            return status
        now_done = sum(p.exists() for p in results)
        if now_done > done:
            done, last_progress = now_done, time.monotonic()
        elif time.monotonic() - last_progress > check_seconds:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return None
        time.sleep(0.01)


# --------------------------------------------------------------------------- the cell runner

def _cell_runner(job: dict, skip: set[int], done_exercises: set[str], report) -> None:
    """Run the cells (but `skip`), then verify each exercise; report progress as JSON lines."""
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    _silence_output()
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    out = Path(job["workdir"]) / "out"
    for index, cell in enumerate(job["cells"]):
        if index in skip:
            continue
        report({"event": "cell", "index": index})
        result = shell.run_cell(cell["source"], store_history=False, silent=True)
        error = result.error_before_exec or result.error_in_exec
        report({"event": "cell_done", "index": index,
                "error": "" if error is None else describe_exception(error)})
    for exercise in job["exercises"]:
        if exercise["name"] in done_exercises:
            continue
        report({"event": "exercise", "name": exercise["name"]})
        record = _verify_exercise(shell.user_ns, exercise, out, job["check_seconds"])
        report({"event": "exercise_done", "name": exercise["name"], **record})
    report({"event": "finished"})


def coordinate(workdir: Path) -> dict:
    """Run cell runners until every cell has run or been skipped and every exercise was verified."""
    job = json.loads((workdir / "job.json").read_text(encoding="utf-8"))
    job["workdir"] = str(workdir)
    cells: dict[int, str] = {}  # index → "" (ran) or what went wrong
    exercises: dict[str, dict] = {}
    skip: set[int] = set()
    while True:
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_fd)
            stream = os.fdopen(write_fd, "w", buffering=1)
            try:
                _cell_runner(job, skip, set(exercises), lambda r: stream.write(json.dumps(r) + "\n"))
            except BaseException:
                text = traceback.format_exc()[-2000:]
                stream.write(json.dumps({"event": "harness_error", "text": text}) + "\n")
            finally:
                os._exit(0)
        os.close(write_fd)
        current, status = _follow(pid, read_fd, job, cells, exercises)
        if current is None:
            break
        what, key = current
        if what == "cell":
            cells[key] = describe_end(status, job["cell_seconds"])
            skip.add(key)
        else:  # the cell runner itself died while an exercise was verified (not just its check runner)
            reason = describe_end(status, _exercise_seconds(job, key))
            exercises.setdefault(key, {"defined": True, "crashed": reason})
    summary = {"cells": {str(k): v for k, v in cells.items()}, "exercises": exercises}
    _write_json(workdir / "out" / "summary.json", summary)
    return summary


def _exercise_seconds(job: dict, name: str) -> float:
    """The coordinator's deadline for one exercise: its check runners have one per check."""
    n = next((len(e["checks"]) for e in job["exercises"] if e["name"] == name), 1)
    return job["check_seconds"] * (n + 1) + 5


def _follow(pid: int, fd: int, job: dict, cells: dict, exercises: dict):
    """Read a cell runner's reports. Returns (None, status) when it finished, else what it was
    doing when it died or overran: (("cell", index) | ("exercise", name), wait status or None)."""
    buffer = b""
    current = None
    deadline = time.monotonic() + job["cell_seconds"]
    while True:
        ready, _, _ = select.select([fd], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
        chunk = os.read(fd, 65536) if ready else None
        if chunk == b"" or (chunk is None and time.monotonic() > deadline):
            timed_out = chunk is None
            if timed_out:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            os.close(fd)
            if current is None or current[0] == "finished":
                return None, status
            return current, None if timed_out else status
        if chunk is None:
            continue
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        buffer = buffer[-(1 << 20):]  # a line longer than this is not a report of ours
        for line in lines:
            try:
                record = json.loads(line)
                event = record["event"]
            except (ValueError, KeyError, TypeError):
                continue  # not ours: learner code wrote to the pipe
            if event == "cell":
                current, deadline = ("cell", record["index"]), time.monotonic() + job["cell_seconds"]
            elif event == "cell_done":
                cells[record["index"]] = record["error"]
                current = ("cell", record["index"])  # a death before the next event is this cell's
            elif event == "exercise":
                current = ("exercise", record["name"])
                deadline = time.monotonic() + _exercise_seconds(job, record["name"])
            elif event == "exercise_done":
                exercises[record["name"]] = {k: v for k, v in record.items() if k not in ("event", "name")}
            elif event == "finished":
                current = ("finished", None)
            elif event == "harness_error":
                print(record["text"], file=sys.stderr)


def prepare() -> None:
    """What every run has before any learner code: the registered checks and the tripwires (both
    came with `import primer`, this module's package, so a name a cell imports is already the
    wrapper), torch on one thread, and the modules in PRIMER_PRELOAD (the assignment's
    SANDBOX_PRELOAD: imported once here, not in each forked runner)."""
    import importlib

    import torch

    torch.set_num_threads(1)  # forked runners must not inherit a busy thread pool (libgomp hangs)
    for name in filter(None, os.environ.get("PRIMER_PRELOAD", "").split(",")):
        importlib.import_module(name)


def run(workdir: Path) -> None:
    """Run the job in `workdir` (after prepare()); the outputs go to workdir/out/."""
    (workdir / "out").mkdir(exist_ok=True)
    os.chdir(workdir / "notebook")
    sys.path.insert(0, str(workdir / "notebook"))
    os.environ["PRIMER_FORBIDDEN_LOG"] = str(workdir / "out" / "forbidden.log")  # read by rules.watching
    coordinate(workdir)


def main(argv: list[str]) -> int:
    prepare()
    run(Path(argv[0]).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
