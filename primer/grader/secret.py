"""The course secret, and the per-student seeds of the hidden cases derived from it.

Each student's hidden cases for an assignment come from HMAC-SHA256(secret, assignment, student):
a seed that leaks (a learner prints it) says nothing about another student's or another
assignment's cases, and the secret itself never leaves the grader's process (it is not in the
sandbox's environment, files, the feedback or the logs).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_NAME = ".grading_secret"


def secret_path(autograder_dir: Path) -> Path:
    return Path(os.environ.get("PRIMER_SECRET_FILE", autograder_dir / SECRET_NAME))


def course_secret(autograder_dir: Path) -> bytes:
    """The secret, created on first use (64 hex digits, readable by its owner only)."""
    path = secret_path(autograder_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32) + "\n")
    text = path.read_text().strip()
    if len(text) < 32:
        raise ValueError(f"{path} is too short to be a course secret; delete it to make a new one")
    return text.encode()


def student_seed(secret: bytes, assignment: str, student: str) -> int:
    """The seed of this student's hidden cases for this assignment."""
    digest = hmac.new(secret, f"{assignment}\0{student}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % (2**31 - 1) + 1
