"""Benchmark: plain `nbgrader autograde` against this course's class run, on the same synthetic class.

    python autograder/bench_grading.py ASSIGNMENT [-n N] [--keep]
    make bench-grading ASSIGNMENT=01_parameterized_functions N=8

Makes a temporary course with N synthetic submissions built from solutions/ and the released
notebook, cycling through: complete (the solution), blank (the release), partial (half the
solution cells replaced by the release's stubs), wrong (one exercise replaced by a definition
that returns None) and broken (truncated JSON). Then grades identical copies of it three ways and
prints wall time, seconds per student, the ratio to plain nbgrader, and peak memory:

- plain: `nbgrader autograde` with nbgrader's own Execute preprocessor (the kernel, unsandboxed:
  the old way), then `nbgrader generate_feedback`;
- this course's `autograder/grade.py` (sandboxed, verified, feedback included) with 1 worker and
  with 2 workers.

It asserts nothing about speed: it measures. It does check that 1 and 2 workers give the same scores.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
KINDS = ("complete", "blank", "partial", "wrong", "broken")
# nbgrader's own default autograde preprocessors (nbgrader/converters/autograde.py)
PLAIN_PREPROCESSORS = """
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, Execute, IgnorePattern,
                                    LimitOutput, SaveAutoGrades)
from nbconvert.preprocessors import ClearMetadataPreprocessor
c.Autograde.autograde_preprocessors = [Execute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.Execute.timeout = 120
"""


def env() -> dict:
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def make_course(root: Path, assignment: str) -> Path:
    shutil.copytree(REPO / "solutions" / assignment, root / "solutions" / assignment)
    (root / "autograder").mkdir(parents=True)
    for name in ("nbgrader_config.py", "grade.py"):
        shutil.copy(HERE / name, root / "autograder" / name)
    shutil.copytree(HERE / "templates", root / "autograder" / "templates")
    subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", assignment, "--force"],
                   cwd=root / "autograder", env=env(), check=True, capture_output=True)
    from primer.grader.secret import course_secret

    course_secret(root / "autograder")  # one secret for every copy: the same hidden cases
    return root


def synthetic(kind: str, solution: dict, release: dict, text: str) -> str:
    """The notebook text of one synthetic submission."""
    if kind == "broken":
        return text[: len(text) // 2]
    nb = json.loads(json.dumps(solution if kind != "blank" else release))
    stubs = {c["metadata"]["nbgrader"]["grade_id"]: c["source"] for c in release["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("solution")}
    answers = [c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("solution")
               and c["metadata"]["nbgrader"]["grade_id"] in stubs]
    if kind == "partial":
        for cell in answers[::2]:
            cell["source"] = stubs[cell["metadata"]["nbgrader"]["grade_id"]]
    elif kind == "wrong":
        for cell in answers:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            match = re.search(r"^(def|class) (\w+)", source, re.M)
            if match:
                wrong = (f"def {match[2]}(*args, **kwargs):\n    return None" if match[1] == "def"
                         else f"class {match[2]}:\n    pass")
                cell["source"] = f"{source}\n\n\n{wrong}  # wrong on purpose\n"
                break
    return json.dumps(nb, indent=1)


def add_class(course: Path, assignment: str, n: int) -> list[str]:
    solution = json.loads((course / "solutions" / assignment / f"{assignment}.ipynb").read_text())
    release_path = course / "notebooks" / assignment / f"{assignment}.ipynb"
    release = json.loads(release_path.read_text())
    text = (course / "solutions" / assignment / f"{assignment}.ipynb").read_text()
    students = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        student = f"s{i:03d}_{kind}"
        folder = course / "submitted" / student / assignment
        folder.mkdir(parents=True)
        (folder / f"{assignment}.ipynb").write_text(synthetic(kind, solution, release, text))
        students.append(student)
    return students


class PeakMemory:
    """Peak resident memory, sampled, of the processes under `pid`: the biggest grading worker
    (with its sandbox or kernel), and the main process. psutil when installed, else getrusage."""

    def __init__(self, pid: int):
        self.pid, self.stop, self.worker_mb, self.main_mb = pid, threading.Event(), 0.0, 0.0
        try:
            import psutil  # noqa: F401
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        except ImportError:
            self.thread = None

    def _sample(self) -> None:
        import psutil

        while not self.stop.is_set():
            try:
                root = psutil.Process(self.pid)
                self.main_mb = max(self.main_mb, root.memory_info().rss / 2**20)
                for child in root.children():  # a worker (or kernel) and everything under it
                    tree = [child, *child.children(recursive=True)]
                    self.worker_mb = max(self.worker_mb, sum(_rss(p) for p in tree) / 2**20)
            except psutil.Error:
                pass
            time.sleep(0.2)

    def done(self) -> None:
        self.stop.set()
        if self.thread is None:  # the largest process waited for so far, in KB (not per worker)
            import resource
            self.worker_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        else:
            self.thread.join()


def _rss(proc) -> int:
    try:
        return proc.memory_info().rss
    except Exception:
        return 0


def timed(cmd: list[str], cwd: Path) -> tuple[float, PeakMemory, subprocess.CompletedProcess]:
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=cwd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    memory = PeakMemory(proc.pid)
    out, err = proc.communicate()
    memory.done()
    return time.monotonic() - started, memory, subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def scores(course: Path, assignment: str) -> dict[str, float]:
    from nbgrader.api import Gradebook, MissingEntry

    out = {}
    with Gradebook(f"sqlite:///{course / 'autograder' / 'gradebook.db'}") as gb:
        for student in gb.students:
            try:
                out[student.id] = gb.find_submission(assignment, student.id).score
            except MissingEntry:
                out[student.id] = None
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment")
    parser.add_argument("-n", type=int, default=8, help="synthetic submissions (default 8)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary courses")
    parser.add_argument("--modes", default="plain,1 worker,2 workers",
                        help="which runs, comma-separated (for a large class at scale: '2 workers')")
    args = parser.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-grading-"))
    try:
        base = make_course(tmp / "base", args.assignment)
        students = add_class(base, args.assignment, args.n)
        print(f"{args.n} submissions of {args.assignment}: "
              + ", ".join(f"{k} ×{sum(s.endswith(k) for s in students)}" for k in KINDS), flush=True)
        runs = {}
        for mode in modes:
            course = tmp / mode.replace(" ", "_")
            shutil.copytree(base, course, symlinks=True)
            if mode == "plain":
                with open(course / "autograder" / "nbgrader_config.py", "a") as f:
                    f.write(PLAIN_PREPROCESSORS)
                wall, memory, out = timed([sys.executable, "-m", "nbgrader", "autograde", args.assignment,
                                           "--create"], course / "autograder")
                wall2, _, out2 = timed([sys.executable, "-m", "nbgrader", "generate_feedback",
                                        args.assignment], course / "autograder")
                wall += wall2
            else:
                workers = mode.split()[0]
                wall, memory, out = timed([sys.executable, "autograder/grade.py", args.assignment,
                                           "--workers", workers, "--no-progress"], course)
                if out.returncode != 0:
                    print(out.stdout[-2000:], out.stderr[-2000:], file=sys.stderr)
            runs[mode] = (wall, memory, scores(course, args.assignment))
            print(f"  {mode}: {wall:.1f} s", flush=True)

        plain = runs["plain"][0] if "plain" in runs else float("nan")
        print(f"\n{'mode':12s} {'wall s':>8s} {'s/student':>10s} {'vs plain':>9s} {'peak MB/worker':>15s} "
              f"{'main MB':>8s}")
        for mode, (wall, memory, _) in runs.items():
            print(f"{mode:12s} {wall:8.1f} {wall / args.n:10.2f} {plain / wall:8.2f}× "
                  f"{memory.worker_mb:15.0f} {memory.main_mb:8.0f}")
        print("(plain = nbgrader autograde + generate_feedback, nbgrader's kernel, no sandbox; "
              "peak MB/worker = a worker or kernel with everything under it, sandbox included)")
        both = "1 worker" in runs and "2 workers" in runs
        same = not both or runs["1 worker"][2] == runs["2 workers"][2]
        print(f"\nscores, 1 worker vs 2 workers: {'identical' if same else 'DIFFERENT'}")
        for student in students:
            row = [runs[m][2].get(student) for m in runs]
            print(f"  {student:20s} " + "  ".join(f"{m}: {'-' if s is None else f'{s:g}'}"
                                                for m, s in zip(runs, row)))
        return 0 if same else 1
    finally:
        if args.keep:
            print(f"courses kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
