"""nbgrader configuration for the course. Run nbgrader from this folder (the Makefile does)."""

import os
from pathlib import Path

import nbgrader
from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.converters import GenerateAssignment
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearHiddenTests,
    ClearOutput,
    DeduplicateIds,
    GetGrades,
    LimitOutput,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

COURSE_ROOT = Path(__file__).resolve().parent.parent
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.course_id = "primer"
# The gradebook. SQLite (autograder/gradebook.db) is the zero-set-up default. For several graders
# or JupyterHub, use PostgreSQL without editing this file (README, "Collecting, backing up and
# sharing the grading"):   export PRIMER_DB_URL=postgresql+psycopg://USER@HOST/DBNAME
c.CourseDirectory.db_url = (os.environ.get("PRIMER_DB_URL")
                            or f"sqlite:///{COURSE_ROOT / 'autograder' / 'gradebook.db'}")

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
# A learner who deletes a test cell, or renames its grade id, still gets it graded (restored from
# the gradebook).
c.Autograde.sanitize_preprocessors = [
    ClearOutput,
    DeduplicateIds,
    OverwriteKernelspec,
    "primer.grader.nbgrader_plugin.ForgetUnknownCells",
    OverwriteCells,
    CheckCellMetadata,
]
c.OverwriteCells.add_missing_cells = True
# Feedback shows the verified messages, not the hidden tests' source, and names each exercise.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
c.ClearHiddenTests.enforce_metadata = False  # hidden regions go from every cell (a renamed test cell too)
c.HTMLExporter.extra_template_basedirs = [
    str(Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"),
    str(COURSE_ROOT / "autograder" / "templates"),
]
c.GenerateFeedback.exporter_class = "primer.grader.nbgrader_plugin.FeedbackExporter"  # an HTMLExporter
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
# Released test cells are tagged so that a learner's Run All goes on past an exercise not done yet.
c.GenerateAssignment.preprocessors = [
    *GenerateAssignment.class_traits()["preprocessors"].make_dynamic_default(),
    "primer.grader.nbgrader_plugin.TagTestCellsForRunAll",
]

# --- Collecting from an LMS (README, "Collecting, backing up and sharing the grading") ----------
# `nbgrader zip_collect ASSIGNMENT` reads downloaded/ASSIGNMENT/archive/ (Canvas's "Download
# Submissions" zip, as it is) and fills submitted/STUDENT/ASSIGNMENT/. The pattern is matched
# against each extracted file's whole path: lastname_firstname[_LATE]_CANVASID_SUBMISSIONID_FILE.
c.ZipCollectApp.collector_plugin = "primer.grader.lms.CanvasCollectorPlugin"
c.FileNameCollectorPlugin.named_regexp = (
    r".*/(?P<name>[^/]+?)_(?:(?P<late>LATE)_)?(?P<canvas_id>\d+)_(?P<submission_id>\d+)_(?P<file_id>[^/]+)$"
)
# Canvas's gradebook export (CSV): the column "ID" is the number in the file names, this one the
# nbgrader student id. Without this file the Canvas number itself is the student id.
c.CanvasCollectorPlugin.roster = str(COURSE_ROOT / "downloaded" / "roster.csv")
c.CanvasCollectorPlugin.student_id_column = "SIS Login ID"
