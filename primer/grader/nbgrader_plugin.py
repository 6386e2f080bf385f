"""nbgrader's autograde, with the kernel replaced by the sandbox and the verifier.

`VerifiedExecute` takes the place of nbgrader's `Execute` preprocessor (autograder/
nbgrader_config.py). nbgrader still does everything else: it restores locked cells and hidden
tests from the gradebook, records timestamps and late penalties, and `SaveAutoGrades` reads each
test cell's score from its output. This preprocessor writes those outputs from the verified
result: a test cell shows the verified message and carries an error output exactly when the
verification failed it. No learner code runs in this process.

Verifications in one process share a warm sandbox (primer.grader.zygote): the learner's code
still runs in a fresh, isolated child for each notebook, without a new Python importing torch.

A verification that the class run (primer.grader.classrun) already made for exactly this
notebook, these checks and this seed is reused from `autograder/verified/`; otherwise it is made
here.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
from pathlib import Path

import jinja2
import nbformat
from nbconvert.exporters import HTMLExporter
from nbformat.v4 import new_output
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors.base import NbGraderPreprocessor
from traitlets import Float, Int

from primer.exercises import sandbox_preload
from primer.grader import secret as course_secret
from primer.grader import zygote
from primer.grader.sandbox import Sandbox
from primer.grader.verify import Verification, is_test_cell, learner_cells, test_cells, verify
from primer.grader.zygote import WarmSandbox

VERIFIED_FOLDER = "verified"  # autograder/verified/<assignment>/<student>.json


def course_fingerprint() -> str:
    """Changes whenever the course package's grading code or specs change (stale results are redone)."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):  # every module, in every package (exercises/aNN_x/...)
        digest.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def verification_key(nb, release_nb, seed: int) -> str:
    """What a verification depends on: the cells run, the checks made, the seed, the course code."""
    calls = [[c.grade_id, [(x.key, x.name, x.hidden) for x in c.calls]] for c in test_cells(nb)]
    data = json.dumps([learner_cells(nb, release_nb), calls, seed, course_fingerprint()])
    return hashlib.sha256(data.encode()).hexdigest()


def result_path(autograder_dir: Path, assignment: str, student: str) -> Path:
    # nbgrader's ids are plain names; the quote keeps an odd one inside this folder anyway
    safe = "".join(ch if ch.isalnum() or ch in "-_." else f"%{ord(ch):02x}" for ch in student)
    return autograder_dir / VERIFIED_FOLDER / assignment / f"{safe}.json"


def load_result(path: Path, key: str) -> Verification | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return Verification.from_json(data["verification"]) if data.get("key") == key else None


def save_result(path: Path, key: str, verification: Verification) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"key": key, "verification": verification.to_json()}), encoding="utf-8")
    tmp.replace(path)  # atomic: a reader sees the old result or the new one, never half


def release_notebook(coursedir: CourseDirectory, assignment: str, notebook: str):
    path = Path(coursedir.format_path(coursedir.release_directory, ".", assignment)) / f"{notebook}.ipynb"
    return nbformat.read(str(path), as_version=4)


class VerifiedExecute(NbGraderPreprocessor):
    """Scores test cells from a sandboxed run of the learner's cells, verified out of process."""

    cell_seconds = Float(120.0, help="Seconds a learner's cell may run before it is stopped (the "
                         "cells after it still run).").tag(config=True)
    check_seconds = Float(120.0, help="Seconds one check may run on a learner's object.").tag(config=True)
    worker = Int(0, help="Index of the grading worker (gives the sandbox its own uid).").tag(config=True)

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        assignment, student, notebook = info["assignment"], info["student"], info["notebook"]
        coursedir = CourseDirectory(config=self.config)
        autograder_dir = Path(coursedir.root) / "autograder"
        seed = course_secret.student_seed(course_secret.course_secret(autograder_dir), assignment, student)
        release_nb = release_notebook(coursedir, assignment, notebook)
        key = verification_key(nb, release_nb, seed)
        path = result_path(autograder_dir, assignment, student)
        verification = load_result(path, key)
        if verification is None:
            submitted = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
            sandbox = Sandbox(config=self.config)
            uid = sandbox.uid_base + self.worker
            preload = sandbox_preload(assignment)
            verification = verify(nb, release_nb, seed=seed, sandbox=warm_sandbox(sandbox, uid, preload),
                                  notebook_dir=Path(resources["metadata"]["path"]), uid=uid, preload=preload,
                                  submitted_nb=_read_or_none(submitted / f"{notebook}.ipynb"),
                                  cell_seconds=self.cell_seconds, check_seconds=self.check_seconds)
            save_result(path, key, verification)
        write_outputs(nb, verification)
        return nb, resources


_warm: dict[int, WarmSandbox] = {}


def warm_sandbox(sandbox: Sandbox, uid: int, preload: tuple[str, ...] = ()) -> Sandbox | WarmSandbox:
    """This process's zygote for `uid` (started once, removed at exit; replaced for an assignment
    that preloads other modules), where one can serve; else `sandbox` itself, which starts a
    sandbox per notebook."""
    if not zygote.usable():
        return sandbox
    if uid in _warm and _warm[uid].preload != tuple(preload):
        _warm.pop(uid).remove()
    if uid not in _warm:
        _warm[uid] = WarmSandbox(sandbox, uid, preload)
        atexit.register(_warm[uid].remove)
    return _warm[uid]


class _CompiledTemplates(jinja2.BytecodeCache):
    """Jinja's compiled templates, kept for the life of the process (keyed by name and source)."""

    compiled: dict[str, bytes] = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.compiled:
            bucket.bytecode_from_string(self.compiled[bucket.key])

    def dump_bytecode(self, bucket):
        self.compiled[bucket.key] = bucket.bytecode_to_string()


class FeedbackExporter(HTMLExporter):
    """nbconvert's HTML exporter (configured as c.HTMLExporter), compiling its templates once per
    process rather than once per student (a third of the time feedback takes)."""

    def _create_environment(self):
        environment = super()._create_environment()
        environment.bytecode_cache = _CompiledTemplates()
        return environment


class TagTestCellsForRunAll(NbGraderPreprocessor):
    """At release: each test cell gets the `raises-exception` tag, so that JupyterLab's Run All goes
    on past a failing check (an exercise not done yet) to the end of the notebook, as it does for a
    notebook whose checks pass. nbgrader grades by metadata, not tags; nbval, which runs the
    solutions (never tagged), still fails on any error there."""

    def preprocess_cell(self, cell, resources, index):
        if is_test_cell(cell):
            tags = cell.metadata.setdefault("tags", [])
            if "raises-exception" not in tags:
                tags.append("raises-exception")
        return cell, resources


class ForgetUnknownCells(NbGraderPreprocessor):
    """Before nbgrader restores cells: a cell whose grade id the gradebook does not know (a learner
    renamed it) becomes an ordinary cell, and the original is added back as a missing cell.

    Without this, nbgrader 0.9.6 stops on such a notebook (KeyError in add_missing_grade_cells) and
    the student gets 0 for correct answers.
    """

    def preprocess(self, nb, resources):
        from nbgrader.api import Gradebook, MissingEntry

        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gb:
            try:
                notebook = gb.find_notebook(info["notebook"], info["assignment"])
            except MissingEntry:
                return nb, resources
            known = {c.name for c in [*notebook.grade_cells, *notebook.solution_cells, *notebook.task_cells]}
        for cell in nb.cells:
            meta = cell.get("metadata", {})
            if "nbgrader" in meta and meta["nbgrader"].get("grade_id") not in known:
                del meta["nbgrader"]
        return nb, resources


def _read_or_none(path: Path):
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception:
        return None


def write_outputs(nb, verification: Verification) -> None:
    """Each test cell's output: the verified message; an error output when it failed."""
    verdicts = {v.grade_id: v for v in verification.cells}
    exercises = {v.exercise for v in verification.cells}
    general = [n for n in verification.notes if not any(f"`{e}`" in n for e in exercises)]
    first = True
    for cell in nb.cells:
        if not is_test_cell(cell):
            continue
        verdict = verdicts.get(cell.metadata.nbgrader.get("grade_id"))
        cell.execution_count = None
        if verdict is None:  # cannot happen for a notebook nbgrader restored; never full marks by default
            cell.outputs = [_error("✗ this test cell could not be verified")]
            continue
        lines = [f"Exercise {verdict.exercise} ({verdict.points:g} point{'s' * (verdict.points != 1)}), "
                 "verified on a clean run of your code:", verdict.message]
        lines += [f"Note: {n}" for n in verification.notes if f"`{verdict.exercise}`" in n]
        lines += [f"Note: {n}" for n in (general if first else [])]
        first = False
        if verdict.disagrees:
            lines.append(f"Re-scored: when you ran this cell it showed {verdict.claimed}; the verified run "
                         f"{'passed' if verdict.passed else 'failed'} it, and that is what counts.")
        text = "\n".join(lines)
        check = verdict.grade_id.removeprefix("test_").removeprefix(f"{verdict.exercise}_")
        cell.metadata["primer"] = {"title": f"{verdict.exercise}: {check.replace('_', ' ')}"}
        cell.outputs = [new_output("stream", name="stdout", text=text + "\n")] if verdict.passed \
            else [_error(text)]


def _error(text: str):
    return new_output("error", ename="CheckFailed", evalue=text.splitlines()[0], traceback=text.splitlines())
