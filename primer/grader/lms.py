"""Collecting a Canvas "Download Submissions" zip with `nbgrader zip_collect` (README, "Collecting,
backing up and sharing the grading").

Canvas names each file ``lastname_firstname_CANVASID_SUBMISSIONID_FILENAME`` (``..._LATE_CANVASID...``
when it came after the due date; ``FILENAME-1.ipynb`` when the learner uploaded it again). The
pattern in autograder/nbgrader_config.py (``FileNameCollectorPlugin.named_regexp``) splits the
name; this plugin then

* maps the Canvas user number to the nbgrader student id with Canvas's gradebook export (a CSV with
  an ``ID`` column; ``roster`` and ``student_id_column``). Without a roster file the Canvas number is
  the student id; a number missing from an existing roster is skipped with a warning (a typo never
  creates a new student);
* turns Canvas's late marker into nbgrader's timestamp (``timestamp.txt``). A Canvas zip says THAT a
  submission was late but not WHEN it came (the files' times in the zip are the download's), so a
  LATE file is timestamped ``late_seconds`` (default 1 s) after the assignment's due date in the
  gradebook: nbgrader marks it late and applies its late-penalty policy
  (``LateSubmissionPlugin.penalty_method``). A file without the marker gets no timestamp: on time.
"""

from __future__ import annotations

import csv
import functools
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Optional

from nbgrader.plugins import FileNameCollectorPlugin
from traitlets import Float, Unicode


class CanvasCollectorPlugin(FileNameCollectorPlugin):
    """nbgrader's file-name collector for Canvas's submission downloads."""

    roster = Unicode("", help="Canvas's gradebook export (CSV). Its 'ID' column is the number in the "
                     "submission file names. Empty or missing: the Canvas number is the student id."
                     ).tag(config=True)
    canvas_id_column = Unicode("ID", help="The roster's column with the Canvas user number.").tag(config=True)
    student_id_column = Unicode("SIS Login ID", help="The roster's column with the nbgrader student id."
                                ).tag(config=True)
    late_seconds = Float(1.0, help="How long after the due date a submission Canvas marks LATE is "
                         "timestamped (Canvas's zip does not say when it came).").tag(config=True)

    @functools.cached_property
    def _students(self) -> Optional[dict[str, str]]:
        if not self.roster or not Path(self.roster).exists():
            self.log.info("No Canvas roster at %r: the Canvas user numbers are the student ids", self.roster)
            return None
        with open(self.roster, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.DictReader(f))
        for column in (self.canvas_id_column, self.student_id_column):
            if rows and column not in rows[0]:
                raise ValueError(f"{self.roster} has no column {column!r} (it has: {', '.join(rows[0])})")
        # Canvas's export has a "Points Possible" row and test students: keep rows with a number and an id
        return {row[self.canvas_id_column].strip(): row[self.student_id_column].strip() for row in rows
                if row[self.canvas_id_column].strip().isdigit() and row[self.student_id_column].strip()}

    @functools.cached_property
    def _late_timestamp(self) -> Optional[str]:
        from nbgrader.api import Gradebook, MissingEntry

        coursedir = self.parent.coursedir
        with Gradebook(coursedir.db_url) as gb:
            try:
                duedate = gb.find_assignment(coursedir.assignment_id).duedate
            except MissingEntry:
                duedate = None
        if duedate is None:
            self.log.warning("Canvas marks some submissions LATE but %s has no due date in the gradebook, "
                             "so nbgrader cannot mark them late: set one with `nbgrader db assignment add "
                             "%s --duedate='YYYY-MM-DD HH:MM:SS UTC'` and collect again",
                             coursedir.assignment_id, coursedir.assignment_id)
            return None
        return (duedate + timedelta(seconds=self.late_seconds)).isoformat(" ") + " UTC"

    def _released_names(self) -> set[str]:
        coursedir = self.parent.coursedir
        released = Path(coursedir.format_path(coursedir.release_directory, ".", coursedir.assignment_id))
        return {p.name for p in released.glob("*.ipynb")}

    def collect(self, submitted_file: str) -> Optional[dict]:
        info = super().collect(submitted_file)
        if not info:
            return None
        canvas_id = info.get("canvas_id") or info.get("student_id")
        if not canvas_id:
            raise ValueError("FileNameCollectorPlugin.named_regexp must have a (?P<canvas_id>...) group")
        students = self._students
        if students is None:
            student_id = canvas_id
        elif canvas_id in students:
            student_id = students[canvas_id]
        else:
            self.log.warning("Skipped %s: Canvas user %s is not in the roster %s",
                             os.path.basename(submitted_file), canvas_id, self.roster)
            return None
        file_id = info["file_id"]
        # Canvas renames a re-uploaded file "name-1.ipynb": collect it under the released name
        stem, ext = os.path.splitext(file_id)
        plain = re.sub(r"-\d+$", "", stem) + ext
        if plain != file_id and file_id not in self._released_names() and plain in self._released_names():
            file_id = plain
        timestamp = self._late_timestamp if info.get("late") else None
        return dict(info, student_id=student_id, file_id=file_id, timestamp=timestamp)
