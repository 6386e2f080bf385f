"""The class run (autograder/grade.py, primer.grader.classrun) on a small class of assignment 01.

Students: the solution (full marks), the untouched release (0, every exercise "not started"),
the solution with one exercise replaced by a mutant that fails all its checks, and bad input.
Expected scores come from the notebook's own metadata (points per graded cell), never from a run.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from primer import notebooks
from tests.grading_course import make_course as shared_make_course
from tests.grading_course import points_of, run
from tests.grading_course import submit as shared_submit
from tests.grading_course import wrong_submission as shared_wrong_submission
from tests.helpers import exercises_in

A = "01_parameterized_functions"
NB = f"{A}.ipynb"


# --------------------------------------------------------------------------- a temporary course

def make_course(tmp: Path) -> Path:
    return shared_make_course(tmp, A)


def submit(course: Path, student: str, nb, name: str = NB) -> Path:
    """The student's submission folder, with the notebook (or text) written in it."""
    return shared_submit(course, student, A, nb, name).parent


def grade(course: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return run([sys.executable, "autograder/grade.py", A, "--no-progress", *args], course, timeout=timeout)


def grade_here(capfd, course: Path, *args: str) -> subprocess.CompletedProcess:
    """grade.py's main() in this process: what `grade` runs, without a new interpreter's imports
    (test_killed_at_random_moments_then_resumed and the end-to-end tests run the script itself)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("grade_script", course / "autograder" / "grade.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    saved_path, saved_env = list(sys.path), os.environ.get("PATH")
    capfd.readouterr()  # (what came before is not this run's)
    try:
        code = script.main([A, "--no-progress", *args], course=course)
    finally:
        sys.path[:] = saved_path
        os.environ["PATH"] = saved_env
    out, err = capfd.readouterr()
    return subprocess.CompletedProcess(args, code, out, err)


def cell_scores(course: Path) -> dict[str, dict[str, float]]:
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gb:
        for student in gb.students:
            try:
                nb = gb.find_submission_notebook(A, A, student.id)
            except MissingEntry:
                continue
            out[student.id] = {g.name: g.score for g in nb.grades}
    return out


def totals(course: Path) -> dict[str, float]:
    return {s: sum(cells.values()) for s, cells in cell_scores(course).items()}


def feedback(course: Path, student: str) -> Path:
    return course / "feedback" / student / A / f"{A}.html"


def lines_by_student(stdout: str) -> dict[str, str]:
    return {line.split()[0]: line for line in stdout.splitlines()
            if line.strip() and not line.startswith(("#", "|", "-", " "))}


def wrong_submission(solution):
    return shared_wrong_submission(A, solution)


@pytest.fixture(scope="class")
def shared_secret(tmp_path_factory):
    """The same course secret for every course of this file: the same seeds, the same feedback."""
    path = tmp_path_factory.mktemp("secret") / "secret"
    path.write_text("5" * 64 + "\n")
    old = os.environ.get("PRIMER_SECRET_FILE")
    os.environ["PRIMER_SECRET_FILE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("PRIMER_SECRET_FILE")
    else:
        os.environ["PRIMER_SECRET_FILE"] = old


class TestClassRun:
    def test_class_run(self, tmp_path, shared_secret, monkeypatch, capfd):
        course = make_course(tmp_path / "course")
        solution = notebooks.read(course / "solutions" / A / NB)
        release = notebooks.read(course / "notebooks" / A / NB)
        total = sum(c.points for c in notebooks.graded_cells(solution))
        wrong_ex, wrong = wrong_submission(solution)
        text = (course / "solutions" / A / NB).read_text()

        submit(course, "solution", solution)
        submit(course, "untouched", release)
        submit(course, "one_wrong", wrong)
        extra = submit(course, "extra", release)  # extra files and a second notebook: still graded
        (extra / "notes.txt").write_text("my notes")
        nbformat.write(release, str(extra / "old attempt.ipynb"))
        submit(course, "broken", text[: len(text) // 2])
        submit(course, "renamed", solution, name="my copy.ipynb")
        submit(course, "a+b", release)  # nbgrader uses "+" as a separator
        (course / "submitted" / "typo" / "99_no_such").mkdir(parents=True)  # no such assignment
        (course / "submitted" / "typo" / "99_no_such" / "x.ipynb").write_text(text)

        # In this process: the serial pass (nbgrader autograde) must reuse every worker's result.
        from primer.grader import classrun, nbgrader_plugin

        serial_verifications = []
        real_verify = nbgrader_plugin.verify
        monkeypatch.setattr(nbgrader_plugin, "verify",
                            lambda *a, **k: serial_verifications.append(1) or real_verify(*a, **k))
        out = io.StringIO()
        fingerprint = nbgrader_plugin.course_fingerprint()
        classrun.ClassRun(course, A, workers=2, out=out, progress=False).run()
        # (unless someone edited the course's grading code meanwhile: then verifying again is right)
        assert serial_verifications == [] or nbgrader_plugin.course_fingerprint() != fingerprint
        fingerprint = nbgrader_plugin.course_fingerprint()
        lines = lines_by_student(out.getvalue())

        scores = totals(course)
        assert scores["solution"] == total and scores["extra"] == 0
        assert scores["untouched"] == 0
        assert scores["one_wrong"] == total - points_of(solution, wrong_ex)
        assert set(scores) == {"solution", "extra", "untouched", "one_wrong"}  # nothing else graded
        assert f"{total:g} / {total:g}" in lines["solution"]
        assert "old attempt.ipynb" in lines["extra"]
        assert "not valid JSON" in lines["broken"]
        assert "my copy.ipynb" in lines["renamed"]
        assert "'a+b'" in lines["a+b"]
        assert "99_no_such" in lines["typo"]
        for student in scores:
            assert feedback(course, student).exists()

        # The report, with counts derived from who submitted what.
        from primer.grader.report import write_report

        summary = write_report(course, A)
        report = course / "autograder" / "class-report" / A
        for exercise in exercises_in(A):
            wrong_here = exercise == wrong_ex
            assert f"| {exercise} | {2 - wrong_here} | {int(wrong_here)} | 2 |" in summary
        verified = json.loads((course / "autograder" / "verified" / A / "one_wrong.json").read_text())
        hints = {line.split("Hint:", 1)[1].strip() for c in verified["verification"]["cells"]
                 if c["exercise"] == wrong_ex for line in c["message"].splitlines() if "Hint:" in line}
        for hint in hints:
            assert f"- {wrong_ex}: 1 × {hint}" in summary
        for student in ("broken", "renamed", "a+b"):
            assert f"- {student}: " in summary
        with open(report / "scores.csv") as f:
            rows = {r["student"]: r for r in csv.DictReader(f)}
        assert float(rows["one_wrong"]["score"]) == total - points_of(solution, wrong_ex)
        assert rows["broken"]["status"].startswith("could not be graded")
        assert (report / "scores.png").read_bytes()[:4] == b"\x89PNG"

        # grades.csv: "not submitted" is not a 0 of a submission.
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gb:
            gb.add_student("absent")
        done = run([sys.executable, "-m", "nbgrader", "export", "--to", "../grades.csv",
                    "--ExportApp.plugin_class=primer.grader.report.StatusCsvExportPlugin"],
                   course / "autograder")
        assert done.returncode == 0, done.stderr
        with open(course / "grades.csv") as f:
            status = {r["student_id"]: (r["status"], float(r["score"])) for r in csv.DictReader(f)}
        assert status["absent"] == ("not submitted", 0)
        assert status["untouched"] == ("submitted", 0)
        assert status["solution"] == ("submitted", total)
        assert status["broken"][0].startswith("could not be graded (")
        assert "not valid JSON" in status["broken"][0]

        # A rerun skips everyone (nothing changed): no grade, record or feedback is rewritten.
        # (Other work on the course's grading code changes every hash, and then regrading everyone is
        # right: try again until a rerun starts and ends with the code of the run before it.)
        for _ in range(3):
            records = (course / "autograder" / "verified" / A).glob("*.done")
            stamps = {p: p.stat().st_mtime_ns for p in records}
            stamps |= {feedback(course, s): feedback(course, s).stat().st_mtime_ns for s in scores}
            before = nbgrader_plugin.course_fingerprint()
            again = grade_here(capfd, course, "--workers", "2")
            assert again.returncode == 0, again.stderr
            if before == fingerprint == nbgrader_plugin.course_fingerprint():
                break
            fingerprint = nbgrader_plugin.course_fingerprint()
        assert "(unchanged since the last run)" in lines_by_student(again.stdout)["solution"]
        assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

        # A changed submission is regraded and its feedback regenerated; the others are skipped.
        submit(course, "untouched", solution)
        old_feedback = feedback(course, "untouched").read_text()
        again = grade_here(capfd, course, "--workers", "2")
        assert again.returncode == 0, again.stderr
        assert totals(course)["untouched"] == total
        assert feedback(course, "untouched").read_text() != old_feedback
        assert feedback(course, "solution").stat().st_mtime_ns == stamps[feedback(course, "solution")]

        # --student X --force regrades just X.
        again = grade_here(capfd, course, "--student", "one_wrong", "--force")
        assert again.returncode == 0, again.stderr
        assert set(lines_by_student(again.stdout)) >= {"one_wrong"}
        assert "solution" not in lines_by_student(again.stdout)
        assert feedback(course, "one_wrong").stat().st_mtime_ns > stamps[feedback(course, "one_wrong")]
        assert feedback(course, "solution").stat().st_mtime_ns == stamps[feedback(course, "solution")]
        assert totals(course)["one_wrong"] == total - points_of(solution, wrong_ex)

        # Bad arguments fail the run (non-zero), bad submissions never do.
        assert grade_here(capfd, course, "--student", "nobody").returncode == 1

        # A second run while one is in progress refuses, and changes nothing.
        submit(course, "solution", release)  # (would be regraded, were the run allowed)
        before = totals(course)
        with open(course / "autograder" / f".grading-{A}.lock", "a+") as held:  # a run in progress
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            out = grade_here(capfd, course)
        assert out.returncode == 1
        assert "another grading run" in out.stderr and "in progress" in out.stderr
        assert totals(course) == before

    def test_killed_at_random_moments_then_resumed(self, tmp_path, shared_secret, capfd):
        """SIGKILL, SIGTERM or SIGINT at 10 random moments, resuming each time: the
        same grades and feedback as an uninterrupted run (another course with the same secret, hence
        the same seeds)."""
        solution = None
        courses = {}
        for name in ("plain", "killed"):
            course = courses[name] = make_course(tmp_path / name)
            solution = notebooks.read(course / "solutions" / A / NB)
            submit(course, "solution", solution)
            submit(course, "one_wrong", wrong_submission(solution)[1])
        assert grade_here(capfd, courses["plain"], "--workers", "2").returncode == 0

        killed = courses["killed"]
        rng = random.Random(13)
        script = [sys.executable, "autograder/grade.py", A, "--no-progress", "--workers", "2"]
        env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
        for i in range(10):
            proc = subprocess.Popen(script, cwd=killed, env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, start_new_session=True)
            time.sleep(rng.uniform(0.3, 4.0))
            how = (signal.SIGKILL, signal.SIGTERM, signal.SIGINT)[i % 3]
            proc.send_signal(how)
            _, err = proc.communicate(timeout=60)  # SIGTERM, SIGINT: the workers are stopped first
            if how != signal.SIGKILL and proc.returncode == 130:
                assert "interrupted" in err.decode()
            # the workers die with their parent (PR_SET_PDEATHSIG); the sandbox dies with them
            deadline = time.monotonic() + 5
            while _processes_in_session(proc.pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert not _processes_in_session(proc.pid), [
                Path(f"/proc/{p}/cmdline").read_bytes() for p in _processes_in_session(proc.pid)]
        final = grade(killed, "--workers", "2")
        assert final.returncode == 0, final.stderr
        assert cell_scores(killed) == cell_scores(courses["plain"])
        for student in ("solution", "one_wrong"):
            assert feedback(killed, student).read_text() == feedback(courses["plain"], student).read_text()


def _processes_in_session(sid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # (session id, not a zombie)
            out.append(int(stat.parent.name))
    return out
