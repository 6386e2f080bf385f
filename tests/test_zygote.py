"""primer.grader.zygote: one warm sandbox serves submission after submission, each isolated.

Each test runs jobs (cells, as primer.grader.harvest runs a submission's cells) one after the other
in one WarmSandbox, as a grading worker does, and looks at what the first job could do to the zygote
or to the job after it: processes left behind, files in /tmp and /dev/shm, the zygote's pipes,
memory and signals. What a job found is written by its cells to a file in its own folder and read
here before the folder is removed.
"""

from __future__ import annotations

import json
import os
import textwrap
import uuid
from pathlib import Path

import pytest

from primer.grader import zygote
from primer.grader.sandbox import Sandbox

pytestmark = pytest.mark.skipif(not zygote.usable(), reason="the warm sandbox needs root and bubblewrap "
                                "(apt-get install bubblewrap)")
_XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
UID = Sandbox().uid_base + 880 + _XDIST_WORKER


@pytest.fixture(scope="module")
def warm():
    box = zygote.WarmSandbox(Sandbox(wall_seconds=20), UID)
    yield box
    box.remove()
    assert not box.root.exists()


def job(warm, *cells: str, read: str = "found.json"):
    """Run the cells as one submission; return (SandboxResult, what the cells wrote to `read`, or None)."""
    with warm.workspace() as work:
        (work / "notebook").mkdir()
        (work / "job.json").write_text(json.dumps({
            "cells": [{"source": textwrap.dedent(c)} for c in cells], "exercises": [],
            "cell_seconds": 10, "check_seconds": 10}))
        result = warm.run(work)
        path = work / "notebook" / read
        found = json.loads(path.read_text()) if path.is_file() and not path.is_symlink() else None
        summary = work / "out" / "summary.json"
        result.summary = json.loads(summary.read_text()) if summary.is_file() else None
    return result, found


def host_processes(marker: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker.encode() in (proc / "cmdline").read_bytes():
                found.append(proc.name)
        except OSError:
            continue
    return found


def test_a_job_runs_and_reports(warm):
    result, found = job(warm, "import json, os, torch\n"
                              "found = {'pid': os.getpid(), 'uid': os.getuid(), 'torch': torch.__version__}\n"
                              "json.dump(found, open('found.json', 'w'))")
    assert result.returncode == 0 and result.limit is None, result
    assert result.summary["cells"] == {"0": ""}, result.summary
    assert found["uid"] == UID, "the job runs as the worker's unprivileged uid"
    assert found["pid"] > 1, "the cell runs in a child of the job's PID 1 (the coordinator)"


def test_nothing_of_one_job_outlives_it_or_reaches_the_next(warm):
    marker = f"primer-zygote-test-{uuid.uuid4().hex}"
    # a daemon that survives its cell: its own session, SIGTERM ignored, writing everywhere it can
    leave_behind = f"""
        import os, subprocess, sys
        code = '''
    import os, signal, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True:
        for path in ("/tmp/left-by-a", "/dev/shm/left-by-a"):
            try:
                open(path, "w").write("a")
            except OSError:
                pass
        time.sleep(0.05)
    '''
        subprocess.Popen([sys.executable, "-c", code, "{marker}"], start_new_session=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import time; time.sleep(0.5)
        """
    first, _ = job(warm, leave_behind)
    assert first.returncode == 0, first
    assert host_processes(marker) == [], "a process of the first job is still running"
    _, found = job(warm, """
        import json, os
        json.dump({"tmp": os.listdir("/tmp"), "shm": os.listdir("/dev/shm"),
                   "jobs": sorted(os.listdir(os.path.dirname(os.path.dirname(os.getcwd()))))},
                  open("found.json", "w"))
        """)
    assert "left-by-a" not in found["tmp"], "the first job's /tmp file reached the next job"
    assert found["shm"] == [], "the first job's /dev/shm file reached the next job"
    assert len(found["jobs"]) == 1, f"the next job sees other jobs' folders: {found['jobs']}"


def test_a_job_cannot_reach_the_zygote(warm):
    # The job sees the zygote only in /proc (pid numbers in syscalls are its own namespace's).
    result, found = job(warm, """
        import ctypes, json, os
        def argv(p):
            return open(f"/proc/{p}/cmdline", "rb").read().split(bytes(1))
        zygote = next(p for p in os.listdir("/proc") if p.isdigit() and b"primer.grader.zygote" in argv(p)
                      and not argv(p)[0].endswith(b"bwrap"))
        found = {"fds": sorted(int(fd) for fd in os.listdir("/proc/self/fd")), "inodes": []}
        for fd in found["fds"]:
            try:
                found["inodes"].append(os.fstat(fd).st_ino)
            except OSError:
                pass
        for what in ("mem", "environ", "maps"):
            try:
                open(f"/proc/{zygote}/{what}", "rb").read(1)
                found[what] = "read"
            except OSError as e:
                found[what] = e.errno
        libc = ctypes.CDLL(None, use_errno=True)
        pidfd = os.open(f"/proc/{zygote}", os.O_RDONLY | os.O_DIRECTORY)
        found["signal"] = libc.syscall(424, pidfd, 9, None, 0), ctypes.get_errno()  # pidfd_send_signal
        json.dump(found, open("found.json", "w"))
        """)
    assert result.returncode == 0 and found, (result, result.summary)
    for what in ("mem", "environ", "maps"):
        assert found[what] != "read", f"the job read the zygote's /proc/<pid>/{what}"
    assert found["signal"][0] == -1, "the job could send the zygote a signal"
    # none of the zygote's descriptors: its command and answer pipes are not among the job's
    zygote_pipes = {os.fstat(f.fileno()).st_ino for f in (warm.proc.stdin, warm.proc.stdout)}
    assert not zygote_pipes & set(found["inodes"]), "a job holds the zygote's command or answer pipe"
    assert len(found["fds"]) <= 5, f"more descriptors than stdio and the coordinator's pipe: {found['fds']}"


def test_a_zygote_that_died_is_replaced_for_the_next_job(warm):
    first, _ = job(warm, "import json; json.dump('ran', open('found.json', 'w'))")
    assert first.returncode == 0
    os.killpg(warm.proc.pid, 9)  # as the OOM killer might
    after, found = job(warm, "import json; json.dump('ran', open('found.json', 'w'))")
    assert after.returncode == 0 and found == "ran", "the next job did not get a new zygote"


def test_a_job_past_the_wall_clock_limit_is_stopped_and_the_next_runs(warm):
    slow = zygote.WarmSandbox(Sandbox(wall_seconds=3), UID + 10)
    try:
        result, _ = job(slow, "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                              "while True: time.sleep(1)")
        assert result.limit == "wall_seconds", result
        assert "ran longer than 3 s (limit wall_seconds" in result.message
        after, found = job(slow, "import json; json.dump('ran', open('found.json', 'w'))")
        assert after.returncode == 0 and found == "ran"
    finally:
        slow.remove()


def test_folders_of_killed_graders_are_removed_by_the_next(tmp_path):
    import subprocess
    import sys
    import tempfile

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True).stdout.strip()
    tmp = Path(tempfile.gettempdir())
    abandoned = tmp / f"{zygote.WARM_PREFIX}{ended}-test{uuid.uuid4().hex[:6]}"
    alive = tmp / f"{zygote.WARM_PREFIX}{os.getpid()}-test{uuid.uuid4().hex[:6]}"
    for folder in (abandoned, alive):
        (folder / "jobs").mkdir(parents=True)
    try:
        zygote.WarmSandbox(Sandbox(), UID + 20).remove()  # (never started: only its folder)
        assert not abandoned.exists(), "the folder of a grader that was killed is still there"
        assert alive.exists(), "the folder of a running grader was removed"
    finally:
        import shutil

        shutil.rmtree(abandoned, ignore_errors=True)
        shutil.rmtree(alive, ignore_errors=True)
