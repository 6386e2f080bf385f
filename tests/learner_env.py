"""A learner's Jupyter as Binder sets it up, built in a throw-away prefix (no Docker needed).

binder/postBuild's student-facing part runs `jupyter labextension disable --level=sys_prefix ...`
and `jupyter server extension disable --sys-prefix ...`: it writes to the Python prefix's
etc/jupyter. To run it without touching the shared .venv, `make_prefix` builds a venv of its own
(its own sys.prefix) that sees this environment's packages through a .pth file, with a copy of
this environment's Jupyter config (where nbgrader enabled all its extensions when it was
installed, as its conda package does on Binder) and its own `jupyter*` commands first on PATH.

Used by tests/test_binder.py (what the block leaves enabled) and tests/test_browser.py (JupyterLab
served from this prefix: what a Binder learner sees).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from tests.helpers import REPO

POSTBUILD = REPO / "binder" / "postBuild"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Prefix:
    path: Path  # the prefix (sys.prefix of its python)
    env: dict  # environment for commands run "inside" it: PATH, HOME, JUPYTER_* dirs

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"


def student_block() -> str:
    """The lines of postBuild between its '# --- student-facing part' markers."""
    text = POSTBUILD.read_text()
    match = re.search(r"^# --- student-facing part.*?$(.*?)^# --- end of student-facing part", text,
                      re.S | re.M)
    assert match, "postBuild lost its '# --- student-facing part' markers (the tests run that block)"
    return match.group(1)


def digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            h.update(str(p).encode() + p.read_bytes())
    return h.hexdigest()


def make_prefix(tmp: Path) -> Prefix:
    prefix = tmp / "prefix"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True)
    purelib = Path(subprocess.run([str(prefix / "bin" / "python"), "-c",
                                   "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    ours = sysconfig.get_paths()["purelib"]
    # addsitedir, not a plain path line: the .pth files in there (the editable course package) count
    (purelib / "_course_env.pth").write_text(f"import site; site.addsitedir({ours!r})\n")
    shutil.copytree(Path(sys.prefix) / "etc" / "jupyter", prefix / "etc" / "jupyter")
    (prefix / "share").mkdir()
    (prefix / "share" / "jupyter").symlink_to(Path(sys.prefix) / "share" / "jupyter")  # read only
    for script in BIN.glob("jupyter*"):
        lines = script.read_text().splitlines(keepends=True)
        if lines and lines[0].startswith("#!") and "python" in lines[0]:
            target = prefix / "bin" / script.name
            target.write_text(f"#!{prefix / 'bin' / 'python'}\n" + "".join(lines[1:]))
            target.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "VIRTUAL_ENV", "PYTHON"))}
    env.update(PATH=f"{prefix / 'bin'}{os.pathsep}/usr/bin{os.pathsep}/bin", HOME=str(tmp / "home"),
               JUPYTER_CONFIG_DIR=str(tmp / "home" / ".jupyter"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), IPYTHONDIR=str(tmp / "home" / ".ipython"))
    return Prefix(prefix, env)


def run_student_block(prefix: Prefix) -> subprocess.CompletedProcess:
    """Run postBuild's student-facing part in the prefix; the shared environment must not change."""
    shared = Path(sys.prefix) / "etc" / "jupyter"
    before = digest(shared)
    out = subprocess.run(["bash", "-e", "-c", student_block()], env=prefix.env, cwd=prefix.path.parent,
                         capture_output=True, text=True, timeout=300)
    assert digest(shared) == before, "running postBuild changed the shared environment's Jupyter config"
    return out
