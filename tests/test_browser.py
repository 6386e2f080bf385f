"""The course as people meet it: JupyterLab in a real browser (headless Chromium + Playwright).

JupyterLab runs on loopback (free port, token) from a throw-away prefix set up by binder/postBuild's
student-facing part, so the page is what a Binder learner gets. In it:
- each released notebook renders, its kernel starts, nbgrader's Validate button is there; one
  Run All reaches the end (its test cells are tagged `raises-exception`), every graded cell shows
  the course's "not implemented yet" message and nothing else fails;
- the first assignment, filled in with its solutions the way a learner would, runs all cells with
  no error and no stderr, every plot renders as an image, and it passes every visible check: that
  run makes the README's picture (test-artifacts/screenshot.png; docs/screenshot.png is a
  committed copy of it).
The solution notebooks are not run here: nbval runs each of them (hidden tests included), and
conftest.py checks the outputs it collected the same way (no stderr, every figure an image).
Screenshots of every notebook are kept in test-artifacts/browser/ (not committed), and the timings
in test-artifacts/browser/timings.json.

Without Chromium (/usr/bin/chromium) the test is skipped, saying how to install it; in CI (CI set),
where .ci/run installs it, a missing Chromium is a failure.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import nbformat
import pytest

from primer import notebooks
from tests.browser_lab import CHROMIUM, INSTALL_HINT, Lab, LabServer, Run, copy_course, run_all
from tests.helpers import FIGURE_AS_TEXT, REPO
from tests.learner_env import make_prefix, run_student_block

ARTIFACTS = REPO / "test-artifacts"
JOBS = int(os.environ.get("PRIMER_BROWSER_JOBS", "2"))  # notebooks running at once (2 cores)
PER_NOTEBOOK_S = 300  # a notebook still running after this is reported, not waited for
NOT_IMPLEMENTED = "is not implemented yet"
LEARNER_PLUGINS = ["@jupyter/nbgrader:validate-assignment", "@jupyter/nbgrader:assignment-list"]
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list"]


# PRIMER_BROWSER_ONLY=03,05 runs only the assignments whose names start with these (for a quick look)
ONLY = [x for x in os.environ.get("PRIMER_BROWSER_ONLY", "").split(",") if x]


def _found(folder: str) -> list[str]:
    return sorted(p.parent.name for p in (REPO / folder).glob("*/*.ipynb")
                  if p.stem == p.parent.name and (not ONLY or p.stem.startswith(tuple(ONLY))))


RELEASES = _found("notebooks")
SOLUTIONS = _found("solutions")
COMPLETED = RELEASES[0] if RELEASES and RELEASES[0] in SOLUTIONS else None  # the README's notebook


def completed_by_a_learner(assignment: str) -> nbformat.NotebookNode:
    """The released notebook with every learner cell filled in (the solution code, markers removed)."""
    nb = notebooks.read(REPO / "notebooks" / assignment / f"{assignment}.ipynb")
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source
              for c in notebooks.read(REPO / "solutions" / assignment / f"{assignment}.ipynb").cells
              if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and meta.get("solution"):
            source = solved[meta["grade_id"]]
            cell.source = re.sub(r"^\s*### (BEGIN|END) SOLUTION\s*\n", "", source, flags=re.M)
    return nb


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not CHROMIUM.exists():
        message = f"no Chromium at {CHROMIUM}: install it with `{INSTALL_HINT}` (as root)"
        if os.environ.get("CI"):
            pytest.fail(message + "; .ci/run installs it in CI")
        pytest.skip(message)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.fail("the Python package playwright is missing: run `make setup` (it is a dev dependency)")
    started = time.monotonic()
    tmp = tmp_path_factory.mktemp("browser")
    browser_dir = ARTIFACTS / "browser"
    browser_dir.mkdir(parents=True, exist_ok=True)
    for old in [*browser_dir.glob("*.png"), *browser_dir.glob("*.jpg")]:
        old.unlink()

    prefix = make_prefix(tmp)  # a learner's Jupyter, configured by binder/postBuild
    out = run_student_block(prefix)
    assert out.returncode == 0, out.stdout + out.stderr
    root = copy_course(REPO, tmp / "course")
    runs = [Run(f"notebooks/{assignment}/{assignment}.ipynb", "release") for assignment in RELEASES]
    if COMPLETED:
        path = root / "learner" / COMPLETED / f"{COMPLETED}.ipynb"
        path.parent.mkdir(parents=True)
        nbformat.write(completed_by_a_learner(COMPLETED), str(path))
        runs.insert(0, Run(f"learner/{COMPLETED}/{COMPLETED}.ipynb", "completed"))
    (tmp / "work").mkdir()
    server = LabServer(root, tmp / "work", python=prefix.python, base_env=prefix.env)
    server.start()
    page = None
    try:
        page = Lab(server, browser_dir)  # Chromium starts while the server does
        server.wait_ready()
        page.load()
        ready = time.monotonic() - started
        plugins = page.page.evaluate("(ids) => ids.map(id => [id, window.jupyterapp.hasPlugin(id), "
                                     "window.jupyterapp.isPluginActivated(id)])",
                                     LEARNER_PLUGINS + INSTRUCTOR_PLUGINS)

        def after(run: Run) -> None:
            page.screenshot(run, f"{Path(run.path).stem}-{run.kind}")

        completed = [r for r in runs if r.kind == "completed"]
        run_all(page, runs, JOBS, PER_NOTEBOOK_S, after, keep=completed)
        for run in completed:  # the README picture, once the other tabs are closed
            if run.result.get("ok"):
                page.screenshot_check_and_plot(run, ARTIFACTS / "screenshot.png")
        total = time.monotonic() - started
        timings = {"total_s": round(total, 1), "startup_s": round(ready, 1), "jobs": JOBS,
                   "notebooks": {f"{r.kind}:{r.path}": {
                       "open_s": round(r.opened_seconds, 1),
                       "run_s": round((r.result or {}).get("seconds", -1), 1),
                       "errors": len((r.result or {}).get("errors", []))} for r in runs}}
        (browser_dir / "timings.json").write_text(json.dumps(timings, indent=1))
        print(f"\nbrowser test: {total:.0f} s in all ({ready:.0f} s to a ready JupyterLab), {JOBS} at a time")
        yield {"runs": {(r.kind, Path(r.path).stem): r for r in runs}, "plugins": plugins,
               "console_errors": page.console_errors, "log": server.log_text}
    finally:
        if page:
            page.close()
        server.stop()


def _code(run: Run):
    return [c for c in run.cells if c["type"] == "code"]


def _graded(cell) -> bool:
    return bool(cell["nbgrader"] and cell["nbgrader"].get("grade"))


def _common(run: Run, kind: str, assignment: str) -> None:
    assert not run.error, run.error
    assert run.result.get("ok"), f"{kind} {assignment} did not run to the end: {run.result}"
    nb = notebooks.read(REPO / run.path) if (REPO / run.path).exists() else None
    if nb is not None:
        assert len(run.cells) == len(nb.cells), "the page shows a different number of cells"
    for cell in run.cells:
        if cell["type"] == "markdown":
            assert cell["rendered"], f"markdown cell {cell['index']} is not rendered"
        elif cell["type"] == "code":
            assert cell["executionCount"] is not None, f"cell {cell['index']} never ran"
            assert cell["imagesDecoded"] == cell["images"], f"cell {cell['index']}: an image did not render"
            for out in cell["outputs"]:
                as_text = FIGURE_AS_TEXT.fullmatch(out["text"].strip())
                assert not as_text or "image/png" in out["mimes"], (
                    f"cell {cell['index']}: a figure shown as text, not as an image")
    if "plt." in "".join(c["source"] for c in _code(run)):
        assert sum(c["images"] for c in _code(run)) >= 1, "the notebook plots, but no image was rendered"
    assert run.screenshots and run.screenshots[0].exists()


def test_the_learner_jupyterlab_has_nbgrader_learner_tools_only(lab):
    plugins = {pid: (registered, active) for pid, registered, active in lab["plugins"]}
    for pid in LEARNER_PLUGINS:
        assert plugins[pid] == (True, True), f"{pid}: registered and active expected, got {plugins[pid]}"
    for pid in INSTRUCTOR_PLUGINS:
        assert plugins[pid] == (False, False), f"{pid} is available to learners"


@pytest.mark.parametrize("assignment", RELEASES)
def test_released_notebook_in_jupyterlab(lab, assignment):
    run = lab["runs"][("release", assignment)]
    _common(run, "released notebook", assignment)
    assert run.toolbar.get("validate"), "nbgrader's Validate button is missing from the toolbar"
    assert run.toolbar.get("indicator") == "idle", f"kernel not ready: {run.toolbar}"
    graded = [c for c in _code(run) if _graded(c)]
    assert graded, "no graded cells"
    for cell in _code(run):
        errors = [o for o in cell["outputs"] if o["output_type"] == "error"]
        stderr = [o["text"] for o in cell["outputs"]
                  if o["output_type"] == "stream" and o["name"] == "stderr"]
        if _graded(cell):
            assert [e["ename"] for e in errors] == ["CheckFailed"], (cell["index"], cell["outputs"])
            shown = "\n".join(cell["renderedErrors"]).strip()
            assert shown.startswith("CheckFailed: ✗") and NOT_IMPLEMENTED in shown, shown
            assert "Traceback" not in shown and "File \"" not in shown and "primer/" not in shown, shown
            assert len(shown.splitlines()) <= 3, f"a short message, not a traceback:\n{shown}"
        else:
            assert not errors, (f"cell {cell['index']} (not graded) failed:\n"
                                + "\n".join(cell["renderedErrors"]) + f"\n--- its source:\n{cell['source']}")
        assert not stderr, f"cell {cell['index']} wrote to stderr: {stderr}"
    assert run.result["errors"] == [c["index"] for c in graded], (
        "after one Run All, only the graded cells of exercises not done yet show an error")


@pytest.mark.skipif(COMPLETED is None, reason="no assignment has both a release and a solution")
def test_completed_notebook_runs_cleanly_in_jupyterlab(lab):
    run = lab["runs"][("completed", COMPLETED)]
    _common(run, "completed notebook", COMPLETED)
    assert run.result["errors"] == []
    for cell in _code(run):
        assert not cell["renderedErrors"], f"cell {cell['index']} shows: {cell['renderedErrors']}"
        kinds = {(o["output_type"], o["name"]) for o in cell["outputs"]}
        assert ("error", None) not in kinds, (cell["index"], cell["outputs"])
        assert ("stream", "stderr") not in kinds, (cell["index"], cell["outputs"])
        if _graded(cell):
            assert any("✓" in o["text"] for o in cell["outputs"]), f"graded cell {cell['index']} did not pass"


@pytest.mark.skipif(COMPLETED is None, reason="no assignment has both a release and a solution")
def test_completed_notebook_passes_and_makes_the_readme_picture(lab):
    run = lab["runs"][("completed", COMPLETED)]
    _common(run, "completed notebook", COMPLETED)  # (and every cell passes: the test above)
    assert run.readme, "no passed check followed by a plot to photograph"
    assert run.readme.exists() and run.readme.stat().st_size > 20_000


def test_the_page_raised_no_javascript_errors(lab):
    assert not lab["console_errors"], lab["console_errors"]
