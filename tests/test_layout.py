"""The repository stays readable: modules a maintainer can hold in mind, one spec package and one
mutants package per assignment with the same name."""

from __future__ import annotations

from tests.helpers import ASSIGNMENTS, REPO, spec_module

MAX_LINES = 410  # "about 400": a module past this is split (shared helpers in a named module)


def _long_modules(folder):
    lengths = {path: len(path.read_text(encoding="utf-8").splitlines()) for path in folder.rglob("*.py")}
    return {str(path.relative_to(REPO)): n for path, n in lengths.items() if n > MAX_LINES}


def test_no_module_of_the_course_package_or_the_mutants_is_too_long():
    too_long = {**_long_modules(REPO / "primer"), **_long_modules(REPO / "tests" / "mutants")}
    assert not too_long, f"split these (at most {MAX_LINES} lines each): {too_long}"


def test_every_assignment_has_a_spec_and_a_mutants_module_of_the_same_name():
    for assignment in ASSIGNMENTS:
        name = spec_module(assignment)
        for folder in (REPO / "primer" / "exercises", REPO / "tests" / "mutants"):
            assert (folder / f"{name}.py").exists() or (folder / name / "__init__.py").exists(), \
                f"no {name} in {folder.relative_to(REPO)}"
