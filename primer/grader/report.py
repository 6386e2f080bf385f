"""The class report after a grading run, and the grades export that tells "not submitted" from 0.

`write_report(course, assignment)` reads the class run's done records and verifications
(autograder/verified/<A>/) and writes autograder/class-report/<A>/: report.md (per exercise:
passed / failed / not started, the most frequent named mistakes, the submissions that could not
be graded), scores.csv and scores.png. It returns the printed summary.

`StatusCsvExportPlugin` is nbgrader's CSV export plus a `status` column:
    nbgrader export --ExportApp.plugin_class=primer.grader.report.StatusCsvExportPlugin
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from nbgrader.plugins.export import CsvExportPlugin

from primer.grader.submissions import STATE_SUFFIX, Outcome, atomic_write
from primer.grader.verify import Verification

NOT_STARTED = "is not implemented yet"  # the message of a stub the learner never replaced
TOP_MISTAKES = 5


@dataclass
class ExerciseCounts:
    passed: int = 0
    failed: int = 0
    not_started: int = 0
    mistakes: Counter = field(default_factory=Counter)  # hint text -> number of students


def class_outcomes(course: Path, assignment: str) -> dict[str, Outcome]:
    """Every student's last outcome for this assignment (the done records)."""
    out = {}
    for path in sorted((course / "autograder" / "verified" / assignment).glob(f"*{STATE_SUFFIX}")):
        try:
            outcome = Outcome(**json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            continue  # unreadable: as if never graded (the next run regrades)
        out[outcome.student] = outcome
    return out


def exercise_status(cells) -> str:
    if all(c.passed for c in cells):
        return "passed"
    failing = [c for c in cells if not c.passed]
    return "not started" if all(NOT_STARTED in c.message for c in failing) else "failed"


def hints(message: str) -> list[str]:
    return [line.split("Hint:", 1)[1].strip() for line in message.splitlines() if "Hint:" in line]


def exercise_counts(course: Path, assignment: str, outcomes: dict[str, Outcome]) -> dict[str, ExerciseCounts]:
    counts: dict[str, ExerciseCounts] = {}
    for outcome in outcomes.values():
        if outcome.status != "graded":
            continue
        verification = _verification(course, assignment, outcome.student)
        if verification is None:
            continue
        by_exercise: dict[str, list] = {}
        for cell in verification.cells:
            by_exercise.setdefault(cell.exercise, []).append(cell)
        for exercise, cells in by_exercise.items():
            entry = counts.setdefault(exercise, ExerciseCounts())
            status = exercise_status(cells)
            setattr(entry, status.replace(" ", "_"), getattr(entry, status.replace(" ", "_")) + 1)
            # a mistake counts once per student, however many cells name it
            entry.mistakes.update(set(h for c in cells if not c.passed for h in hints(c.message)))
    return counts


def _verification(course: Path, assignment: str, student: str) -> Verification | None:
    from primer.grader.nbgrader_plugin import result_path

    try:
        data = json.loads(result_path(course / "autograder", assignment, student).read_text())
        return Verification.from_json(data["verification"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_report(course: Path, assignment: str, extra: list[Outcome] = ()) -> str:
    """Write the report files and return the summary to print. `extra`: more submissions that
    could not be graded (folders for an assignment that does not exist)."""
    outcomes = class_outcomes(course, assignment)
    folder = course / "autograder" / "class-report" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    counts = exercise_counts(course, assignment, outcomes)
    ungradable = [o for o in outcomes.values() if o.status != "graded"] + list(extra)
    graded = [o for o in outcomes.values() if o.status == "graded"]

    lines = [f"# Class report: {assignment}", "",
             f"{len(graded)} graded, {len(ungradable)} could not be graded.", "",
             "| exercise | passed | failed | not started |", "|---|---:|---:|---:|"]
    lines += [f"| {name} | {c.passed} | {c.failed} | {c.not_started} |" for name, c in counts.items()]
    lines += ["", "## Most frequent mistakes", ""]
    for name, c in counts.items():
        for hint, n in c.mistakes.most_common(TOP_MISTAKES):
            lines.append(f"- {name}: {n} × {hint}")
    if not any(c.mistakes for c in counts.values()):
        lines.append("(none named)")
    lines += ["", "## Could not be graded", ""]
    lines += [f"- {o.student}: {o.reason}" for o in sorted(ungradable, key=lambda o: o.student)] or ["(none)"]
    text = "\n".join(lines) + "\n"
    atomic_write(folder / "report.md", text)
    atomic_write(folder / "scores.csv", _scores_csv(outcomes))
    _plot(folder / "scores.png", assignment, graded)
    return text + f"\nReport: {folder}/ (report.md, scores.csv, scores.png)"


def _scores_csv(outcomes: dict[str, Outcome]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["student", "score", "max", "status"])
    for o in sorted(outcomes.values(), key=lambda o: o.student):
        status = "graded" if o.status == "graded" else f"could not be graded ({o.reason})"
        writer.writerow([o.student, f"{o.score:g}", f"{o.max_score:g}", status])
    return buf.getvalue()


def _plot(path: Path, assignment: str, graded: list[Outcome]) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a grading server
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    top = max((o.max_score for o in graded), default=1) or 1
    ax.hist([o.score for o in graded], bins=min(20, int(top) + 1), range=(0, top))
    ax.set(xlabel="score", ylabel="students", title=f"{assignment}: {len(graded)} graded")
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)


def submission_status(course: Path, assignment: str, student: str, outcomes: dict[str, Outcome]) -> str:
    outcome = outcomes.get(student)
    if outcome is not None and outcome.status != "graded":
        return f"could not be graded ({outcome.reason})"
    if (course / "submitted" / student / assignment).is_dir() or outcome is not None:
        return "submitted"
    return "not submitted"


class StatusCsvExportPlugin(CsvExportPlugin):
    """nbgrader's grades.csv, plus `status`: submitted / not submitted / could not be graded (why).
    (nbgrader alone writes 0 for a student who submitted nothing.)"""

    def export(self, gradebook) -> None:
        from nbgrader.coursedir import CourseDirectory

        super().export(gradebook)
        dest = Path(self.to or "grades.csv")
        course = Path(CourseDirectory(config=self.config).root)
        with open(dest, newline="") as f:
            rows = list(csv.DictReader(f))
        outcomes = {}
        for row in rows:
            if row["assignment"] not in outcomes:
                outcomes[row["assignment"]] = class_outcomes(course, row["assignment"])
            row["status"] = submission_status(course, row["assignment"], row["student_id"],
                                              outcomes[row["assignment"]])
        buf = io.StringIO()
        fields = list(rows[0]) if rows else ["assignment", "student_id", "score", "max_score", "status"]
        writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(dest, buf.getvalue())
