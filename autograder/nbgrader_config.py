"""nbgrader configuration for the course. Run nbgrader from this folder (the Makefile does)."""

import os
import secrets
from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

COURSE_ROOT = Path(__file__).resolve().parent.parent
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.course_id = "primer"
c.CourseDirectory.db_url = f"sqlite:///{COURSE_ROOT / 'autograder' / 'gradebook.db'}"

# Hidden tests draw fresh inputs from this seed. It is made once per course folder and kept
# (not committed), so that re-grading gives the same result and learners cannot know it.
_seed_file = Path(__file__).resolve().parent / ".grading_seed"
if "PRIMER_GRADING_SEED" not in os.environ:
    if not _seed_file.exists():
        _seed_file.write_text(str(secrets.randbelow(2**31)))
    os.environ["PRIMER_GRADING_SEED"] = _seed_file.read_text().strip()

# A learner's cell that loops forever is interrupted after this long; later cells still run.
c.Execute.timeout = 120
c.Execute.interrupt_on_timeout = True

# torch warns often (stderr); a grade cell with stderr output would score 0. Warnings are not
# failures: drop stderr lines that are warnings before scoring.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r"Warning"

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
