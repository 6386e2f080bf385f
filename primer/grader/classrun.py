"""Grade a whole class for one assignment: verified in parallel, committed one student at a time.

    python autograder/grade.py ASSIGNMENT [--workers N] [--student ID ...] [--force]

Two phases that overlap:

1. N worker processes (primer.grader.classrun_workers: forked from a fork server that has
   imported their modules once; the parent holds a gradebook connection and threads). Each does
   nbgrader's sanitize pass in process on one submitted notebook (the same preprocessors, the
   same exporter, the course's config), then runs `VerifiedExecute` on the result. That runs the
   learner's code in the sandbox (uid = uid_base + worker index) and saves the verification under
   the very key nbgrader's own autograde pass will compute, so nothing is verified twice.
2. This process, as each verification arrives: `nbgrader autograde` for that one student (which
   finds the saved verification), then `generate_feedback` for that student, then the student's
   *done record* (`autograder/verified/<A>/<S>.done`: the submission's content hash), written
   atomically last. Every gradebook write happens here: SQLite is not safe for concurrent writers.

A student is done exactly when a done record matches the current submission, so a run killed at
any moment redoes at most the students it had not finished, and a changed submission is regraded.
What is checked of a submission before grading, and its done record: primer/grader/submissions.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import signal
import sys
import time
import warnings
from pathlib import Path

from primer.grader.classrun_workers import load_config, worker_context, worker_main
from primer.grader.submissions import (
    Outcome,
    read_state,
    stray_folders,
    student_id_problem,
    submission_hash,
    submission_problem,
    write_state,
)
from primer.grader.verify import Verification


class RunFailed(Exception):
    """The run itself cannot go on (bad arguments, no gradebook, lock held, sandbox refused)."""


# --------------------------------------------------------------------------- the main process

class ClassRun:
    def __init__(self, course: Path, assignment: str, *, workers: int | None = None,
                 students: list[str] | None = None, force: bool = False,
                 cell_seconds: float | None = None, out=None, progress: bool = True):
        self.course, self.assignment = Path(course).resolve(), assignment
        self.workers = max(1, workers or os.cpu_count() or 1)
        self.only, self.force, self.progress = students or [], force, progress
        self.out = out or sys.stdout  # (the current one, not the one when this module was imported)
        self.overrides = {"VerifiedExecute": {"cell_seconds": cell_seconds}} if cell_seconds else {}
        # if this process must verify after all (the course's code changed mid-run), its sandbox
        # gets a uid of its own, next to the workers' (uid_base + 0 .. workers - 1)
        self.config = load_config(self.course, {**self.overrides, "VerifiedExecute": {
            **self.overrides.get("VerifiedExecute", {}), "worker": self.workers}})
        self.outcomes: dict[str, Outcome] = {}
        self.notes: dict[str, str] = {}  # graded, with a remark (another notebook in the folder)
        self.stray: list[Outcome] = []  # folders for an assignment that does not exist

    # ----------------------------------------------------------------- checks before anything runs
    def preflight(self) -> set[str]:
        from nbgrader.api import Gradebook, MissingEntry

        from primer.grader.sandbox import Sandbox, sandbox_problem

        problem = sandbox_problem()
        if problem and not Sandbox(config=self.config).allow_unsandboxed:
            raise RunFailed(f"refusing to grade: {problem}")
        url = self.config.CourseDirectory.db_url
        db = Path(url.removeprefix("sqlite:///"))
        if url.startswith("sqlite:///") and not db.exists():  # (PostgreSQL: the query below says)
            raise RunFailed(f"no gradebook at {db}: run `make release ASSIGNMENT={self.assignment}` first")
        with Gradebook(self.config.CourseDirectory.db_url, "primer") as gb:
            try:
                gb.find_assignment(self.assignment)
            except MissingEntry:
                raise RunFailed(f"no assignment {self.assignment!r} in the gradebook: run "
                                f"`make release ASSIGNMENT={self.assignment}` first") from None
            return {a.name for a in gb.assignments}

    @contextlib.contextmanager
    def lock(self):
        """One run per assignment at a time. The kernel drops the lock when the holder dies,
        even by SIGKILL, so a killed run never blocks the next."""
        path = self.course / "autograder" / f".grading-{self.assignment}.lock"
        with open(path, "a+") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip() or "?"
                raise RunFailed(f"another grading run of {self.assignment} is in progress (pid {holder}); "
                                "nothing was changed: wait for it to finish, then run again") from None
            f.seek(0)
            f.truncate()
            f.write(str(os.getpid()))
            f.flush()
            yield

    def submissions(self) -> list[str]:
        submitted = self.course / "submitted"
        found = sorted(p.parent.name for p in submitted.glob(f"*/{self.assignment}") if p.is_dir())
        if self.only:
            missing = [s for s in self.only if s not in found]
            if missing:
                raise RunFailed(f"no submission of {self.assignment} for: {', '.join(missing)} "
                                f"(looked in {submitted}/<student>/{self.assignment}/)")
            return [s for s in found if s in self.only]
        return found

    # ----------------------------------------------------------------- the run
    def run(self) -> dict[str, Outcome]:
        assignments = self.preflight()
        with self.lock():
            self._remove_stale_temp_files()
            todo = self.triage(self.submissions())
            self.stray = stray_folders(self.course, assignments, self.only)
            for stray in self.stray:
                self._print(stray.line())
            if todo:
                self.grade(todo)
        return self.outcomes

    def triage(self, students: list[str]) -> list[tuple[str, str, str]]:
        """Skip the done, record the ungradable, return the rest as tasks for the workers."""
        todo = []
        for student in students:
            folder = self.course / "submitted" / student / self.assignment
            digest = submission_hash(folder)
            done = read_state(self.course, self.assignment, student)
            if done is not None and done.hash == digest and not self.force:
                done.skipped = True
                self.outcomes[student] = done
                self._print(done.line())
                continue
            why = student_id_problem(student)
            note = ""
            if why is None:
                why, note = submission_problem(folder, self.assignment)
            if why:
                self.commit_ungradable(Outcome(student, digest, "could not be graded", why))
            else:
                self.notes[student] = note
                todo.append((self.assignment, student, digest))
        return todo

    def grade(self, todo: list[tuple[str, str, str]]) -> None:
        from nbgrader.apps import NbGraderAPI
        from nbgrader.coursedir import CourseDirectory
        from tqdm import tqdm

        # (the API checks nbgrader's exchange folder, which grading does not use, and says so loudly)
        traitlets_log = logging.getLogger("traitlets")
        level, traitlets_log.level = traitlets_log.level, logging.CRITICAL + 1
        try:
            api = NbGraderAPI(coursedir=CourseDirectory(config=self.config), config=self.config)
        finally:
            traitlets_log.setLevel(level)
        bar = tqdm(total=len(todo), desc=f"grading {self.assignment}", unit="student",
                   file=sys.stderr, disable=not self.progress, dynamic_ncols=True)
        ctx = worker_context()
        tasks, results = ctx.Queue(), ctx.Queue()
        for task in todo:
            tasks.put(task)
        workers = [ctx.Process(target=worker_main, name=f"grading-worker-{i}",
                               args=(str(self.course), self.overrides, i, tasks, results, dict(os.environ)))
                   for i in range(min(self.workers, len(todo)))]
        for worker in workers:
            tasks.put(None)  # one stop sign each, after the tasks
            worker.start()
        try:
            for student, digest, verification, error, seconds in self._results(workers, results, todo):
                started = time.monotonic()
                if verification is None:
                    self.commit_ungradable(Outcome(student, digest, "could not be graded",
                                                   f"verification failed: {error}"))
                else:
                    outcome = self.commit_graded(api, student, digest, Verification.from_json(verification))
                    outcome.seconds = seconds + time.monotonic() - started
                    if outcome.status == "graded":
                        write_state(self.course, self.assignment, outcome)  # last: now it is done
                        self.outcomes[student] = outcome
                        self._print(outcome.line())
                    else:
                        self.commit_ungradable(outcome)
                bar.update()
        finally:  # on Ctrl-C / SIGTERM / an error too: no worker outlives the run
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.join(10)
                if worker.is_alive():
                    worker.kill()
                    worker.join()
            bar.close()

    @staticmethod
    def _results(workers, results, todo):
        """The workers' results as they come; a worker that dies (killed by the OOM killer, say)
        costs only the submission it was verifying, which is reported."""
        import queue

        current, remaining = {}, len(todo)
        digests = {student: digest for _, student, digest in todo}
        while remaining:
            try:
                kind, index, payload = results.get(timeout=1)
            except queue.Empty:
                for i, worker in enumerate(workers):
                    if not worker.is_alive() and current.get(i):
                        student = current.pop(i)
                        remaining -= 1
                        yield (student, digests[student], None,
                               f"the grading worker died (exit code {worker.exitcode})", 0.0)
                if not any(w.is_alive() for w in workers) and results.empty():
                    return
                continue
            if kind == "start":
                current[index] = payload
            else:
                current.pop(index, None)
                remaining -= 1
                yield payload

    def commit_graded(self, api, student: str, digest: str, verification: Verification) -> Outcome:
        """Phase 2 for one student, in this process: nbgrader autograde (reusing the verification),
        feedback, then the done record (by the caller, last)."""
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SQLAlchemy's notes from inside nbgrader, on stderr
            result = api.autograde(self.assignment, student, force=True, create=True)
        if not result.get("success"):
            return Outcome(student, digest, "could not be graded", "nbgrader autograde failed: "
                           + _last_line(result.get("error") or result.get("log")))
        result = self.generate_feedback(api, student)
        if not result.get("success"):
            return Outcome(student, digest, "could not be graded", "nbgrader generate_feedback failed: "
                           + _last_line(result.get("error") or result.get("log")))
        score, max_score = self.gradebook_score(student)
        notes = [self.notes.get(student, "")]
        rescored = sum(c.disagrees for c in verification.cells)
        if rescored:
            notes.append(f"re-scored: {rescored} cell{'s' * (rescored != 1)}")
        if verification.problem:
            notes.append(verification.problem[:200])
        return Outcome(student, digest, score=score, max_score=max_score,
                       note="; ".join(n for n in notes if n))

    def generate_feedback(self, api, student: str) -> dict:
        """`nbgrader generate_feedback` for one student. (NbGraderAPI.generate_feedback would
        replace the course's feedback template by nbgrader's own.)"""
        from nbgrader.converters import GenerateFeedback
        from nbgrader.utils import capture_log, temp_attrs

        with temp_attrs(api.coursedir, assignment_id=self.assignment, student_id=student):
            app = GenerateFeedback(coursedir=api.coursedir, parent=api)
            app.force = True
            return capture_log(app)

    def gradebook_score(self, student: str) -> tuple[float, float]:
        from nbgrader.api import Gradebook

        with Gradebook(self.config.CourseDirectory.db_url, "primer") as gb:
            sub = gb.find_submission(self.assignment, student)
            return sub.score, sub.max_score

    def commit_ungradable(self, outcome: Outcome) -> None:
        """No grade: an old grade of this student for this assignment must not survive either."""
        from nbgrader.api import Gradebook, MissingEntry

        if student_id_problem(outcome.student) is None:
            with Gradebook(self.config.CourseDirectory.db_url, "primer") as gb:
                gb.update_or_create_student(outcome.student)
                with contextlib.suppress(MissingEntry), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # SQLAlchemy's notes from inside nbgrader
                    gb.remove_submission(self.assignment, outcome.student)
            for top in ("autograded", "feedback"):
                shutil.rmtree(self.course / top / outcome.student / self.assignment, ignore_errors=True)
        write_state(self.course, self.assignment, outcome)
        self.outcomes[outcome.student] = outcome
        self._print(outcome.line())

    def _remove_stale_temp_files(self) -> None:
        """A killed run may leave half-written temporary files (never the files themselves)."""
        for tmp in (self.course / "autograder" / "verified" / self.assignment).glob("*.tmp"):
            tmp.unlink(missing_ok=True)

    def _print(self, text: str) -> None:
        from tqdm import tqdm

        tqdm.write(text, file=self.out)  # above the progress bar, which is redrawn below
        self.out.flush()


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no message)"


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM stops a run the way Ctrl-C does (workers stopped, a short message)."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
