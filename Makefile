# The course's commands. `make lab` and `make test` set up their own environment (.venv) first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
# nbgrader runs `alembic` from PATH, so the environment's bin/ goes first.
export PATH := $(BIN):$(PATH)
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
UV := uv==0.13.9  # the installer (pip when it cannot be had)

.PHONY: lab test test-exercise setup release autograde feedback grades bench-grading bench-verify progress lint clean assignment-given

## make lab: open the course in JupyterLab (creates .venv on first use)
lab: $(STAMP)
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

## make test: the whole test suite (creates .venv on first use)
# glibc's malloc asks for transparent huge pages: a process's heap (torch's: 85 MB) then takes ~40
# page table entries instead of tens of thousands, which the kernel copies on every fork and frees
# on every exit. 06/07's checks fork thousands of gloo ranks from the test process (and kernels):
# tests/test_exercises.py alone, 156 s -> 134 s. Results are the same; the sandbox does not pass it on.
# Three workers on two cores: while one waits (a kernel or JupyterLab starting, a deadlock's
# timeout), the others use its core. With two, the cores were idle 8% of the run.
test: $(STAMP)
	GLIBC_TUNABLES=$${GLIBC_TUNABLES:+$$GLIBC_TUNABLES:}glibc.malloc.hugetlb=1 $(BIN)/python -m pytest -n 3 --dist loadscope --no-loadscope-reorder --nbval-lax tests solutions $(PYTEST_ARGS)

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-lock.txt tools/uv_options.py
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11) and "Python 3.11 is required, found " + sys.version)'
	$(PYTHON) -m venv $(VENV)
	@# CPU-only torch: PyTorch's CPU index when it answers, else the configured index (tools/torch_index.py).
	@# uv installs the lock in seconds (pip: about 50 s), from the sources pip is configured with
	@# (tools/uv_options.py); pip does it when uv cannot be had or fails.
	@# (grep hides pip's notes about this machine's local wheel folders; pip's own status is kept)
	torch_index="$$($(PYTHON) tools/torch_index.py)"; \
	{ $(BIN)/python -m pip install --quiet $(UV) 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; } \
	  && $(BIN)/uv pip install --quiet --python $(BIN)/python $$($(BIN)/python tools/uv_options.py $$torch_index) \
	     -c requirements-lock.txt -e ".[dev]"; } \
	|| { echo "uv could not install the environment: installing it with pip"; \
	     $(BIN)/python -m pip install --quiet --no-compile $$torch_index -c requirements-lock.txt -e ".[dev]" 2>&1 \
	       | { grep -v "is ignored: it is neither a file nor a directory" || true; }; test $${PIPESTATUS[0]} -eq 0; }
	@# Byte-compiled here on every core (pip compiles one file at a time: 10 s more on 2 cores). The
	@# grading sandbox cannot write .pyc files, so they must exist. Skipped: torch's one file that
	@# only Python 3.12 can compile (pip skips it too).
	$(BIN)/python -m compileall -q -j 0 -x py312_intrinsics $(abspath $(VENV))/lib
	touch $@

## make test-exercise EX=cross_entropy: one exercise's checks, mutants and alternatives, and
## whether the notebooks agree with the specs and the releases with the notebooks (seconds)
test-exercise: $(STAMP)
	@test -n "$(EX)" || { echo "say which exercise: make test-exercise EX=cross_entropy"; exit 2; }
	$(BIN)/python -m pytest tests/test_exercises.py -k "$(EX)" -q $(PYTEST_ARGS)
	$(BIN)/python -m pytest tests/test_testcells.py tests/test_release.py -q $(PYTEST_ARGS) \
	  "tests/test_exercises.py::test_notebook_uses_every_registered_check"

## Instructor workflow (see README): run from the repository root.
# The commands for one assignment refuse to guess which: ASSIGNMENT=01_parameterized_functions
assignment-given:
	@test -n "$(ASSIGNMENT)" || { echo "say which assignment: make $(MAKECMDGOALS) ASSIGNMENT=01_parameterized_functions (see solutions/)"; exit 2; }

# (the solution notebook's test cells and exercise numbers come from the specs: primer/testcells.py)
release: assignment-given $(STAMP)
	$(BIN)/python -m primer.testcells solutions/$(ASSIGNMENT)/$(ASSIGNMENT).ipynb
	cd autograder && $(BIN)/nbgrader generate_assignment --force $(ASSIGNMENT)

# make autograde ASSIGNMENT=... [WORKERS=N] [STUDENT=id] [FORCE=1]: grades, feedback, class report
autograde: assignment-given $(STAMP)
	$(BIN)/python autograder/grade.py $(ASSIGNMENT) $(if $(WORKERS),--workers $(WORKERS)) \
	  $(foreach s,$(STUDENT),--student $(s)) $(if $(FORCE),--force)

# (make autograde writes feedback as it grades; this regenerates all of it)
feedback: assignment-given $(STAMP)
	cd autograder && $(BIN)/nbgrader generate_feedback --force $(ASSIGNMENT)

# grades.csv, with a status column: submitted / not submitted / could not be graded (why)
grades: $(STAMP)
	cd autograder && $(BIN)/nbgrader export --to ../grades.csv \
	  --ExportApp.plugin_class=primer.grader.report.StatusCsvExportPlugin

# make bench-grading ASSIGNMENT=... N=8: plain nbgrader vs the class run, on a synthetic class
bench-grading: assignment-given $(STAMP)
	$(BIN)/python autograder/bench_grading.py $(ASSIGNMENT) -n $(or $(N),8)

# make bench-verify [WRONG=1]: per assignment, the CPU verifying a notebook costs on top of executing it
bench-verify: $(STAMP)
	$(BIN)/python autograder/bench_verify.py $(if $(WRONG),--wrong)

progress: $(STAMP)
	$(BIN)/python -m primer.progress notebooks

lint: $(STAMP)
	$(BIN)/ruff check primer tests autograder solutions

clean:
	rm -rf $(VENV)
