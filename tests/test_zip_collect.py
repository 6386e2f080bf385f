"""The LMS route of the README ("Collecting, backing up and sharing the grading"), with Canvas.

A Canvas "Download Submissions" zip goes, as downloaded, into downloaded/<assignment>/archive/,
with Canvas's gradebook export as downloaded/roster.csv; `nbgrader zip_collect <assignment>` run
from autograder/ with the course's config (primer.grader.lms.CanvasCollectorPlugin) puts each
notebook at submitted/<student id>/<assignment>/<assignment>.ipynb. Canvas's LATE marker becomes
nbgrader's timestamp (one second after the due date), so autograde records the submission as late.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from datetime import datetime, timedelta
from pathlib import Path

from primer import notebooks

REPO = Path(__file__).resolve().parent.parent
A = "01_parameterized_functions"
DUE = "2026-01-15 23:59:00"
ROSTER = """Student,ID,SIS User ID,SIS Login ID,Section
    Points Possible,,,,
"Lovelace, Ada",12345,1001,alovelace,Section 1
"Turing, Alan",23456,1002,aturing,Section 1
"Hopper, Grace",34567,1003,ghopper,Section 2
"""
# Canvas's names: lastname_firstname[_LATE]_CANVASID_SUBMISSIONID_FILENAME ("-1": uploaded again)
ZIP_ENTRIES = {
    f"lovelace_ada_12345_67890_{A}.ipynb": ("alovelace", "solution"),
    f"turing_alan_LATE_23456_67891_{A}.ipynb": ("aturing", "solution"),
    f"hopper_grace_34567_67892_{A}-1.ipynb": ("ghopper", "release"),
    f"nobody_known_99999_67893_{A}.ipynb": (None, "solution"),  # not in the roster: skipped
}


def nbgrader(course: Path, *args: str) -> str:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    env.pop("PRIMER_DB_URL", None)  # this course's own SQLite gradebook
    out = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course / "autograder", env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, f"nbgrader {' '.join(args)}:\n{out.stdout}\n{out.stderr}"
    return out.stdout + out.stderr


def test_canvas_zip_is_collected_late_marker_kept_and_graded_late(tmp_path):
    course = tmp_path / "course"
    shutil.copytree(REPO / "solutions" / A, course / "solutions" / A)
    shutil.copytree(REPO / "autograder" / "templates", course / "autograder" / "templates")
    shutil.copy(REPO / "autograder" / "nbgrader_config.py", course / "autograder")
    nbgrader(course, "generate_assignment", A, "--force")
    nbgrader(course, "db", "assignment", "add", A, f"--duedate={DUE} UTC")

    sources = {"solution": (course / "solutions" / A / f"{A}.ipynb").read_bytes(),
               "release": (course / "notebooks" / A / f"{A}.ipynb").read_bytes()}
    archive = course / "downloaded" / A / "archive"
    archive.mkdir(parents=True)
    (course / "downloaded" / "roster.csv").write_text(ROSTER)
    with zipfile.ZipFile(archive / "submissions.zip", "w") as z:
        for name, (_, source) in ZIP_ENTRIES.items():
            z.writestr(name, sources[source])

    log = nbgrader(course, "zip_collect", A)

    submitted = course / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["alovelace", "aturing", "ghopper"], log
    assert "99999 is not in the roster" in log
    for name, (student, source) in ZIP_ENTRIES.items():
        if student:
            folder = submitted / student / A
            assert sorted(p.name for p in folder.iterdir() if p.suffix == ".ipynb") == [f"{A}.ipynb"]
            assert (folder / f"{A}.ipynb").read_bytes() == sources[source]
    late = datetime.fromisoformat(DUE) + timedelta(seconds=1)
    assert datetime.fromisoformat((submitted / "aturing" / A / "timestamp.txt").read_text().strip()) == late
    assert not (submitted / "alovelace" / A / "timestamp.txt").exists()
    assert not (submitted / "ghopper" / A / "timestamp.txt").exists()

    nbgrader(course, "autograde", A, "--create")

    from nbgrader.api import Gradebook

    solution = notebooks.read(course / "solutions" / A / f"{A}.ipynb")
    total = sum(c.points for c in notebooks.graded_cells(solution))
    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gb:
        subs = {s: gb.find_submission(A, s) for s in ("alovelace", "aturing", "ghopper")}
        assert subs["aturing"].timestamp == late
        assert subs["aturing"].total_seconds_late == 1
        assert subs["alovelace"].total_seconds_late == 0 and subs["ghopper"].total_seconds_late == 0
        # the course's late policy is nbgrader's default ("none"): marked late, no points taken
        scores = {s: sub.score for s, sub in subs.items()}
        assert scores == {"alovelace": total, "aturing": total, "ghopper": 0}
