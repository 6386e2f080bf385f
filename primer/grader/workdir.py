"""The sandbox's working folder, from the grader's side: handing it to the uid inside, and
reading what the code inside wrote there without trusting it (no symlinks, FIFOs or huge files)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def chown_tree(top: Path, uid: int) -> None:
    """chown -R, never following symlinks (the learner may have left some pointing anywhere)."""
    os.chown(top, uid, uid)
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, uid, follow_symlinks=False)


def read_learner_file(path: Path, limit: int, *, tail: bool = False) -> bytes | None:
    """A file the sandbox wrote, as bytes: None unless it is a regular file (not a symlink to a
    host file, not a FIFO) of at most `limit` bytes, or with `tail`, its last `limit` bytes.
    The grader reads as the instructor."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode) or (info.st_size > limit and not tail):
            return None
        f.seek(max(0, info.st_size - limit) if tail else 0)
        return f.read(limit + 1)[:limit]
