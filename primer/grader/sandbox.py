"""Run untrusted learner code in a bubblewrap (`bwrap`) sandbox, with limits, and say what happened.

Inside, read-only: /usr (and the /bin, /lib, /lib64 links), a few /etc files, the Python
installation, the venv and the course package; writable: the run's `workdir` (also its /tmp).
Nothing else of the course folder (gradebook, submissions, solutions) exists there. Own PID,
network (loopback only), IPC, UTS and cgroup namespaces: no host service is reachable, and nothing
outlives the run (bwrap's PID 1 dies with bwrap, and the kernel then kills the whole namespace).

As root (a grading server) the code runs as an unprivileged uid, without capabilities and with
no_new_privs (`setpriv`). As an ordinary user bwrap uses a user namespace instead and the code runs
as that same user: no uid change is possible, so `processes` then counts all of that user's processes.

Limits: rlimits set before bwrap starts (so everything inside inherits them), a wall-clock deadline
and an output cap enforced here. The instructor sets them in autograder/nbgrader_config.py
(`c.Sandbox.memory_mb = 4096`); the program inside reads them from PRIMER_LIMIT_<LIMIT>.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from traitlets import Bool, Float, Int
from traitlets.config import Configurable

import primer
from primer.grader.workdir import chown_tree

BWRAP = shutil.which("bwrap") or "/usr/bin/bwrap"
SETPRIV = shutil.which("setpriv") or "/usr/bin/setpriv"
NOBODY = 65534
CONFIG_FILE = "autograder/nbgrader_config.py"
LIMITS = ("memory_mb", "cpu_seconds", "wall_seconds", "processes", "file_mb", "open_files", "output_mb")
ETC_FILES = ("ld.so.cache", "passwd", "group", "nsswitch.conf", "localtime", "hosts")
# As root, --unshare-all would also make a user namespace that maps only root, in which setpriv
# cannot switch uid: root lists the other namespaces. A user gets a user namespace in which the
# code may not make more (to rearrange its mounts).
UNSHARE_ROOT = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try"]
UNSHARE_USER = ["--unshare-all", "--unshare-user", "--disable-userns"]
# PID 2 inside, the parent of the command: it reports the command's wait status and CPU time, as
# bwrap reports a signal only as exit code 128 + N and nobody outside can wait for its children.
REPORTER = """if 1:
    import os, sys
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(sys.argv[2], sys.argv[2:])
        except OSError as e:
            os.write(2, f"{sys.argv[2]}: {e.strerror}\\n".encode())
            os._exit(127)
    _, status, usage = os.wait4(pid, 0)
    os.write(fd, f"{status} {usage.ru_utime + usage.ru_stime}".encode())
    code = os.waitstatus_to_exitcode(status)
    os._exit(code if code >= 0 else 128 - code)
"""
log = logging.getLogger(__name__)


class SandboxUnavailable(RuntimeError):
    """This machine cannot sandbox and c.Sandbox.allow_unsandboxed is False (the message says why)."""


@dataclass
class SandboxResult:
    returncode: int | None  # exit code; -N when signal N ended it; None when the supervisor killed it
    signal: int | None  # the signal that ended the main process, if any
    stdout: str  # decoded with errors="replace"; stdout and stderr share the output_mb cap
    stderr: str
    limit: str | None  # the limit that ended the run (or cut its output), by trait name
    message: str  # the sentence for the learner when a limit was hit, else ""
    wall_seconds: float
    cpu_seconds: float  # of the main process and the children it waited for (0 after a wall kill)


class Sandbox(Configurable):
    """The limits of a run, and run() to start a command inside the sandbox."""

    memory_mb = Int(4096, help="Address space per process (RLIMIT_AS), in MB. torch needs 1-3 GB "
                    "just to import.").tag(config=True)
    cpu_seconds = Int(300, help="CPU time per process (RLIMIT_CPU), in seconds.").tag(config=True)
    wall_seconds = Float(900, help="Wall-clock time of a whole run, in seconds.").tag(config=True)
    processes = Int(256, help="Processes+threads of the run's uid (RLIMIT_NPROC).").tag(config=True)
    file_mb = Int(256, help="Largest file a process may write (RLIMIT_FSIZE), in MB.").tag(config=True)
    open_files = Int(1024, help="Open files per process (RLIMIT_NOFILE).").tag(config=True)
    output_mb = Int(4, help="stdout+stderr kept per run, in MB (the rest is discarded).").tag(config=True)
    allow_unsandboxed = Bool(False, help="Where bubblewrap cannot run, run learner code WITHOUT "
                             "isolation (same limits, no protection). At your own risk.").tag(config=True)
    uid_base = Int(64000, help="Concurrent runs (as root) use uids uid_base + worker index: "
                   "RLIMIT_NPROC counts per uid.").tag(config=True)

    def run(self, argv: list[str], workdir: Path, *, uid: int | None = None, env: dict | None = None,
            extra_readonly: list[Path] = (), stdin: bytes | None = None) -> SandboxResult:
        """Run argv in the sandbox with `workdir` (which must exist) as its only writable folder.

        As root the code runs as `uid` (default 65534; give each concurrent run its own) and
        workdir is chowned to it. `env` is added to a minimal environment; HOME, TMPDIR and
        MPLCONFIGDIR point into workdir. `extra_readonly` paths are bound read-only.
        """
        problem = sandbox_problem()
        if problem and not self.allow_unsandboxed:
            raise SandboxUnavailable(problem)
        workdir = Path(workdir).resolve()
        (workdir / "tmp").mkdir(exist_ok=True)
        full_env = self.environment(workdir, env)
        info = report = (None, None)  # pipes (read end, write end) from bwrap and the reporter
        if problem:
            _warn_unsandboxed(problem)
            cmd, mounted = list(argv), []
        else:
            uid = NOBODY if uid is None else uid
            if os.geteuid() == 0:
                chown_tree(workdir, uid)
            info, report, readonly = os.pipe(), os.pipe(), _readonly_paths(extra_readonly)
            cmd = self._bwrap_argv(argv, workdir, uid, readonly, info_fd=info[1], report_fd=report[1])
            mounted = [*readonly, str(workdir)]

        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=full_env, cwd=workdir, start_new_session=True,
                                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=self._rlimits(),
                                pass_fds=[fd for fd in (info[1], report[1]) if fd is not None])
        for fd in (info[1], report[1]):
            if fd is not None:  # only bwrap and the reporter write there
                os.close(fd)
        output = _Output(self.output_mb * 2**20)
        threads = [threading.Thread(target=output.drain, args=(proc.stdout, output.out), daemon=True),
                   threading.Thread(target=output.drain, args=(proc.stderr, output.err), daemon=True)]
        if stdin is not None:
            threads.append(threading.Thread(target=_feed, args=(proc.stdin, stdin), daemon=True))
        for thread in threads:
            thread.start()
        init = _pidfd_of_init(info[0]) if not problem else None

        pidfd = os.pidfd_open(proc.pid)  # readable when bwrap exits
        timed_out = not select.select([pidfd], [], [], self.wall_seconds)[0]
        os.close(pidfd)
        if timed_out:  # bwrap's PID 1 dies with it (--die-with-parent), and with it the namespace
            os.killpg(proc.pid, signal.SIGKILL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait
        if init is not None:  # bwrap may exit before its PID 1; when that has exited, all has
            select.select([init], [], [], 10)
            os.close(init)
        if problem:  # no namespace: kill what is left in the process group (not what left it)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for thread in threads:
            thread.join(timeout=10)
        _remove_mount_points(workdir, mounted)

        cpu = usage.ru_utime + usage.ru_stime
        if not problem and (reported := _reported(report[0])):  # the command's own status and CPU
            status, cpu = reported[0], cpu + reported[1]
        code = os.waitstatus_to_exitcode(status)
        sig = -code if code < 0 else None
        if timed_out:
            limit = "wall_seconds"
        elif sig == signal.SIGXCPU or (sig == signal.SIGKILL and cpu >= self.cpu_seconds):
            limit = "cpu_seconds"  # SIGKILL: at the hard limit, if SIGXCPU was ignored
        elif sig == signal.SIGXFSZ:
            limit = "file_mb"  # (Python ignores SIGXFSZ and raises OSError EFBIG instead)
        else:
            limit = "output_mb" if output.overflow else None
        return SandboxResult(
            returncode=None if timed_out else code, signal=sig,
            stdout=output.out.decode(errors="replace"), stderr=output.err.decode(errors="replace"),
            limit=limit, message=limit_message(limit, self) if limit else "",
            wall_seconds=time.monotonic() - started, cpu_seconds=cpu)

    def start(self, argv: list[str], workdir: Path, *, uid: int, env: dict | None = None,
              stderr=subprocess.DEVNULL) -> tuple[subprocess.Popen, list[str]]:
        """Start a long-lived program in the sandbox and return at once (primer.grader.zygote).

        Its stdin and stdout are pipes to the caller. Unlike run(), nothing is chowned: the caller
        prepares `workdir` (whose tmp/ is /tmp inside) and says what the uid may write. Returns the
        process (bwrap; kill its process group to end the sandbox) and the mount points in it.
        Only where bubblewrap works (never unsandboxed).
        """
        problem = sandbox_problem()
        if problem:
            raise SandboxUnavailable(problem)
        workdir = Path(workdir).resolve()
        readonly = _readonly_paths(())
        cmd = self._bwrap_argv(argv, workdir, uid, readonly, info_fd=None, report_fd=None)
        full_env = {**self.environment(workdir), **(env or {})}  # (env may move HOME and the like)
        proc = subprocess.Popen(cmd, env=full_env, cwd=workdir, start_new_session=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                preexec_fn=self._rlimits())
        return proc, [*readonly, str(workdir)]

    def environment(self, workdir: Path, env: dict | None = None) -> dict:
        """The whole environment of the program inside: `env` and the limits, HOME etc. in workdir.
        (It reaches the program through bwrap's own environment, not --setenv: arguments are
        visible to every user of the host in /proc/*/cmdline.)"""
        return {"PATH": f"{Path(sys.prefix) / 'bin'}:/usr/bin:/bin", "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1", **(env or {}), "HOME": str(workdir),
                "TMPDIR": str(workdir / "tmp"), "MPLCONFIGDIR": str(workdir / ".matplotlib"),
                **{f"PRIMER_LIMIT_{name.upper()}": f"{getattr(self, name):g}" for name in LIMITS}}

    def _bwrap_argv(self, argv, workdir: Path, uid: int, readonly: list[str], *, info_fd: int | None,
                    report_fd: int | None) -> list[str]:
        cmd = [BWRAP, "--ro-bind", "/usr", "/usr"]
        for top in ("/bin", "/lib", "/lib64", "/sbin"):  # symlinks into /usr on merged-/usr systems
            if os.path.islink(top):
                cmd += ["--symlink", os.readlink(top), top]
            elif os.path.isdir(top):
                cmd += ["--ro-bind", top, top]
        # /tmp first: what is under /tmp (the workdir, a venv) is then mounted on it, not hidden by it
        cmd += ["--bind", str(workdir / "tmp"), "/tmp"]
        made = {"/", "/tmp"}
        for path in readonly:
            cmd += [*_parents(path, made), "--ro-bind", path, path]
        cmd += [*_parents(str(workdir), made), "--bind", str(workdir), str(workdir),
                "--proc", "/proc", "--dev", "/dev",
                # --dev's /dev/shm is root's: make it everyone's, and bounded (a tmpfs is RAM)
                "--perms", "1777", "--size", str(self.memory_mb * 2**20), "--tmpfs", "/dev/shm",
                # bwrap's tmpfs for / and /dev: read-only (for a user they would be its own, writable)
                "--remount-ro", "/", "--remount-ro", "/dev",
                *(UNSHARE_ROOT if os.geteuid() == 0 else UNSHARE_USER), "--die-with-parent",
                "--new-session", "--chdir", str(workdir),
                *(["--info-fd", str(info_fd)] if info_fd is not None else []), "--"]
        if os.geteuid() == 0:  # a uid change clears the parent-death signal: set it again
            cmd += [SETPRIV, f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                    "--inh-caps=-all", "--bounding-set=-all", "--pdeathsig=KILL", "--"]
        if report_fd is None:
            return cmd + list(argv)
        return cmd + [sys.executable, "-I", "-S", "-c", REPORTER, str(report_fd), *argv]

    def _rlimits(self):
        """The preexec_fn: nothing but setrlimit calls, on values computed beforehand."""
        mb, cpu = 2**20, self.cpu_seconds
        limits = [(resource.RLIMIT_AS, self.memory_mb * mb), (resource.RLIMIT_NPROC, self.processes),
                  (resource.RLIMIT_FSIZE, self.file_mb * mb), (resource.RLIMIT_NOFILE, self.open_files),
                  (resource.RLIMIT_CORE, 0)]

        def set_limits():
            for which, value in limits:
                resource.setrlimit(which, (value, value))
            # SIGXCPU at the limit; SIGKILL up to 5 s later (time for a handler to report it)
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + min(cpu, 5)))
        return set_limits


def limit_message(name: str, sandbox: Sandbox | None = None) -> str:
    """The sentence for the learner when limit `name` was hit: "used more than 4 GB of memory (...)".

    Without `sandbox` (in the program inside) the values come from PRIMER_LIMIT_<NAME>, set by run().
    """
    if sandbox is not None:
        v = getattr(sandbox, name)
    else:
        v = float(os.environ.get(f"PRIMER_LIMIT_{name.upper()}", Sandbox.class_traits()[name].default_value))
    size = f"{v / 1024:g} GB" if v >= 1024 and v % 1024 == 0 else f"{v:g} MB"
    text = {"memory_mb": f"used more than {size} of memory",
            "cpu_seconds": f"used more than {v:g} s of CPU time",
            "wall_seconds": f"ran longer than {v:g} s",
            "processes": f"started more than {v:g} processes or threads",
            "file_mb": f"tried to write a file larger than {size}",
            "open_files": f"had more than {v:g} files open at once",
            "output_mb": f"printed more than {size} (the rest was discarded)"}[name]
    return f"{text} (limit {name} in {CONFIG_FILE})"


def sandbox_problem() -> str | None:
    """None when this machine can sandbox; else what is wrong and how to fix it."""
    return _probe(BWRAP)


@functools.cache
def _probe(bwrap: str) -> str | None:
    unsafe = (f"Or set c.Sandbox.allow_unsandboxed = True in {CONFIG_FILE} to grade WITHOUT isolation "
              "(learner code can then read and change all that this user can), at your own risk.")
    if not os.access(bwrap, os.X_OK):
        return f"bubblewrap is not installed ({bwrap} is missing): `apt-get install bubblewrap`. {unsafe}"
    if os.geteuid() == 0 and not os.access(SETPRIV, os.X_OK):
        return f"setpriv is missing ({SETPRIV}): `apt-get install util-linux`. {unsafe}"
    # the namespaces and the newer options run() uses (--size and --disable-userns: bwrap >= 0.8)
    cmd = [bwrap, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--perms", "1777",
           "--size", "1048576", "--tmpfs", "/dev/shm", *(UNSHARE_ROOT if os.geteuid() == 0 else UNSHARE_USER),
           "--", "/bin/true"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap ({bwrap}) does not run: {e}. {unsafe}"
    if done.returncode != 0:
        why = done.stderr.strip() or f"exit code {done.returncode}"
        return (f"bubblewrap does not work here ({why}). It needs version 0.8 or later "
                "(Debian 12) and user namespaces: enable them (`sysctl kernel.unprivileged_userns_clone=1`; "
                "on Ubuntu 24.04 also `sysctl kernel.apparmor_restrict_unprivileged_userns=0`), or in a "
                f"container allow them (docker run --security-opt seccomp=unconfined). {unsafe}")
    return None


@functools.cache
def _warn_unsandboxed(problem: str) -> None:  # cached: warns once
    log.warning("Running learner code WITHOUT a sandbox (c.Sandbox.allow_unsandboxed = True): %s", problem)


class _Output:
    """stdout and stderr share one cap; past it, keep reading (the writer never blocks) but drop."""

    def __init__(self, cap: int):
        self.cap, self.kept, self.overflow = cap, 0, False
        self.out, self.err = bytearray(), bytearray()
        self.lock = threading.Lock()

    def drain(self, pipe, buf: bytearray) -> None:
        with pipe:
            while chunk := pipe.read1(1 << 16):
                with self.lock:
                    room = self.cap - self.kept
                    buf += chunk[:room]
                    self.kept += min(room, len(chunk))
                    self.overflow |= len(chunk) > room


def _feed(pipe, data: bytes) -> None:
    with contextlib.suppress(BrokenPipeError), pipe:  # the program need not read it all
        pipe.write(data)


def _pidfd_of_init(info_fd: int) -> int | None:
    """A pidfd of bwrap's PID 1, whose host pid bwrap writes to --info-fd (and then closes it)."""
    with os.fdopen(info_fd, "rb") as f:
        data = f.read()
    try:
        return os.pidfd_open(json.loads(data)["child-pid"])
    except (ValueError, KeyError, OSError):  # bwrap failed before starting it, or it is gone already
        return None


def _reported(fd: int) -> tuple[int, float] | None:
    """The reporter's "STATUS CPU_SECONDS". The code inside could write there too: check it."""
    with os.fdopen(fd, "rb") as f:
        words = f.read(100).split()
    try:
        status, cpu = int(words[0]), float(words[1])
        os.waitstatus_to_exitcode(status)  # raises ValueError if it is not a wait status
    except (ValueError, IndexError):
        return None
    return (status, cpu) if 0 <= cpu < 1e9 else None


def _readonly_paths(extra) -> list[str]:
    """What the sandbox sees read-only besides /usr. The package is an editable install, found by
    its path: its folder is bound, not the repository."""
    paths = [*(f"/etc/{name}" for name in ETC_FILES if os.path.exists(f"/etc/{name}")),
             sys.base_prefix, sys.prefix, Path(primer.__file__).parent, *extra]
    return list(dict.fromkeys(str(p) for p in paths))


def _parents(path: str, made: set[str]) -> list[str]:
    """--dir for the missing parents of a mount point, 0755: bwrap would make them 0700, which the
    uid inside could not traverse (to /root/.pyenv, say)."""
    args = []
    for parent in reversed(Path(path).parents):
        if str(parent) not in made:
            made.add(str(parent))
            args += ["--perms", "0755", "--dir", str(parent)]
    return args


def _remove_mount_points(workdir: Path, mounted: list[str]) -> None:
    """bwrap made empty folders in workdir/tmp (/tmp inside) to mount what is under /tmp: remove them."""
    for dest in map(Path, mounted):
        if dest.is_relative_to("/tmp") and dest != Path("/tmp"):
            path = workdir / "tmp" / dest.relative_to("/tmp")
            while path != workdir / "tmp":
                with contextlib.suppress(OSError):
                    path.rmdir()
                path = path.parent
