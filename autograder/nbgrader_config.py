"""nbgrader configuration for the course. Run nbgrader from this folder (the Makefile does)."""

from pathlib import Path

import nbgrader
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    GetGrades,
    LimitOutput,
    SaveAutoGrades,
)

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

COURSE_ROOT = Path(__file__).resolve().parent.parent
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.course_id = "primer"
# SQLite is the zero-set-up default. For several graders or JupyterHub, point this at PostgreSQL:
#   c.CourseDirectory.db_url = "postgresql+psycopg://USER@HOST/DBNAME"
c.CourseDirectory.db_url = f"sqlite:///{COURSE_ROOT / 'autograder' / 'gradebook.db'}"

# --- Trusted grading (README, "How grading works") -------------------------------------------
# nbgrader's kernel would run learner code in this process, as this user. Instead, VerifiedExecute
# runs the learner's cells in a sandbox and scores every test cell from a verification made
# here: nothing a submission does can change its own score or anyone else's.
c.Autograde.autograde_preprocessors = [
    "primer.grader.nbgrader_plugin.VerifiedExecute",
    LimitOutput,
    SaveAutoGrades,
    AssignLatePenalties,
    CheckCellMetadata,
]
# A learner who deletes a test cell still gets it graded (restored from the gradebook).
c.OverwriteCells.add_missing_cells = True
# Feedback shows the verified messages, not the hidden tests' source, and names each exercise.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.HTMLExporter.extra_template_basedirs = [
    str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"),
    str(COURSE_ROOT / "autograder" / "templates"),
]
c.HTMLExporter.template_name = "exercise_feedback"
c.HTMLExporter.template_file = "exercise_feedback.html.j2"

# A learner's cell that runs longer than this is stopped; the cells after it still run.
c.VerifiedExecute.cell_seconds = 120
c.VerifiedExecute.check_seconds = 120

# The sandbox's limits, per process unless said otherwise (each is named to the learner when hit).
c.Sandbox.memory_mb = 4096      # address space; torch needs 1-3 GB just to import
c.Sandbox.cpu_seconds = 600
c.Sandbox.wall_seconds = 900    # one whole notebook
c.Sandbox.processes = 256       # threads count too
c.Sandbox.file_mb = 256
c.Sandbox.open_files = 1024
c.Sandbox.output_mb = 4
# Where bubblewrap cannot run, grading refuses. Uncomment to grade WITHOUT isolation, at your risk:
# c.Sandbox.allow_unsandboxed = True

c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
