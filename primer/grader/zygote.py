"""A warm sandbox: one long-lived process per grading worker forks an isolated run per submission.

A sandboxed Python that imports torch costs about 1.5 s of CPU before it runs anything, more than
grading all of assignment 01 takes. So a grading worker (primer.grader.classrun) starts one
sandbox (primer.grader.sandbox, with all its limits) that runs this module: the *zygote*. It
imports torch, matplotlib, IPython, the course's checks and what the assignment's spec module
lists in SANDBOX_PRELOAD once, and never runs learner code. For
each submission it forks a child, which leaves the zygote's world before any learner code runs:

- new user, PID, mount and IPC namespaces: the submission's coordinator (primer.grader.harvest)
  is PID 1 of a PID namespace of its own, so when it ends the kernel kills every process the
  submission started. Nothing of one submission outlives it to touch the next one.
- a /dev/shm of its own; a workdir of its own (HOME, TMPDIR), which the grader creates fresh and
  deletes afterwards; the shared /tmp is emptied by the grader between submissions (when every
  process of the one before is dead).
- none of the zygote's file descriptors, and no way into it: the submission sees the zygote in
  /proc, but the pids its system calls take are its own namespace's, so it can neither signal nor
  trace it; and the zygote is not dumpable, so its /proc files (memory, environment) are closed
  to the submission's processes (the same uid, in a child user namespace).
A zygote that dies anyway (the OOM killer) is replaced, and the job it was running is run again.

Protocol: the grader writes one workdir per line on the zygote's stdin; the zygote answers each,
on stdout, with a JSON line {"status": wait status, "cpu": seconds of CPU}. Its first line is
{"ready": true}, once everything is imported.

Used where the sandbox runs as root (a grading server; as an ordinary user bubblewrap forbids the
nested user namespace), never unsandboxed; elsewhere each submission starts its own sandbox.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import json
import os
import select
import shutil
import signal
import sys
from pathlib import Path

CLONE_NEWNS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x08000000, 0x10000000, 0x20000000
PR_SET_DUMPABLE = 4
MS_NOSUID, MS_NODEV = 2, 4
READY_SECONDS = 120  # for the zygote's imports (a few seconds; a loaded machine is slower)
LOG_TAIL_BYTES = 4096
WARM_PREFIX = "primer-warm-"  # /tmp/primer-warm-<pid of the grading process>-<random>/


# --------------------------------------------------------------------------- inside the sandbox

def _libc():
    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _submission(workdir: Path, shm_bytes: int) -> None:
    """In the forked child: leave the zygote's namespaces, then run the job as PID 1. Never returns."""
    libc = _libc()
    libc.prctl(PR_SET_DUMPABLE, 1)  # its own /proc/self must be its own (for the uid map below)
    log = os.open(workdir / "harvest.log", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))  # the zygote's pipes are not the submission's
    uid, gid = os.getuid(), os.getgid()
    _check(libc.unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC), "unshare")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        with open(f"/proc/self/{name}", "w") as f:
            f.write(text)
    _check(libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV,
                      f"mode=1777,size={shm_bytes}".encode()), "mount /dev/shm")
    pid = os.fork()
    if pid == 0:  # PID 1 of the new namespace: the coordinator
        from primer.grader import harvest

        os.environ.update(HOME=str(workdir), TMPDIR=str(workdir / "tmp"),
                          MPLCONFIGDIR=str(workdir / ".matplotlib"))
        try:
            harvest.run(workdir)
            code = 0
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)  # a signal N as 128 + N, as a shell says it


def main() -> int:
    from primer.grader import harvest

    harvest.prepare()
    import matplotlib

    matplotlib.use("Agg")
    import IPython.core.interactiveshell  # noqa: F401  (the cell runner's shell)
    import matplotlib.pyplot  # noqa: F401  (most notebooks' first cell)

    _libc().prctl(PR_SET_DUMPABLE, 0)
    shm_bytes = int(float(os.environ.get("PRIMER_LIMIT_MEMORY_MB", "4096"))) * 2**20
    answers = os.fdopen(os.dup(1), "w", buffering=1)
    print(json.dumps({"ready": True}), file=answers)
    while line := sys.stdin.readline():
        workdir = Path(line.strip())
        pid = os.fork()
        if pid == 0:
            try:
                _submission(workdir, shm_bytes)
            finally:
                os._exit(70)
        _, status, usage = os.wait4(pid, 0)
        print(json.dumps({"status": status, "cpu": usage.ru_utime + usage.ru_stime}), file=answers)
    return 0


# --------------------------------------------------------------------------- the grader's side

def usable() -> bool:
    """Whether a zygote can serve here: bubblewrap works and the grader is root (see above)."""
    from primer.grader.sandbox import sandbox_problem

    return os.geteuid() == 0 and sandbox_problem() is None


class WarmSandbox:
    """A zygote in a sandbox (started on first use, restarted when it died), and run() for one job.

    Each job gets a fresh folder from workspace(); run() answers as Sandbox.run() does.
    """

    def __init__(self, sandbox, uid: int, preload: tuple[str, ...] = ()):
        import tempfile

        self.sandbox, self.uid, self.preload = sandbox, uid, tuple(preload)
        _remove_abandoned(Path(tempfile.gettempdir()))
        # root's, 0700; named after this process, so that a later one can tell it was abandoned
        self.root = Path(tempfile.mkdtemp(prefix=f"{WARM_PREFIX}{os.getpid()}-")).resolve()
        os.chmod(self.root, 0o755)  # the uid inside traverses it, cannot write it
        (self.root / "jobs").mkdir(mode=0o755)
        self.proc = None
        self.mounted: list[str] = []
        self._jobs = itertools.count()

    # ----------------------------------------------------------------- lifecycle
    def _start(self) -> None:
        for name in ("tmp", "home"):
            folder = self.root / name
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            os.chown(folder, self.uid, self.uid)
        log = open(self.root / "zygote.log", "ab")  # root's: the uid inside cannot open it
        try:
            home = self.root / "home"  # the zygote's (matplotlib's font cache); each job has its own
            self.proc, self.mounted = self.sandbox.start(
                [sys.executable, "-m", "primer.grader.zygote"], self.root, uid=self.uid, stderr=log,
                env={"MPLBACKEND": "Agg", "HOME": str(home), "MPLCONFIGDIR": str(home / ".matplotlib"),
                     "PRIMER_PRELOAD": ",".join(self.preload)})
        finally:
            log.close()
        answer = self._answer(READY_SECONDS)
        if not isinstance(answer, dict) or not answer.get("ready"):
            self.close()
            raise RuntimeError("the grading sandbox did not start: " + self._zygote_log())

    def close(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):  # bwrap; its PID 1 and namespace die with it
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            for pipe in (self.proc.stdin, self.proc.stdout):
                with contextlib.suppress(OSError):
                    pipe.close()
            self.proc = None

    def remove(self) -> None:
        self.close()
        shutil.rmtree(self.root, ignore_errors=True)

    # ----------------------------------------------------------------- one job
    @contextlib.contextmanager
    def workspace(self):
        """A fresh folder for one job, removed afterwards, with /tmp emptied."""
        work = self.root / "jobs" / str(next(self._jobs))
        work.mkdir(mode=0o700)
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)
            self._empty_tmp()

    def run(self, workdir: Path):
        """Run the harvest job in `workdir` (from workspace()) in a fresh child of the zygote."""
        import time

        from primer.grader.sandbox import SandboxResult, limit_message
        from primer.grader.workdir import chown_tree

        for attempt in range(2):  # a zygote that died meanwhile (the OOM killer?) is replaced, once
            if self.proc is None or self.proc.poll() is not None:
                self.close()
                self._start()
            shutil.rmtree(workdir / "out", ignore_errors=True)  # (what a first attempt left)
            (workdir / "harvest.log").unlink(missing_ok=True)
            chown_tree(workdir, self.uid)
            started = time.monotonic()
            try:
                self.proc.stdin.write(f"{workdir}\n".encode())
                self.proc.stdin.flush()
            except OSError:
                pass  # it died: no answer below
            answer = self._answer(self.sandbox.wall_seconds)
            if answer != "gone":
                break
            self.close()
        wall = time.monotonic() - started
        log = _tail(workdir / "harvest.log")
        if not isinstance(answer, dict) or "status" not in answer:  # overran, or the zygote died
            self.close()  # (a new one for the next job)
            limit = "wall_seconds" if answer == "timeout" else None
            message = limit_message(limit, self.sandbox) if limit else "the grading sandbox stopped"
            return SandboxResult(None, None, "", log, limit, message, wall, 0.0)
        code, cpu = os.waitstatus_to_exitcode(answer["status"]), float(answer["cpu"])
        sig = code - 128 if code > 128 else None
        # (SIGKILL: the hard limit; PID 1 of a namespace ignores SIGXCPU)
        limit = "cpu_seconds" if sig == signal.SIGXCPU or (sig == signal.SIGKILL and
                                                            cpu >= self.sandbox.cpu_seconds) else None
        return SandboxResult(-sig if sig else code, sig, "", log, limit,
                             limit_message(limit, self.sandbox) if limit else "", wall, cpu)

    def _answer(self, seconds: float) -> dict | str:
        """The zygote's next JSON line; "timeout" when it said nothing for `seconds`; "gone" if it died."""
        fd = self.proc.stdout.fileno()
        if not select.select([fd], [], [], seconds)[0]:
            return "timeout"
        line = self.proc.stdout.readline(1 << 16)
        try:
            answer = json.loads(line)
        except ValueError:
            return "gone"
        return answer if isinstance(answer, dict) else "gone"

    def _empty_tmp(self) -> None:
        """Delete what the last job left in /tmp, but the folders that are mount points inside."""
        tmp = self.root / "tmp"
        keep = {tmp / Path(m).relative_to("/tmp") for m in self.mounted if Path(m).is_relative_to("/tmp")}
        _empty(tmp, keep)

    def _zygote_log(self) -> str:
        return _tail(self.root / "zygote.log")[-1000:].strip() or "(no message)"


def _remove_abandoned(tmp: Path) -> None:
    """The folders of warm sandboxes whose process is gone (killed with SIGKILL: no atexit ran)."""
    for folder in tmp.glob(f"{WARM_PREFIX}*-*"):
        pid = folder.name.removeprefix(WARM_PREFIX).split("-")[0]
        try:
            if not pid.isdigit() or folder.is_symlink() or folder.stat().st_uid != os.geteuid():
                continue
            os.kill(int(pid), 0)  # raises if no such process
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue


def _empty(folder: Path, keep: set[Path]) -> None:
    with contextlib.suppress(OSError), os.scandir(folder) as entries:
        for entry in entries:
            path = Path(entry.path)
            if any(k == path or path in k.parents for k in keep):
                if entry.is_dir(follow_symlinks=False):
                    _empty(path, keep)
            elif entry.is_dir(follow_symlinks=False):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _tail(path: Path) -> str:
    from primer.grader.workdir import read_learner_file

    return (read_learner_file(path, LOG_TAIL_BYTES, tail=True) or b"").decode(errors="replace")


if __name__ == "__main__":
    sys.exit(main())
