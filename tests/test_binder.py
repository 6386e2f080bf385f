"""Binder's configuration, checked without Docker.

`jupyter-repo2docker --no-build --debug .` prints the Dockerfile Binder would build: it must use
binder/environment.yml with Python 3.11 and run binder/postBuild. repo2docker does not look inside
postBuild, nor at the package list beyond the YAML syntax, so this file also checks what it does
not: postBuild's shell syntax, that the notebooks import nothing Binder would lack, and what the
student-facing part of postBuild leaves enabled, by running it in an isolated Jupyter prefix.
(That every package is pinned and agrees with the pip pins is tests/test_environment.py's job.)
"""

from __future__ import annotations

import ast
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from primer import notebooks
from tests.helpers import REPO
from tests.learner_env import POSTBUILD, make_prefix, run_student_block
from tests.test_environment import CONDA_TO_PIP, conda_pins

BINDER = REPO / "binder"
BIN = Path(sys.executable).parent
LEARNER_PLUGINS = ["@jupyter/nbgrader:assignment-list", "@jupyter/nbgrader:validate-assignment"]
INSTRUCTOR_PLUGINS = ["@jupyter/nbgrader:formgrader", "@jupyter/nbgrader:create-assignment",
                      "@jupyter/nbgrader:course-list"]
LEARNER_SERVER = ["nbgrader.server_extensions.assignment_list",
                  "nbgrader.server_extensions.validate_assignment"]
INSTRUCTOR_SERVER = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]


# --------------------------------------------------------------------------- what repo2docker builds

@pytest.fixture(scope="module")
def dockerfile(tmp_path_factory) -> tuple[str, str]:
    """(Dockerfile, log) as repo2docker would build them for this repository."""
    exe = BIN / "jupyter-repo2docker"
    assert exe.exists(), "jupyter-repo2docker is missing: run `make setup` (it is a dev dependency)"
    out = subprocess.run([str(exe), "--no-build", "--debug", str(REPO)], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path_factory.mktemp("r2d"))
    assert out.returncode == 0, out.stderr
    return out.stdout, out.stderr


def test_repo2docker_uses_binder_environment_yml(dockerfile):
    text, _ = dockerfile
    assert "COPY --chown=0:0 src/binder/environment.yml" in text
    assert re.search(r'env update -p \$\{NB_PYTHON_PREFIX\} --file "binder/environment.yml"', text), text
    # a binder/ folder makes repo2docker ignore the root environment.yml (conda users' file)
    assert "src/environment.yml" not in text


def test_repo2docker_builds_python_3_11(dockerfile):
    text, log = dockerfile
    assert "Building conda environment for python=3.11" in log, log
    assert "environment-2epy-2d3-2e11-2d" in text or "environment.py-3.11-" in text  # the base env's lock


def test_repo2docker_runs_postbuild_after_copying_the_course(dockerfile):
    text, _ = dockerfile
    lines = text.splitlines()
    run = lines.index("RUN ./binder/postBuild")
    copy = next(i for i, line in enumerate(lines) if line.startswith("COPY --chown=0:0 src/ "))
    assert copy < run, "postBuild installs the course package (`pip install -e .`): it needs the files"


# --------------------------------------------------------------------------- what repo2docker does not check

def test_postbuild_is_valid_bash_that_stops_on_errors():
    out = subprocess.run(["bash", "-n", str(POSTBUILD)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = [line for line in POSTBUILD.read_text().splitlines() if line.strip()]
    assert lines[0].startswith("#!") and "bash" in lines[0]
    assert lines[1].startswith("set -e"), "postBuild must start with `set -e`"
    assert os.access(POSTBUILD, os.X_OK)


def test_binder_environment_is_conda_forge_and_pins_python_3_11():
    env = yaml.safe_load((BINDER / "environment.yml").read_text())
    assert env["channels"] == ["conda-forge"]
    assert isinstance(env["dependencies"], list)
    assert "python=3.11" in env["dependencies"]
    assert not (REPO / ".binder").exists(), "repo2docker refuses binder/ and .binder/ together"
    for dep in env["dependencies"]:
        if isinstance(dep, dict):  # a `pip:` section: every entry pinned exactly
            assert set(dep) == {"pip"} and isinstance(dep["pip"], list), dep
            for entry in dep["pip"]:
                assert re.fullmatch(r"[\w.-]+==[\w.]+", entry), f"pip entry {entry!r} is not pinned"


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _with_dependencies(names: set[str]) -> set[str]:
    """The packages and, from their installed metadata, everything they require (extras aside)."""
    seen: set[str] = set()
    todo = [_canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        todo += [_canonical(re.match(r"[A-Za-z0-9._-]+", r).group()) for r in requires if "extra ==" not in r]
    return seen


def _imports(source: str) -> set[str]:
    code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    found = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module.split(".")[0])
    return found


def test_notebooks_import_only_what_binder_installs():
    """A notebook importing a package that only happens to be in the developer's .venv would
    pass every other test and fail on Binder. Python files beside a notebook count as its own
    modules (their imports are checked too)."""
    binder = {CONDA_TO_PIP.get(n, n) for n in conda_pins(BINDER / "environment.yml")} - {"python"}
    available = _with_dependencies(binder)
    owners = importlib.metadata.packages_distributions()
    missing = {}
    folders = [p for name in ("solutions", "notebooks") for p in sorted((REPO / name).iterdir())
               if p.is_dir()]
    assert folders
    for folder in folders:
        local = {p.stem for p in folder.glob("*.py")} | {p.name for p in folder.iterdir() if p.is_dir()}
        sources = [(p, c.source) for p in folder.glob("*.ipynb")
                   for c in notebooks.read(p).cells if c.cell_type == "code"]
        sources += [(p, p.read_text()) for p in folder.glob("*.py")]
        for path, source in sources:
            for module in _imports(source):
                if module in sys.stdlib_module_names or module == "primer" or module in local:
                    continue
                dists = {_canonical(d) for d in owners.get(module, [module])}
                if not dists & available:
                    missing.setdefault(module, set()).add(path.relative_to(REPO).as_posix())
    assert not missing, f"imported by notebooks but not in binder/environment.yml: {missing}"


# --------------------------------------------------------------------------- the learner's Jupyter

INSPECT = """
import json, sys
from jupyter_core.paths import jupyter_config_path, jupyter_path
from jupyter_server.extension.config import ExtensionConfigManager
from jupyterlab_server.config import get_page_config
page = get_page_config(jupyter_path("labextensions"))
server = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
def as_dict(value):  # page_config.json holds dicts; get_page_config may return lists
    return dict.fromkeys(value, True) if isinstance(value, list) else dict(value or {})
print(json.dumps({"prefix": sys.prefix, "disabled": as_dict(page.get("disabledExtensions")),
                  "locked": as_dict(page.get("lockedExtensions")), "server": server}))
"""


@pytest.fixture(scope="module")
def learner_jupyter(tmp_path_factory) -> dict:
    """What nbgrader's extensions look like before and after the student-facing part of
    postBuild, run in a throw-away prefix (tests/learner_env.py; the shared .venv is not written)."""
    prefix = make_prefix(tmp_path_factory.mktemp("binder-prefix"))

    def inspect() -> dict:
        out = subprocess.run([str(prefix.python), "-c", INSPECT], env=prefix.env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.splitlines()[-1])

    before = inspect()
    assert Path(before["prefix"]) == prefix.path
    out = run_student_block(prefix)
    assert out.returncode == 0, out.stdout + out.stderr
    return {"before": before, "after": inspect()}


def _plugin_ids() -> set[str]:
    static = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "@jupyter" / "nbgrader" / "static"
    return {m for p in static.glob("*.js") for m in re.findall(r'"(@jupyter/nbgrader:[\w-]+)"',
                                                                p.read_text())}


def test_the_plugins_named_here_exist():
    assert set(LEARNER_PLUGINS + INSTRUCTOR_PLUGINS) <= _plugin_ids()


def test_before_postbuild_everything_is_enabled(learner_jupyter):
    """Checks the check: without postBuild nbgrader enables all its extensions."""
    before = learner_jupyter["before"]
    assert not any(before["disabled"].get(p) for p in INSTRUCTOR_PLUGINS)
    assert all(before["server"].get(s) for s in INSTRUCTOR_SERVER + LEARNER_SERVER)


def test_learner_extensions_stay_enabled(learner_jupyter):
    after = learner_jupyter["after"]
    for plugin in LEARNER_PLUGINS + ["@jupyter/nbgrader"]:
        assert not after["disabled"].get(plugin), plugin
    for extension in LEARNER_SERVER:
        assert after["server"].get(extension) is True, extension


def test_instructor_extensions_are_disabled_and_locked(learner_jupyter):
    after = learner_jupyter["after"]
    for plugin in INSTRUCTOR_PLUGINS:
        assert after["disabled"].get(plugin) is True, plugin
        assert after["locked"].get(plugin) is True, f"{plugin} can be re-enabled from the Plugin Manager"
    for extension in INSTRUCTOR_SERVER:
        assert after["server"].get(extension) is False, extension
