"""Verify one submitted notebook: its code runs in the sandbox, its score is computed here.

The grader's process never runs learner code. It reads which checks each test cell makes (from
the test cells' source, which nbgrader has restored from the gradebook), sends the learner's
cells and the grading cases' seeds to the sandbox (primer.grader.harvest), reads back what the
learner's objects returned, as data only, and judges it with the same specs, references and hints
as the notebook's `check` (primer.grading.judge), computed here.
"""

from __future__ import annotations

import ast
import contextlib
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from primer import rules
from primer.grader.sandbox import Sandbox
from primer.grader.workdir import read_learner_file
from primer.grader.zygote import WarmSandbox
from primer.grading import VISIBLE_SEED, Outcome, Result, get_check, judge
from primer.notebooks import is_test_cell
from primer.outputs import DataError, loads

MAX_RESULT_BYTES = 256 * 2**20
MAX_SUMMARY_BYTES = 4 * 2**20
MAX_EXTRA_FILE_BYTES = 8 * 2**20  # files beside the notebook that are copied into the sandbox


@dataclass(frozen=True)
class CheckCall:
    key: str  # "cross_entropy.stable"
    name: str  # the object the learner defines: "cross_entropy"
    hidden: bool

    @property
    def file(self) -> str:
        return f"{self.key}@{'hidden' if self.hidden else 'visible'}"


@dataclass
class TestCell:
    grade_id: str
    points: float
    calls: list[CheckCall]
    claimed: str = "not run"  # what the submitted notebook's saved output showed: passed / failed / not run


@dataclass
class CellVerdict:
    grade_id: str
    exercise: str
    points: float
    passed: bool
    message: str  # one line per check
    claimed: str

    @property
    def disagrees(self) -> bool:
        """The notebook showed this test passing and the verified run failed it (or the reverse)."""
        return self.claimed in ("passed", "failed") and (self.claimed == "passed") != self.passed


@dataclass
class Verification:
    cells: list[CellVerdict] = field(default_factory=list)
    problem: str = ""  # what stopped the whole notebook from being verified, if anything
    notes: list[str] = field(default_factory=list)  # per-exercise remarks (defined twice, ...)
    seconds: float = 0.0
    sandbox_cpu_seconds: float = 0.0

    @property
    def score(self) -> float:
        return sum(c.points for c in self.cells if c.passed)

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.cells)

    def to_json(self) -> dict:
        return {"cells": [vars(c) for c in self.cells], "problem": self.problem, "notes": self.notes,
                "seconds": self.seconds, "sandbox_cpu_seconds": self.sandbox_cpu_seconds}

    @classmethod
    def from_json(cls, data: dict) -> Verification:
        return cls([CellVerdict(**c) for c in data["cells"]], data["problem"], data["notes"],
                   data["seconds"], data["sandbox_cpu_seconds"])


# --------------------------------------------------------------------------- reading the notebook

def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def check_calls(source: str) -> list[CheckCall]:
    """The `check("key", name[, hidden=True])` calls of a test cell, in order."""
    calls = []
    for node in ast.walk(ast.parse(source)):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "check"
                and len(node.args) >= 2 and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str) and isinstance(node.args[1], ast.Name)):
            hidden = any(k.arg == "hidden" and isinstance(k.value, ast.Constant) and k.value.value is True
                         for k in node.keywords)
            calls.append(CheckCall(node.args[0].value, node.args[1].id, hidden))
    return calls


def claimed_outcome(cell) -> str:
    """What the learner's own run of a test cell showed, from its saved outputs."""
    outputs = cell.get("outputs") or []
    if any(o.get("output_type") == "error" for o in outputs):
        return "failed"
    if any("✓" in "".join(o.get("text", "")) for o in outputs if o.get("output_type") == "stream"):
        return "passed"
    return "not run"


def test_cells(nb, submitted_nb=None) -> list[TestCell]:
    claims = {}
    for cell in (submitted_nb or {"cells": []})["cells"]:
        if is_test_cell(cell):
            claims[_nbgrader(cell).get("grade_id")] = claimed_outcome(cell)
    out = []
    for cell in nb["cells"]:
        if is_test_cell(cell):
            meta = _nbgrader(cell)
            out.append(TestCell(meta["grade_id"], float(meta.get("points", 0)), check_calls(cell["source"]),
                                claims.get(meta["grade_id"], "not run")))
    return out


def learner_cells(nb, release_nb) -> list[str]:
    """The cells to run: the set-up cell, then every code cell that is neither a test cell nor one
    of the release's demonstrations (those are skipped: grading needs definitions, not plots).
    Cells the learner added or changed run, so a helper defined in a cell of their own works."""
    return [source for _, source in _numbered_learner_cells(nb, release_nb)]


def _numbered_learner_cells(nb, release_nb) -> list[tuple[int, str]]:
    """learner_cells, each with its position in the notebook (1 = the notebook's first cell)."""
    release_code = [c for c in release_nb["cells"] if c.get("cell_type") == "code"]
    demonstrations = {c["source"].strip() for c in release_code[1:]
                      if not _nbgrader(c).get("solution") and not is_test_cell(c)}
    code = [(i + 1, c) for i, c in enumerate(nb["cells"]) if c.get("cell_type") == "code"]
    setup = [(code[0][0] if code else 1, release_code[0]["source"] if release_code else "")]
    return setup + [(n, c["source"]) for n, c in code[1:] if not is_test_cell(c)
                    and c["source"].strip() not in demonstrations and c["source"].strip()]


def expected_kinds(release_nb) -> dict[str, str]:
    """What the released notebook asks for: `def name` (a function) or `class Name` (a class)."""
    kinds = {}
    for cell in release_nb["cells"]:
        if cell.get("cell_type") == "code" and _nbgrader(cell).get("solution"):
            with contextlib.suppress(SyntaxError):
                for node in ast.parse(cell["source"]).body:
                    if isinstance(node, ast.ClassDef):
                        kinds[node.name] = "class"
                    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        kinds[node.name] = "function"
    return kinds


def _defining_cells(sources: list[str], name: str) -> list[int]:
    found = []
    for index, source in enumerate(sources):
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in tree.body:
            targets = [node.name] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                else [t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            if name in targets:
                found.append(index)
                break
    return found


# --------------------------------------------------------------------------- running

def _job(cells: list[str], tests: list[TestCell], seed: int, cell_seconds: float,
         check_seconds: float) -> dict:
    exercises: dict[str, list[dict]] = {}
    for cell in tests:
        for call in cell.calls:
            checks = exercises.setdefault(call.name, [])
            entry = {"key": call.key, "seed": seed if call.hidden else VISIBLE_SEED, "file": call.file}
            if entry not in checks:
                checks.append(entry)
    return {"cells": [{"source": s} for s in cells],
            "exercises": [{"name": n, "checks": c} for n, c in exercises.items()],
            "cell_seconds": cell_seconds, "check_seconds": check_seconds}


def _copy_notebook_folder(folder: Path | None, dest: Path) -> None:
    """Files beside the notebook (06's train_ddp.py), as the notebook's own imports expect."""
    dest.mkdir(parents=True)
    if folder is None or not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb" \
                and path.stat().st_size <= MAX_EXTRA_FILE_BYTES:
            shutil.copyfile(path, dest / path.name)


def _read_summary(out: Path) -> dict | None:
    raw = read_learner_file(out / "summary.json", MAX_SUMMARY_BYTES)
    try:
        data = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) and isinstance(data.get("cells"), dict) \
        and isinstance(data.get("exercises"), dict) else None


def _read_outcomes(path: Path) -> list[Outcome] | str:
    """The outcomes the sandbox wrote for one check, or why they cannot be used."""
    raw = read_learner_file(path, MAX_RESULT_BYTES)
    if raw is None:
        return "no result (or a result too large to grade)"
    try:
        records = loads(raw)
    except DataError as exc:
        return f"its result could not be read ({exc})"
    if type(records) is not list:
        return "its result could not be read"
    outcomes = []
    for r in records:
        if not (type(r) is dict and type(r.get("error")) is str and type(r.get("not_implemented")) is bool
                and type(r.get("notes")) is list and all(type(n) is str for n in r["notes"])):
            return "its result could not be read"
        outcomes.append(Outcome(r.get("output"), r["error"][:2000], r["not_implemented"],
                                tuple(n[:300] for n in r["notes"][:3])))
    return outcomes


def verify(nb, release_nb, *, seed: int, sandbox: Sandbox | WarmSandbox, notebook_dir: Path | None = None,
           uid: int | None = None, submitted_nb=None, cell_seconds: float = 120.0,
           check_seconds: float = 120.0, preload: tuple[str, ...] = ()) -> Verification:
    """Verify one notebook. `nb`: the notebook to grade (locked cells restored by nbgrader);
    `release_nb`: the released notebook (which cells are demonstrations); `submitted_nb`: the
    notebook as submitted, outputs included (what the learner's own run showed); `preload`: the
    modules a one-shot sandbox imports first (a WarmSandbox has its own)."""
    started = time.monotonic()
    tests = test_cells(nb, submitted_nb)
    cells = learner_cells(nb, release_nb)
    kinds = expected_kinds(release_nb)
    verification = Verification()
    warm = isinstance(sandbox, WarmSandbox)
    with sandbox.workspace() if warm else tempfile.TemporaryDirectory(prefix="primer-verify-") as tmp:
        work = Path(tmp)
        (work / "job.json").write_text(json.dumps(_job(cells, tests, seed, cell_seconds, check_seconds)))
        _copy_notebook_folder(notebook_dir, work / "notebook")
        if warm:  # a fresh child of the worker's zygote (the same isolation, without the start-up)
            run = sandbox.run(work)
        else:
            run = sandbox.run([sys.executable, "-m", "primer.grader.harvest", str(work)], work, uid=uid,
                              env={"MPLBACKEND": "Agg", "PRIMER_PRELOAD": ",".join(preload)})
        verification.sandbox_cpu_seconds = run.cpu_seconds
        summary = _read_summary(work / "out")
        if summary is None:
            why = run.message or (f"exit code {run.returncode}" if run.returncode is not None else "stopped")
            last = (run.stderr.strip().splitlines() or [""])[-1][:300]
            verification.problem = f"the notebook could not be verified: {why}" + (f" ({last})" * bool(last))
        for cell in tests:
            verdict = _judge_cell(cell, seed, cells, kinds, summary, work / "out", verification.problem)
            verification.cells.append(verdict)
    names = list(dict.fromkeys(c.name for t in tests for c in t.calls))
    for name in names:
        where = _defining_cells(cells, name)
        if len(where) > 1:
            verification.notes.append(f"`{name}` is defined in {len(where)} cells; the last one was graded")
    if summary is not None:
        verification.notes += _cell_problems(_numbered_learner_cells(nb, release_nb), summary, names)
    verification.seconds = time.monotonic() - started
    return verification


def _cell_problems(numbered: list[tuple[int, str]], summary: dict, names: list[str]) -> list[str]:
    """A sentence per cell that raised, crashed or hit a limit, naming the exercises it defines."""
    notes = []
    for index, (number, source) in enumerate(numbered):
        error = summary["cells"].get(str(index), "")
        if not isinstance(error, str) or not error:
            continue
        defines = [f"`{n}`" for n in names if _defining_cells([source], n)]
        what = f"cell {number} (which defines {', '.join(defines)})" if defines else f"cell {number}"
        notes.append(f"your {what} did not run to its end: {error[:500]}")
    return notes


def _judge_cell(cell: TestCell, seed: int, cells: list[str], kinds: dict, summary: dict | None,
                out: Path, problem: str) -> CellVerdict:
    exercise = cell.calls[0].name if cell.calls else cell.grade_id
    lines, passed = [], bool(cell.calls)
    for call in cell.calls:
        result = _judge_call(call, seed if call.hidden else VISIBLE_SEED, cells, kinds.get(call.name),
                             summary, out, problem)
        passed &= result.passed
        if call.hidden and result.message in lines:
            continue  # the same sentence twice ("not implemented yet") says nothing more
        lines.append(result.message if not call.hidden else
                     result.message.replace(f"{call.key}:", f"{call.key} (your fresh inputs):", 1)
                     .replace(f"{call.key},", f"{call.key} (your fresh inputs),", 1))
    if not cell.calls:
        lines.append(f"✗ {cell.grade_id}: this test cell makes no check; ask your instructor")
    return CellVerdict(cell.grade_id, exercise, cell.points, passed, "\n".join(lines), cell.claimed)


def _judge_call(call: CheckCall, seed: int, cells: list[str], expected_kind: str | None,
                summary: dict | None, out: Path, problem: str) -> Result:
    spec = get_check(call.key)
    fail = lambda why: Result(call.key, False, f"✗ {call.key}: {why}")  # noqa: E731
    if summary is None:
        return fail(problem)
    record = summary["exercises"].get(call.name)
    if not isinstance(record, dict):
        return fail(f"`{call.name}` was not verified (the grading process stopped before it)")
    if record.get("crashed"):
        return fail(f"verifying `{call.name}` stopped: {record['crashed']}")
    if not record.get("defined"):
        return fail(_undefined(call.name, cells, summary))
    kind = str(record.get("kind"))
    if kind not in ("class", "function"):
        return fail(f"`{call.name}` should be a {expected_kind or 'function or class'}, but your notebook "
                    f"makes it a {kind[:80]}")
    if expected_kind and kind != expected_kind:
        keyword = "class" if expected_kind == "class" else "def"
        return fail(f"`{call.name}` should be a {expected_kind} (`{keyword} {call.name}`), but your "
                    f"notebook defines a {kind}")
    called = rules.calls_in(str(out / "forbidden.log"), call.name)
    if called:
        return fail(rules.message(call.name, called))
    lost = record.get("lost") or {}
    if isinstance(lost, dict) and call.file in lost:
        return fail(f"your code stopped the check: {lost[call.file]}")
    outcomes = _read_outcomes(out / f"{call.file}.pt")
    if isinstance(outcomes, str):
        return fail(outcomes)
    missing = Outcome(error="no result for this case")
    return judge(spec, seed, lambda i, case: outcomes[i] if i < len(outcomes) else missing,
                 reuse=seed == VISIBLE_SEED)


def _undefined(name: str, cells: list[str], summary: dict) -> str:
    where = _defining_cells(cells, name)
    if not where:
        return f"`{name}` is not defined: is its cell missing or renamed?"
    error = summary["cells"].get(str(where[-1]), "")
    if error:
        return f"`{name}` is not defined: the cell that defines it failed: {error}"
    return f"`{name}` is not defined when the cells have run (was it deleted by a later cell?)"
