"""Assignment 06 under autograde: a deadlocked, a raising and a crashing exercise each cost only
their own points, end within their deadline, and leave the other exercises' tests working.

The student's notebook (set-up cell, learner cells, graded cells with the hidden tests) runs in a
Jupyter kernel the way `nbgrader autograde` runs it (nbclient, 120 s per cell, interrupt on
timeout, errors allowed), and each graded cell is scored by nbgrader's own `determine_grade`.
The demonstrations are left out: tests/test_nbgrader_e2e.py runs the whole notebook.
"""

from __future__ import annotations

import inspect
import json
import time

import nbformat
from nbclient import NotebookClient
from nbgrader.utils import determine_grade

from primer import notebooks
from tests.helpers import solution_notebook
from tests.mutants.a06_data_parallel import ring_allreduce as ring_mutants

ASSIGNMENT = "06_data_parallel"

_MUTANT = inspect.getsource(ring_mutants.ring_with_blocking_sends)  # from its decorator on
DEADLOCK = _MUTANT[_MUTANT.index("def "):].replace("def ring_with_blocking_sends", "def ring_allreduce")
RAISES = '''
def allreduce_gradients(model):
    if dist.get_rank() == 1:
        raise ValueError("rank 1 gives up")
    for p in model.parameters():
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.AVG)
'''
CRASHES = '''
def broadcast_parameters(model, src=0):
    if dist.get_rank() == 1:
        os._exit(1)
    for t in model.state_dict().values():
        dist.broadcast(t, src)
'''
BROKEN = {"ring_allreduce": (DEADLOCK, "deadlock"),
          "allreduce_gradients": (RAISES, "rank 1 of "),
          "broadcast_parameters": (CRASHES, "died")}


def _student_notebook():
    source = notebooks.read(solution_notebook(ASSIGNMENT))
    setup = next(c for c in source.cells if c.cell_type == "code")
    cells = [setup]
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not (meta.get("solution") or meta.get("grade")):
            continue
        cell = nbformat.from_dict(json.loads(json.dumps(cell)))
        for exercise, (code, _) in BROKEN.items():
            if meta.get("solution") and f"def {exercise}(" in cell.source:
                cell.source = code
        cells.append(cell)
    return nbformat.v4.new_notebook(cells=cells, metadata=source.metadata)


def test_deadlock_raise_and_crash_cost_only_their_own_points(tmp_path, monkeypatch):
    monkeypatch.setenv("PRIMER_GRADING_SEED", "777")  # the kernel inherits it, as under nbgrader
    nb = _student_notebook()
    client = NotebookClient(nb, timeout=120, interrupt_on_timeout=True, allow_errors=True,
                            kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    client.execute()
    elapsed = time.monotonic() - start

    for cell in nb.cells:
        stderr = [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        assert not stderr, f"stderr in {cell.source[:60]!r}: {stderr}"
        if not cell.metadata.get("nbgrader", {}).get("grade"):
            assert not any(o.output_type == "error" for o in cell.outputs), cell.source[:200]
            continue
        score, max_score = determine_grade(cell)
        (key,) = {k for k in notebooks.CHECK_CALL.findall(cell.source)}
        exercise = key.split(".")[0]
        errors = "\n".join(f"{o.ename}: {o.evalue}" for o in cell.outputs if o.output_type == "error")
        if exercise in BROKEN:
            assert score == 0, f"{key} kept its points"
            assert "CheckFailed" in errors and BROKEN[exercise][1] in errors, errors
        else:
            assert score == max_score, f"{key} lost its points: {errors}"
    # Each deadlocking check ends at the process group's timeout (LAUNCH_TIMEOUT = 4 s):
    # 3 checks, visible and hidden. Everything else takes seconds.
    assert elapsed < 100, f"the graded cells took {elapsed:.0f} s"
