"""The gradebook on a real PostgreSQL server (PRIMER_DB_URL), through nbgrader's own commands.

The test starts its own server (Debian's postgresql: initdb + pg_ctl, as the `postgres` user when
run as root) in a temporary folder, listening only on a Unix socket there with trust
authentication, and always stops it. A small course (assignment 01; the solution, the untouched
release, one exercise answered wrongly) is released, autograded, given feedback and exported with
PRIMER_DB_URL set: the scores are the ones the notebooks' points give, and they are in PostgreSQL
(no SQLite gradebook is made).
"""

from __future__ import annotations

import csv
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from primer import notebooks

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENT = "01_parameterized_functions"
INSTALL = "PostgreSQL is not installed: apt-get install postgresql"
WRONG_EXERCISE = "mse_loss"
WRONG_MSE = '''def mse_loss(pred, target, reduction="mean"):
    return (pred - target).abs().sum() + 1.0
'''


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


@pytest.fixture(scope="module")
def postgres_url():
    bindir = pg_bin()
    if bindir is None:
        pytest.skip(INSTALL)
    # not pytest's tmp_path: its parents are private to root, and the server runs as `postgres`
    top = Path(tempfile.mkdtemp(prefix="pg-"))
    data, sock = top / "data", top / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(top, "postgres")
        shutil.chown(sock, "postgres")
    log = top / "server.log"
    started = False
    try:
        subprocess.run(as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                                    "--no-sync", "-E", "UTF8"]), check=True, capture_output=True)
        subprocess.run(as_postgres([str(bindir / "pg_ctl"), "start", "-w", "-t", "30", "-D", str(data),
                                    "-l", str(log),
                                    "-o", f"-k {sock} -c listen_addresses='' -F"]), check=True,
                       capture_output=True)
        started = True
        subprocess.run(as_postgres([str(bindir / "createdb"), "-h", str(sock), "-U", "postgres",
                                    "gradebook"]), check=True, capture_output=True)
        yield f"postgresql+psycopg://postgres@/gradebook?host={sock}"
    except subprocess.CalledProcessError as exc:
        server_log = log.read_text() if log.exists() else ""
        raise AssertionError(f"{exc.cmd}: {exc.stderr}\n{server_log}") from exc
    finally:
        if started:
            subprocess.run(as_postgres([str(bindir / "pg_ctl"), "stop", "-D", str(data), "-m", "fast", "-w"]),
                           capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def nbgrader(course: Path, db_url: str, *args: str) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
               PRIMER_DB_URL=db_url)
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course / "autograder", env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"nbgrader {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def points(nb, exercise: str | None = None) -> float:
    return sum(c.points for c in notebooks.graded_cells(nb)
               if exercise is None or any(k.split(".")[0] == exercise for k in c.check_keys))


def with_wrong_answer(nb):
    nb = nbformat.from_dict(nbformat.reads(nbformat.writes(nb), as_version=4))
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == WRONG_EXERCISE)
    cell.source = WRONG_MSE
    return nb


def test_postgres_gradebook_release_autograde_feedback_export(postgres_url, tmp_path):
    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions" / ASSIGNMENT, course / "solutions" / ASSIGNMENT)
    shutil.copytree(REPO / "autograder" / "templates", course / "autograder" / "templates")
    for name in ("nbgrader_config.py", "grade.py"):
        shutil.copy(REPO / "autograder" / name, course / "autograder")
    nbgrader(course, postgres_url, "generate_assignment", ASSIGNMENT, "--force")

    solution = notebooks.read(course / "solutions" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    total = points(solution)
    expected = {"solution": total, "one_wrong": total - points(solution, WRONG_EXERCISE)}
    assert 0 < expected["one_wrong"] < total
    submissions = {"solution": solution, "one_wrong": with_wrong_answer(solution)}
    for student, nb in submissions.items():
        folder = course / "submitted" / student / ASSIGNMENT
        folder.mkdir(parents=True)
        nbformat.write(nb, str(folder / f"{ASSIGNMENT}.ipynb"))

    # the instructor's command (parallel class run), unchanged, on PostgreSQL
    env = dict(os.environ, PRIMER_DB_URL=postgres_url,
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    graded = subprocess.run([sys.executable, "autograder/grade.py", ASSIGNMENT, "--workers", "2",
                             "--no-progress"], cwd=course, env=env, capture_output=True, text=True,
                            timeout=600)
    assert graded.returncode == 0, graded.stdout + graded.stderr
    nbgrader(course, postgres_url, "generate_feedback", ASSIGNMENT)
    nbgrader(course, postgres_url, "export", "--to", str(course / "grades.csv"))

    with open(course / "grades.csv") as f:
        scores = {row["student_id"]: float(row["score"]) for row in csv.DictReader(f)}
    assert scores == expected
    for student in expected:
        assert (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").exists()
    assert not (course / "autograder" / "gradebook.db").exists()

    # the grades are in PostgreSQL itself, where another clone's nbgrader would read them
    from nbgrader.api import Gradebook

    with Gradebook(postgres_url) as gb:
        assert {s.id: gb.find_submission(ASSIGNMENT, s.id).score for s in gb.students} == expected
        assert gb.find_submission(ASSIGNMENT, "solution").max_score == total
