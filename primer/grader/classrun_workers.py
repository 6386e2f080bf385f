"""A class run's workers (primer.grader.classrun): the course's config, and the worker that
sanitizes and verifies one submission at a time, forked from a warm fork server."""

from __future__ import annotations

import contextlib
import ctypes
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from primer.grader.nbgrader_plugin import result_path

# --------------------------------------------------------------------------- course and config

def load_config(course: Path, overrides: dict | None = None):
    """The course's nbgrader config (autograder/nbgrader_config.py), plus `overrides`
    ({"VerifiedExecute": {"cell_seconds": 10}})."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = PyFileConfigLoader("nbgrader_config.py", path=str(course / "autograder")).load_config()
    config.merge(Config(overrides or {}))
    return config


# --------------------------------------------------------------------------- the workers

# What a worker imports before its first submission, imported once by multiprocessing's fork
# server, from which every worker is forked: N workers cost one import (2-3 s of CPU), not N.
WORKER_PRELOAD = ["primer.grader.classrun_workers", "primer.grader.nbgrader_plugin", "primer.grader.verify",
                  "nbgrader.converters", "nbgrader.coursedir"]


def worker_context():
    """Workers come from a fork server: a fresh process (this one has threads and a database
    connection, which forking would copy) that has imported WORKER_PRELOAD. It lives as long as
    this process, so later runs in it (tests, a notebook) start their workers warm."""
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(WORKER_PRELOAD)
    return ctx


def worker_main(course: str, overrides: dict, index: int, tasks, results, environ: dict) -> None:
    """A worker: verifies tasks until it gets None. Not a multiprocessing.Pool worker: those are
    daemonic, and verifying some assignments (06) starts processes of its own."""
    with contextlib.suppress(Exception):  # die with the parent: a SIGKILLed run leaves no orphans
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent (the fork server, which dies with the run) died before prctl
        os._exit(1)
    # The fork server's environment is the one of its start: the run's is this run's (its course
    # secret, its PATH), as a spawned process would have it.
    os.environ.clear()
    os.environ.update(environ)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # the parent's stop: atexit removes its sandbox
    overrides = json.loads(json.dumps(overrides))
    overrides.setdefault("VerifiedExecute", {})["worker"] = index  # its sandbox uid: uid_base + index
    config = load_config(Path(course), overrides)
    for task in iter(tasks.get, None):
        results.put(("start", index, task[1]))
        results.put(("done", index, _work(config, Path(course), task)))


def sanitize_and_verify(config, course: Path, assignment: str, student: str) -> dict:
    """nbgrader's sanitize pass, then VerifiedExecute, on one submission, in this process;
    nothing is written to the gradebook or to autograded/. The verification is saved where
    nbgrader's autograde pass will look for it, under the key it will compute."""
    from nbgrader import utils
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory

    from primer.grader.nbgrader_plugin import VerifiedExecute

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id, coursedir.student_id = assignment, student
    conv = Autograde(coursedir=coursedir, config=config)
    conv.exporter = conv.exporter_class(parent=conv, config=conv.config)  # as in BaseConverter.start
    source = Path(coursedir.format_path(coursedir.submitted_directory, student, assignment))
    source_nb = source / f"{assignment}.ipynb"
    conv._sanitizing = True  # the same preprocessors and exporter as nbgrader's first pass
    conv._init_preprocessors()
    resources = conv.init_single_notebook_resources(str(source_nb))
    output, _ = conv.exporter.from_filename(str(source_nb), resources=resources)

    with tempfile.TemporaryDirectory(prefix="primer-classrun-") as tmp:
        # the folder nbgrader's second pass sees: the submission's other files, then the
        # instructor's (source) files over them
        work = Path(tmp) / assignment
        shutil.copytree(source, work, ignore=shutil.ignore_patterns("*.ipynb"))
        release_src = Path(coursedir.format_path(coursedir.source_directory, ".", assignment))
        shutil.copytree(release_src, work, ignore=shutil.ignore_patterns("*.ipynb"), dirs_exist_ok=True)
        sanitized = work / source_nb.name
        sanitized.write_text(output, encoding="utf-8")
        conv.exporter._preprocessors = []
        conv.exporter.register_preprocessor(VerifiedExecute)
        resources = {"nbgrader": dict(resources["nbgrader"]), "unique_key": resources["unique_key"],
                     "output_files_dir": resources["output_files_dir"]}
        with utils.setenv(NBGRADER_EXECUTION="autograde"):
            conv.exporter.from_filename(str(sanitized), resources=resources)
    return json.loads(result_path(course / "autograder", assignment, student).read_text())["verification"]


def _work(config, course: Path, task: tuple[str, str, str]) -> tuple[str, str, dict | None, str, float]:
    assignment, student, digest = task
    started = time.monotonic()
    try:
        verification = sanitize_and_verify(config, course, assignment, student)
        return student, digest, verification, "", time.monotonic() - started
    except Exception as exc:  # one submission never stops the others
        return student, digest, None, f"{type(exc).__name__}: {exc}"[:500], time.monotonic() - started
