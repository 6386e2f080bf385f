"""JupyterLab in a real browser, for tests/test_browser.py: a JupyterLab server on loopback and
Debian's Chromium driven by Playwright, working the way a learner does.

The server serves a temporary copy of the course (running cells changes a notebook; autosave is
off as well, so the committed notebooks are never written). Notebooks are opened as tabs of one
JupyterLab page and run a few at a time (`jobs`), each through JupyterLab's own commands.

Each notebook is run with one Run All, as a learner does: the released notebooks' test cells are
tagged `raises-exception`, so an exercise not done yet does not stop the run (JupyterLab would
otherwise stop at the first cell that raises).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_HINT = "apt-get update && apt-get install -y chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
# JupyterLab settings for a quiet, reproducible session (user settings dir of the server)
LAB_SETTINGS = {
    # the news / update toast would cover the page
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                        "checkForUpdates": False},
    # never write a notebook back (the server works on a copy anyway)
    "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
    # every cell in the DOM, so that all outputs can be inspected and photographed
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LabServer:
    root: Path  # the folder JupyterLab serves
    workdir: Path  # settings, workspaces, runtime files
    port: int = field(default_factory=free_port)
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    python: Path = Path(sys.executable)  # JupyterLab and the kernels run on this interpreter
    base_env: dict | None = None  # default: this process's environment
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        settings = self.workdir / "settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        if self.base_env is not None:
            env = dict(self.base_env)
        else:
            env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER")}
            env.update(JUPYTER_CONFIG_DIR=str(self.workdir / "config"),
                       JUPYTER_DATA_DIR=str(self.workdir / "data"),
                       JUPYTER_RUNTIME_DIR=str(self.workdir / "rt"), IPYTHONDIR=str(self.workdir / "ipython"),
                       PATH=f"{self.python.parent}{os.pathsep}{os.environ.get('PATH', '')}")
        cmd = [str(self.python), "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.expose_app_in_browser=True", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={self.workdir / 'workspaces'}", "--ServerApp.port_retries=0"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")  # JupyterLab refuses to run as root otherwise (CI runs as root)
        self.log = open(self.workdir / "jupyterlab.log", "w")
        self.proc = subprocess.Popen(cmd, cwd=self.root, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited ({self.proc.returncode}):\n{self.log_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError(f"JupyterLab did not answer within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        self.log.flush()
        return (self.workdir / "jupyterlab.log").read_text()[-5000:]

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            try:  # the server's own shutdown also shuts down the kernels it started
                req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(req, timeout=5).close()
                self.proc.wait(timeout=15)
            except Exception:
                os.killpg(self.proc.pid, 9)
                self.proc.wait()
        self.log.close()


def copy_course(repo: Path, dest: Path) -> Path:
    """The folders a learner and an instructor open, copied: the server may change them."""
    for folder in ("notebooks", "solutions"):
        shutil.copytree(repo / folder, dest / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return dest


# --------------------------------------------------------------------------- in the page (JavaScript)

JS_OPEN = """async (path) => {
  const app = window.jupyterapp;
  const panel = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await panel.context.ready;
  await panel.sessionContext.ready;
  window.__course = window.__course || {};
  return panel.id;
}"""

JS_PANEL = """const panel = Array.from(window.jupyterapp.shell.widgets('main')).find(w => w.id === id);"""

JS_KERNEL_IDLE = """(id) => { %s
  const kernel = panel && panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}""" % JS_PANEL

# Run All, once, as a learner does. Released test cells carry the `raises-exception` tag, so a
# failing check does not stop the kernel's queue; the command itself may resolve before the queue
# is done, so this waits until no cell is running and the kernel is idle. Stores {ok, errors,
# seconds} in window.__course[id]: ok when every code cell ran, errors the indices of the cells
# that show one. Returns at once.
JS_RUN_ALL = """(id) => { %s
  const app = window.jupyterapp;
  const nb = panel.content;
  const started = performance.now();
  const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));
  const code = () => nb.widgets.map((cell, i) => [cell, i]).filter(([cell]) => cell.model.type === 'code');
  const busy = () => code().some(([cell]) => cell.model.executionState === 'running')
    || !panel.sessionContext.session || panel.sessionContext.session.kernel.status !== 'idle';
  const run = async () => {
    await app.commands.execute('notebook:run-all-cells', {widgetId: id, activate: false});
    for (let quiet = 0; quiet < 3; ) {  // idle three times in a row: the queue is done
      await sleep(100);
      quiet = busy() ? 0 : quiet + 1;
    }
    const ok = code().every(([cell]) => cell.model.executionCount !== null);
    const errors = code().filter(([cell]) =>
      cell.model.outputs.toJSON().some(o => o.output_type === 'error')).map(([, i]) => i);
    return {ok, errors, seconds: (performance.now() - started) / 1000};
  };
  window.__course[id] = null;
  run().then(r => { window.__course[id] = r; },
             e => { window.__course[id] = {ok: false, errors: [], error: String(e)}; });
}""" % JS_PANEL

JS_CELLS = """(id) => { %s
  return panel.content.widgets.map((cell, index) => {
    const model = cell.model;
    const out = {index, type: model.type, nbgrader: model.getMetadata('nbgrader') || null,
                 source: model.sharedModel.getSource()};
    if (model.type !== 'code') {
      out.rendered = !!cell.node.querySelector('.jp-RenderedMarkdown, .jp-RenderedHTMLCommon');
      return out;
    }
    out.executionCount = model.executionCount;
    out.outputs = model.outputs.toJSON().map(o => ({
      output_type: o.output_type, name: o.name || null, ename: o.ename || null,
      mimes: o.data ? Object.keys(o.data) : [],
      text: o.output_type === 'stream' ? [].concat(o.text).join('') :
            (o.data && o.data['text/plain'] ? [].concat(o.data['text/plain']).join('') : '')}));
    const images = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output img'));
    out.images = images.length;
    out.imagesDecoded = images.filter(img => img.complete && img.naturalWidth > 0).length;
    const errors = Array.from(cell.node.querySelectorAll('.jp-OutputArea-output'))
        .filter(node => node.getAttribute('data-mime-type') === 'application/vnd.jupyter.stderr');
    out.renderedErrors = errors.map(node => node.innerText);
    return out;
  });
}""" % JS_PANEL

JS_TOOLBAR = """(id) => { %s
  return {validate: !!panel.node.querySelector('.validate-button'),
          indicator: (panel.node.querySelector('.jp-Notebook-ExecutionIndicator') || {dataset: {}})
                        .dataset.status || null,
          cells: panel.content.widgets.length};
}""" % JS_PANEL

# Show the notebook's tab; scroll its panel to `top`; return the panel's heights
JS_SHOW = """([id, top]) => { %s
  window.jupyterapp.shell.activateById(id);
  const scroller = panel.content.node.querySelector('.jp-WindowedPanel-outer') || panel.content.node;
  scroller.scrollTop = top;
  return {scroll: scroller.scrollHeight, client: scroller.clientHeight};
}""" % JS_PANEL

# The README picture: a passed check (a cell whose output has "✓") and a plot, as close together as
# the notebook has them; scrolls the panel to show both (or, if they cannot fit, the whole plot
# with as much as fits above it). Returns the chosen pair or null.
JS_FRAME_CHECK_AND_PLOT = """(id) => { %s
  const scroller = panel.content.node.querySelector('.jp-WindowedPanel-outer') || panel.content.node;
  const base = scroller.getBoundingClientRect().top - scroller.scrollTop;
  let best = null;
  let passed = null;
  panel.content.widgets.forEach((cell, index) => {
    if (cell.model.type !== 'code') return;
    const grade = (cell.model.getMetadata('nbgrader') || {}).grade;
    const area = cell.node.querySelector('.jp-OutputArea');
    const text = area ? area.innerText : '';
    if (grade && text.includes('\u2713')) { passed = cell; return; }
    const img = cell.node.querySelector('.jp-OutputArea-output img');
    if (img && passed) {
      const top = passed.node.getBoundingClientRect().top - base;
      const bottom = img.getBoundingClientRect().bottom - base;
      if (!best || bottom - top < best.bottom - best.top) {
        best = {top, bottom, check: passed.model.id, plot: index};
      }
    }
  });
  if (!best) return null;
  const room = scroller.clientHeight;
  best.room = room;
  best.fits = best.bottom - best.top + 16 <= room;
  scroller.scrollTop = best.fits ? best.top - Math.max(8, (room - (best.bottom - best.top)) / 2)
                                 : best.bottom - room + 16;
  return best;
}""" % JS_PANEL

JS_CLOSE = """async (id) => { %s
  await panel.sessionContext.shutdown();
  panel.dispose();
}""" % JS_PANEL


@dataclass
class Run:
    """One notebook opened and run in JupyterLab, and what the page showed."""

    path: str  # relative to the server's root
    kind: str  # "release" or "solution"
    panel: str = ""
    toolbar: dict = field(default_factory=dict)
    opened_seconds: float = 0.0
    result: dict = field(default_factory=dict)  # {ok, errors, seconds}
    cells: list = field(default_factory=list)
    screenshots: list = field(default_factory=list)
    readme: Path | None = None  # the README picture, when this run made it
    error: str = ""


class Lab:
    """One Chromium page with JupyterLab; notebooks open as tabs in it."""

    def __init__(self, server: LabServer, artifacts: Path, viewport=(1400, 1000)):
        from playwright.sync_api import sync_playwright

        self.server, self.artifacts, self.viewport = server, artifacts, viewport
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.console_errors: list[str] = []
        self.page.on("pageerror", lambda exc: self.console_errors.append(str(exc)))

    def load(self, timeout_ms: int = 90_000) -> None:
        self.page.goto(f"{self.server.url}/lab?token={self.server.token}", timeout=timeout_ms)
        self.page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined",
                                    timeout=timeout_ms)
        self.page.evaluate("async () => { await window.jupyterapp.started; "
                           "await window.jupyterapp.restored; }")

    def open(self, run: Run, timeout_ms: int = 90_000) -> None:
        started = time.monotonic()
        run.panel = self.page.evaluate(JS_OPEN, run.path)
        self.page.wait_for_function(JS_KERNEL_IDLE, arg=run.panel, timeout=timeout_ms)
        self.page.wait_for_selector(f"#{run.panel} .jp-Notebook-ExecutionIndicator[data-status='idle']",
                                    state="attached", timeout=timeout_ms)
        # The indicator can flicker busy right after start-up (kernel info, comm set-up): wait
        # until it reads idle twice in a row, half a second apart.
        deadline, idle_reads = started + timeout_ms / 1000, 0
        while True:
            run.toolbar = self.page.evaluate(JS_TOOLBAR, run.panel)
            idle_reads = idle_reads + 1 if run.toolbar.get("indicator") == "idle" else 0
            if idle_reads >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        run.opened_seconds = time.monotonic() - started

    def start_running(self, run: Run) -> None:
        self.page.evaluate(JS_RUN_ALL, run.panel)

    def finished(self, run: Run) -> dict | None:
        return self.page.evaluate("(id) => window.__course[id]", run.panel)

    def collect(self, run: Run) -> None:
        run.cells = self.page.evaluate(JS_CELLS, run.panel)

    def screenshot(self, run: Run, name: str, max_height: int = 16000) -> list[Path]:
        """The whole notebook, in as few images as Chromium allows: a viewport as tall as the
        notebook (JupyterLab scrolls inside its own panel, so a full-page screenshot would miss
        the cells below the fold)."""
        width, height = self.viewport
        sizes = self.page.evaluate(JS_SHOW, [run.panel, 0])
        chrome = height - sizes["client"]  # menus, toolbar, status bar around the notebook
        step = max_height - chrome
        paths = []
        for i, top in enumerate(range(0, max(sizes["scroll"], 1), step)):
            self.page.set_viewport_size({"width": width, "height": chrome + min(step, sizes["scroll"] - top)})
            self.page.evaluate(JS_SHOW, [run.panel, top])
            self.page.wait_for_timeout(200)  # let the layout settle after the resize
            stem = Path(name).stem if i == 0 else f"{Path(name).stem}-{i + 1}"
            path = self.artifacts / f"{stem}.jpg"  # JPEG: half the time of a PNG this size
            self.page.screenshot(path=str(path), type="jpeg", quality=75)
            paths.append(path)
        self.page.set_viewport_size({"width": width, "height": height})
        run.screenshots = paths
        return paths

    def screenshot_check_and_plot(self, run: Run, path: Path, width: int = 1280,
                                  max_height: int = 1500) -> dict | None:
        """One screen of the notebook with a passed check and a plot (the README picture): the
        viewport is made just tall enough for both, up to `max_height`."""
        self.page.set_viewport_size({"width": width, "height": max_height})
        self.page.evaluate(JS_SHOW, [run.panel, 0])
        self.page.evaluate("() => window.jupyterapp.shell.collapseLeft()")
        self.page.wait_for_timeout(300)
        frame = self.page.evaluate(JS_FRAME_CHECK_AND_PLOT, run.panel)
        if frame is not None:
            chrome = max_height - frame["room"]
            height = min(max_height, max(700, int(chrome + frame["bottom"] - frame["top"] + 40)))
            self.page.set_viewport_size({"width": width, "height": height})
            self.page.wait_for_timeout(300)
            frame = self.page.evaluate(JS_FRAME_CHECK_AND_PLOT, run.panel)
            self.page.wait_for_timeout(500)
            self.page.screenshot(path=str(path))
            run.readme = path
        self.page.set_viewport_size({"width": self.viewport[0], "height": self.viewport[1]})
        return frame

    def close_notebook(self, run: Run) -> None:
        self.page.evaluate(JS_CLOSE, run.panel)

    def close(self) -> None:
        try:
            self.browser.close()
        finally:
            self._pw.stop()


def run_all(lab: Lab, runs: list[Run], jobs: int, per_notebook_s: float, after=None, keep=()) -> None:
    """Open and run the notebooks, `jobs` at a time (each has its own kernel); `after(run)` is called
    as each one finishes (collect its cells, screenshot), then its kernel is shut down and its tab
    closed, unless the run is in `keep`. The next notebook starts before a finished one is
    inspected, so that the kernels are kept busy."""
    queue, active = list(runs), []
    while queue or active:
        finished = []
        for item in list(active):
            run, started = item
            result = lab.finished(run)
            if result is None and time.monotonic() - started < per_notebook_s:
                continue
            active.remove(item)
            run.result = result or {"ok": False, "errors": [],
                                    "error": f"not finished after {per_notebook_s:g} s"}
            finished.append(run)
        while queue and len(active) < jobs:
            run = queue.pop(0)
            try:
                lab.open(run)
                lab.start_running(run)
                active.append((run, time.monotonic()))
            except Exception as exc:  # reported by the test for this notebook; the others go on
                run.error = f"{type(exc).__name__}: {exc}"
        for run in finished:
            try:
                lab.collect(run)
                if after:
                    after(run)
            except Exception as exc:
                run.error = f"{type(exc).__name__}: {exc}"
            finally:
                try:
                    if run not in keep:
                        lab.close_notebook(run)
                except Exception:
                    pass
        if active and not finished:
            time.sleep(0.25)
