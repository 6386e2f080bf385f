"""The grading contract: a check runs a learner's object on seeded cases and explains failures.

A `Check` is a pure description: `cases(generator)` makes the
inputs, `run(obj, case)` calls an object on one case and returns plain outputs, and the outputs of
the learner's object are compared with those of `reference` (torch, or a derivation). Hints are
objects that implement a known mistake: when the learner's outputs match a hint's outputs, the
failure names the mistake.

`evaluate()` never raises for anything the learner did; `check()` is the one-line notebook form
that prints a pass or raises `CheckFailed` with the explanation. Both go through `judge()`, which
the grader also uses on the outcomes that learner code produced in the sandbox
(primer/grader/): the same cases, references, comparisons and hints, in a process that never
runs learner code.
"""

from __future__ import annotations

import contextlib
import copy
import os
import signal
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from primer import rules
from primer.comparing import compare
from primer.outputs import plain

VISIBLE_SEED = 0
# Hidden test cells use PRIMER_GRADING_SEED, which the autograder sets (autograder/
# nbgrader_config.py). A learner who runs a hidden cell at home gets this other seed instead.
HOME_HIDDEN_SEED = 20240917
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


class CheckFailed(AssertionError):
    """A check failed; the message says what to fix. Shown without a course-package traceback."""

    def _render_traceback_(self):  # IPython shows this instead of the traceback
        return [f"\x1b[31mCheckFailed\x1b[0m: {self}"]


class LearnerTimeout(Exception):
    pass


@dataclass(frozen=True)
class Case:
    """One input to an exercise: a label for messages, and what `run` passes to the object."""

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Hint:
    """An object that implements a known mistake, and the sentence that names it."""

    mistake: Any
    message: str


def call(obj, case: Case):
    """The default `run`: call the object with the case's arguments."""
    return obj(*case.args, **case.kwargs)


@dataclass(frozen=True)
class Check:
    exercise: str  # the name the learner defines, e.g. "cross_entropy"
    name: str  # the property checked, e.g. "stable"
    what: str  # one line: what this check verifies
    cases: Callable[[torch.Generator], list[Case]]
    reference: Any  # same kind of object as the learner's (function, class, ...)
    run: Callable[[Any, Case], Any] = call
    rtol: float | None = None  # None: torch.testing.assert_close's default for the dtype
    atol: float | None = None
    exact: bool = False  # bitwise equality (NaN equals NaN)
    check_dtype: bool = True
    hints: tuple[Hint, ...] = ()
    timeout: float = 20.0  # seconds per case for the learner's object
    points: int = 1  # of its test cell (generated from the spec: primer/testcells.py)
    single_threaded: bool = False  # run each case on one torch thread (see one_thread)
    # Names for failure messages: `axes` of the output's tensors ("step", "parameter element"),
    # `levels` of its nested lists ("rank", "tensor"), outer first.
    axes: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.exercise}.{self.name}"

    def apply(self, obj, case: Case):
        """`run(obj, case)`, on one thread if the spec says so: the learner's object, the reference
        and the hints alike."""
        if not self.single_threaded:
            return self.run(obj, case)
        with one_thread():
            return self.run(obj, case)


@contextlib.contextmanager
def one_thread():
    """For cases of tiny tensors, which gain nothing from several threads: on a loaded machine (CI
    runs two test workers on two cores) torch's thread pool waiting for a descheduled thread made
    04's LayerNorm gradcheck 50× slower (measured: 2.6 s of CPU instead of 0.05 s)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@dataclass(frozen=True)
class Result:
    key: str
    passed: bool
    message: str  # first line: the summary; following lines: the details
    warnings: tuple[str, ...] = ()


# --------------------------------------------------------------------------- registry

REGISTRY: dict[str, Check] = {}


def register(*checks: Check) -> None:
    for spec in checks:
        if spec.key in REGISTRY:
            raise ValueError(f"check {spec.key!r} is registered twice")
        REGISTRY[spec.key] = spec


def get_check(key: str) -> Check:
    """(`import primer` registered every assignment's checks and installed the tripwires.)"""
    try:
        return REGISTRY[key]
    except KeyError:
        from primer import exercises

        close = [k for k in REGISTRY if k.split(".")[0] == key.split(".")[0]]
        broken = "".join(f"\n  (course module {m} failed to import: {e.strip().splitlines()[-1]})"
                         for m, e in exercises.IMPORT_ERRORS.items())
        raise KeyError(f"no check named {key!r}; checks for this exercise: {close}{broken}") from None


def checks_for(exercise: str) -> list[Check]:
    from primer import exercises  # noqa: F401

    return [c for c in REGISTRY.values() if c.exercise == exercise]


def grading_seed() -> int:
    return int(os.environ.get("PRIMER_GRADING_SEED", HOME_HIDDEN_SEED))


# --------------------------------------------------------------------------- running

@contextlib.contextmanager
def _deadline(seconds: float):
    """Interrupt learner code that runs longer than `seconds` (main thread, POSIX only)."""
    usable = (
        seconds
        and hasattr(signal, "SIGALRM")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise LearnerTimeout()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _fresh(case: Case) -> Case:
    """A deep copy, so that a learner who modifies an input in place cannot change the reference."""
    try:
        return copy.deepcopy(case)
    except Exception:
        return case


@dataclass(frozen=True)
class Outcome:
    """What the learner's object did on one case, as data: its output, or why there is none.

    In the notebook `run_case` makes it in the same process; in grading the sandbox makes it and
    the grader reads it back (primer.outputs), so both judge exactly the same thing.
    """

    output: Any = None  # plain data (primer.outputs.plain)
    error: str = ""  # what went wrong, a sentence that follows "✗ key, case 'label': "
    not_implemented: bool = False  # the released stub's bare `raise NotImplementedError()`
    notes: tuple[str, ...] = ()  # warnings the learner's code raised (they cost nothing)


def run_case(spec: Check, obj, case: Case) -> Outcome:
    """Run the learner's object on one case. Never raises because of the learner's object."""
    notes: list[str] = []
    try:
        with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(sys.stdout), \
                rules.watching(spec.exercise) as forbidden_calls:
            warnings.simplefilter("always")
            with _deadline(spec.timeout):
                output = plain(spec.apply(obj, _fresh(case)))
            called = forbidden_calls()
        notes = [f"{w.category.__name__}: {w.message}" for w in caught]
        if called:
            return Outcome(error=rules.message(spec.exercise, called))
    except NotImplementedError as exc:
        if not str(exc):
            return Outcome(not_implemented=True)
        return Outcome(error=f"your code raised NotImplementedError: {exc}{_learner_location(exc)}")
    except LearnerTimeout:
        return Outcome(error=f"did not finish within {spec.timeout:g} s. Is there a loop that never ends?")
    except RecursionError as exc:
        return Outcome(error="RecursionError (maximum recursion depth). "
                       f"Deep graphs need an iterative traversal.{_learner_location(exc)}")
    except MemoryError as exc:
        return Outcome(error=f"ran out of memory (MemoryError){_learner_location(exc)}")
    except SystemExit as exc:  # sys.exit() inside the learner's function: a failure, not an exit
        return Outcome(error=f"your code called sys.exit({exc.code!r}){_learner_location(exc)}")
    except Exception as exc:
        return Outcome(error=f"your code raised {type(exc).__name__}: "
                       f"{_first_line(exc)}{_learner_location(exc)}")
    return Outcome(output=output, notes=tuple(notes))


def _learner_location(exc: BaseException) -> str:
    """The innermost traceback line that is the learner's code (not the course package, not torch)."""
    frames = traceback.extract_tb(exc.__traceback__)
    library_roots = (_PACKAGE_DIR, os.path.dirname(torch.__file__), os.path.dirname(os.__file__))
    learner = [f for f in frames if not f.filename.startswith(library_roots)]
    if not learner:
        return ""
    f = learner[-1]
    where = "your code" if ("ipykernel" in f.filename or f.filename.startswith("<")) else f.filename
    return f"\n  at line {f.lineno} of {where}: {f.line}"


def evaluate(spec: Check, obj, seed: int = VISIBLE_SEED, *, reuse: bool = False) -> Result:
    """Run one check on the learner's object, in this process. Never raises because of it.
    `reuse`: keep the reference's and the hints' outputs for the next object judged on this seed
    (the test suite judges hundreds of objects on the same cases)."""
    return judge(spec, seed, lambda index, case: run_case(spec, obj, case), reuse)


_REFERENCES: dict[tuple, Any] = {}  # (check key, seed, case index[, hint index]) -> output


def _reference(spec: Check, seed: int, index: int, case: Case, reuse: bool):
    """The reference's output on a case. `reuse` keeps it for the next call with the same seed
    (a class's grader judges every student on the visible seed)."""
    if reuse and (spec.key, seed, index) in _REFERENCES:
        return _REFERENCES[spec.key, seed, index]
    expected = plain(spec.apply(spec.reference, _fresh(case)))
    if reuse:
        _REFERENCES[spec.key, seed, index] = expected
    return expected


def judge(spec: Check, seed: int, outcome_of: Callable[[int, Case], Outcome], reuse: bool = False) -> Result:
    """Compare the learner's outcome on each case with the reference's; the first failure explains.

    `outcome_of(index, case)` is the learner's outcome on the case: computed on the spot
    (`evaluate`) or read from what the sandbox returned (primer.grader.verify).
    """
    cases = spec.cases(torch.Generator().manual_seed(seed))
    notes: list[str] = []
    for index, case in enumerate(cases):
        expected = _reference(spec, seed, index, case, reuse)
        head = f"✗ {spec.key}, case {case.label!r}"
        outcome = outcome_of(index, case)
        notes += outcome.notes
        if outcome.not_implemented:
            return Result(
                spec.key,
                False,
                f"✗ {spec.key}: {spec.exercise} is not implemented yet. Replace "
                "`raise NotImplementedError()` in its cell with your code, run that cell, "
                "then run this one again.",
            )
        key = (spec.key, seed, index) if reuse else None
        if outcome.error:
            message = f"{head}: {outcome.error}"
            hint = _matching_error_hint(spec, case, outcome.error, key)
            if hint:
                message += f"\n  Hint: {hint}"
            return Result(spec.key, False, message, tuple(notes))
        problem = compare(outcome.output, expected, spec)
        if problem is not None:
            message = f"{head}: {problem}"
            hint = _matching_hint(spec, case, outcome.output, expected, key)
            if hint:
                message += f"\n  Hint: {hint}"
            return Result(spec.key, False, message, tuple(notes))
    message = f"✓ {spec.key}: {spec.what} ({len(cases)} case{'s' * (len(cases) != 1)})"
    return Result(spec.key, True, message, tuple(notes))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else ""


def _matching_hint(spec: Check, case: Case, actual, expected, reuse_key: tuple | None = None) -> str | None:
    """The sentence of the one known mistake that the learner's output matches on this case.

    None when no hint matches, when mistakes that differ match alike (this case cannot tell them
    apart, and naming one of them could name the wrong one), or when the output is only
    True/False: there every wrong answer would "match" every mistake.
    """
    if _only_booleans(expected):
        return None
    # A hint only counts when the mistake really differs from the reference on this case.
    return _one_hint(spec, case, reuse_key, lambda mistaken: not isinstance(mistaken, _Raised)
                     and compare(mistaken, expected, spec) is not None
                     and compare(actual, mistaken, spec) is None)


def _matching_error_hint(spec: Check, case: Case, error: str, reuse_key: tuple | None) -> str | None:
    """The sentence of the one known mistake that raises on this case what the learner's code
    raised (the same exception and first line of its message)."""
    raised = _Raised(error.split("\n", 1)[0])
    return _one_hint(spec, case, reuse_key, lambda mistaken: mistaken == raised)


def _one_hint(spec: Check, case: Case, reuse_key: tuple | None, matches) -> str | None:
    """The sentence of the hints whose mistake's output on `case` `matches`, if they all say the
    same; None when none matches or mistakes that differ do."""
    sentences = {hint.message for i, hint in enumerate(spec.hints)
                 if matches(_mistaken_output(spec, hint, case, reuse_key and (*reuse_key, i)))}
    return sentences.pop() if len(sentences) == 1 else None


@dataclass(frozen=True)
class _Raised:
    """What a mistake's object raised on a case, worded as the learner's error would be."""

    error: str


def _mistaken_output(spec: Check, hint: Hint, case: Case, key: tuple | None):
    if key is not None and key in _REFERENCES:
        return _REFERENCES[key]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mistaken = plain(spec.apply(hint.mistake, _fresh(case)))
    except Exception as exc:
        mistaken = _Raised(f"your code raised {type(exc).__name__}: {_first_line(exc)}")
    if key is not None:
        _REFERENCES[key] = mistaken
    return mistaken


def _only_booleans(output) -> bool:
    if isinstance(output, bool) or (isinstance(output, torch.Tensor) and output.dtype == torch.bool
                                    and output.numel() == 1):
        return True
    if isinstance(output, dict):
        output = list(output.values())
    return isinstance(output, (list, tuple)) and len(output) > 0 and all(map(_only_booleans, output))


def check(key: str, obj, *, hidden: bool = False, seed: int | None = None) -> Result:
    """The notebook's test cell: `check("cross_entropy.stable", cross_entropy)`.

    Prints a line when the check passes; raises CheckFailed with the explanation when it fails.
    `hidden=True` draws the inputs from the grading seed (fresh inputs at grading time).
    """
    __tracebackhide__ = True
    spec = get_check(key)
    if seed is None:
        seed = grading_seed() if hidden else VISIBLE_SEED
    result = evaluate(spec, obj, seed)
    for note in result.warnings[:3]:
        print(f"  note (costs no points): your code warned {note}")
    if not result.passed:
        raise CheckFailed(result.message)
    print(result.message)
    return None
