"""One submission in a class run: whether it can be graded, its outcome, and its done record.

A student is done exactly when the done record (`autograder/verified/<A>/<S>.done`, the
submission's content hash with the outcome) matches the current submission; the record is
written atomically, so a run killed at any moment sees the old record or the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from primer.grader.nbgrader_plugin import course_fingerprint, result_path

STATE_SUFFIX = ".done"
# nbgrader finds submissions with a glob and matches paths with a regular expression built from
# the id, strips whitespace off ids and uses "+" as a separator in exchange file names.
BAD_ID_CHARS = set("*?[]+/\\")


@dataclass
class Outcome:
    """What happened to one student's submission; also the done record's content."""

    student: str
    hash: str = ""
    status: str = "graded"  # graded / could not be graded
    reason: str = ""  # why it could not be graded
    note: str = ""  # graded, but something to say (another notebook found, re-scored cells)
    score: float = 0.0
    max_score: float = 0.0
    seconds: float = 0.0
    skipped: bool = field(default=False, compare=False)  # done in an earlier run

    def line(self) -> str:
        if self.status != "graded":
            return f"{self.student:24s} {'not graded':>13s}  {self.reason}"
        text = f"{self.student:24s} {self.score:6g} / {self.max_score:<4g}  {self.seconds:5.1f} s"
        if self.skipped:
            text += "  (unchanged since the last run)"
        return text + (f"  {self.note}" if self.note else "")


# --------------------------------------------------------------------------- done records

def state_path(course: Path, assignment: str, student: str) -> Path:
    return result_path(course / "autograder", assignment, student).with_suffix(STATE_SUFFIX)


def read_state(course: Path, assignment: str, student: str) -> Outcome | None:
    try:
        data = json.loads(state_path(course, assignment, student).read_text(encoding="utf-8"))
        return Outcome(**data)
    except (OSError, ValueError, TypeError):
        return None


def write_state(course: Path, assignment: str, outcome: Outcome) -> None:
    path = state_path(course, assignment, outcome.student)
    record = asdict(outcome)
    record.pop("skipped")
    atomic_write(path, json.dumps(record, indent=1))


def atomic_write(path: Path, text: str) -> None:
    """A reader (or a run started after a kill) sees the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)


def submission_hash(folder: Path) -> str:
    """Every file of the submission (names and bytes), and the grading code: either changing
    means the grade must be made again."""
    digest = hashlib.sha256(course_fingerprint().encode())
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


# --------------------------------------------------------------------------- checking submissions

def student_id_problem(student: str) -> str | None:
    if student != student.strip() or not student:
        return f"student id {student!r} has leading or trailing whitespace, which nbgrader strips"
    if student.startswith("."):
        return f"student id {student!r} starts with '.', so nbgrader never finds the folder"
    bad = sorted(BAD_ID_CHARS & set(student))
    if bad:
        return f"student id {student!r} contains {' '.join(bad)}, which nbgrader cannot handle"
    return None


def submission_problem(folder: Path, assignment: str) -> tuple[str | None, str]:
    """(why this submission cannot be graded or None, a note to add when it is graded)."""
    expected = folder / f"{assignment}.ipynb"
    found = sorted(p.name for p in folder.glob("*.ipynb") if p.name != expected.name)
    if not expected.exists():
        return (f"no {expected.name} (found: {', '.join(found) or 'no notebook'}); "
                "a renamed notebook is not graded"), ""
    try:
        nb = json.loads(expected.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{expected.name} is not valid JSON ({exc}); the file is damaged or truncated", ""
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return f"{expected.name} is JSON but not a notebook", ""
    try:
        import nbformat

        nbformat.from_dict(nb)
        nbformat.reads(json.dumps(nb), as_version=4)
    except Exception as exc:  # nbformat's own reader is what nbgrader uses
        return f"{expected.name} is not a notebook nbformat can read ({str(exc)[:200]})", ""
    note = f"also found {', '.join(found)} (not graded: only {expected.name} is)" if found else ""
    return None, note


def stray_folders(course: Path, assignments: set[str], students: list[str] | None) -> list[Outcome]:
    """Submitted folders for an assignment that does not exist (a typo, or not released yet)."""
    out = []
    for folder in sorted((course / "submitted").glob("*/*")):
        wanted = not students or folder.parent.name in students
        if folder.is_dir() and folder.name not in assignments and wanted:
            out.append(Outcome(folder.parent.name, status="could not be graded",
                               reason=f"submitted/{folder.parent.name}/{folder.name}: no assignment "
                               f"{folder.name!r} exists in the gradebook"))
    return out
