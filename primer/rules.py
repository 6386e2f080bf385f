"""Functions an exercise says not to use, and the tripwires that notice when learner code calls them.

An exercise such as `cross_entropy` says "don't call F.cross_entropy": its spec module declares
`forbid("cross_entropy", "torch.nn.functional.cross_entropy", ...)`. A tripwire replaces each named
function (or class constructor) by a wrapper that calls the original and, when a cell of the
learner's is on the call stack, appends "exercise<TAB>function" to a log file. In grading the
tripwires are installed in the sandbox before any learner cell runs, so a name imported or saved
by a cell is already the wrapper; the log is a file, so calls made in processes that a check
forks (the distributed exercises) are seen too. The grader reads the log and fails the exercise.

What it does not catch: code that reaches the same computation another way (torch's private
`torch._C` functions, reloading the module to get the unwrapped function). That takes a
deliberate effort to hide, which is a matter for the instructor, not for a check.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import stat
import sys

FORBIDDEN: dict[str, tuple[str, ...]] = {}  # exercise → dotted names of what it may not call
_ORIGINALS: dict[str, object] = {}
_state = {"exercise": None, "log": None}


def forbid(exercise: str, *targets: str) -> None:
    """Declare, in an exercise's spec module, the functions or classes its notebook forbids."""
    FORBIDDEN[exercise] = FORBIDDEN.get(exercise, ()) + targets


def _is_learner_file(filename: str) -> bool:
    return filename.startswith(("<ipython-input", "<cell")) or "/ipykernel_" in filename


def _learner_on_stack() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if _is_learner_file(frame.f_code.co_filename):
            return True
        frame = frame.f_back
    return False


def _record(target: str) -> None:
    if _state["exercise"] and _state["log"] and _learner_on_stack():
        with contextlib.suppress(OSError):
            fd = os.open(_state["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            os.write(fd, f"{_state['exercise']}\t{target}\n".encode())
            os.close(fd)


def _resolve(target: str):
    module_name, _, attr = target.rpartition(".")
    try:
        return importlib.import_module(module_name), attr
    except ImportError:  # a class attribute: "torch.Tensor.backward"
        owner_module, _, owner = module_name.rpartition(".")
        return getattr(importlib.import_module(owner_module), owner), attr


def install() -> None:
    """Wrap every forbidden function once (idempotent). Classes get a wrapped __init__."""
    for target in sorted({t for targets in FORBIDDEN.values() for t in targets}):
        if target in _ORIGINALS:
            continue
        owner, attr = _resolve(target)
        original = getattr(owner, attr)
        _ORIGINALS[target] = original
        if isinstance(original, type):
            init = original.__init__

            @functools.wraps(init)
            def wrapped_init(self, *args, _init=init, _target=target, **kwargs):
                _record(_target)
                return _init(self, *args, **kwargs)
            original.__init__ = wrapped_init
        else:
            @functools.wraps(original)
            def wrapped(*args, _original=original, _target=target, **kwargs):
                _record(_target)
                return _original(*args, **kwargs)
            setattr(owner, attr, wrapped)


def log_path() -> str:
    """Where tripwires write: PRIMER_FORBIDDEN_LOG (the sandbox sets it), else a file of this process."""
    if "PRIMER_FORBIDDEN_LOG" not in os.environ:
        import tempfile

        fd, path = tempfile.mkstemp(prefix="primer-forbidden-", suffix=".log")
        os.close(fd)
        os.environ["PRIMER_FORBIDDEN_LOG"] = path
    return os.environ["PRIMER_FORBIDDEN_LOG"]


@contextlib.contextmanager
def watching(exercise: str):
    """Record the forbidden calls made for `exercise` (in this process and its children).
    Yields a function that returns the forbidden names called so far inside the block."""
    log = log_path()
    start = os.path.getsize(log) if os.path.exists(log) else 0
    previous = dict(_state)
    _state.update(exercise=exercise if exercise in FORBIDDEN else None, log=log)
    try:
        yield lambda: calls_in(log, exercise, start)
    finally:
        _state.update(previous)


def calls_in(log: str, exercise: str, start: int = 0, limit: int = 1 << 20) -> list[str]:
    """The forbidden functions that the log says `exercise` called (read as data, capped)."""
    try:  # the sandbox wrote it: a regular file only, never a symlink to a host file
        fd = os.open(log, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                return []
            f.seek(start)
            text = f.read(limit).decode(errors="replace")
    except OSError:
        return []
    allowed = set(FORBIDDEN.get(exercise, ()))
    found = [line.split("\t", 1)[1] for line in text.splitlines() if line.startswith(f"{exercise}\t")]
    return sorted({name for name in found if name in allowed})


def message(exercise: str, called: list[str]) -> str:
    names = ", ".join(f"`{n.replace('torch.nn.functional.', 'F.')}`" for n in called)
    return (f"`{exercise}` calls {names}, which this exercise asks you not to use "
            "(see its instructions): write the computation yourself")
