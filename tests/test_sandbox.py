"""primer.grader.sandbox: isolation, limits and clean-up, each shown by a small program run inside.

Programs are `python -c` snippets (no torch, except the one test that imports it). Each run gets
its own uid, as concurrent grading runs do. Programs that leave processes behind carry a unique
marker in their command line, which must be gone from /proc/*/cmdline when run() returns.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import signal
import socket
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

import primer
from primer.grader import sandbox
from primer.grader.sandbox import Sandbox, SandboxUnavailable, limit_message, sandbox_problem

pytestmark = pytest.mark.skipif(not os.access(sandbox.BWRAP, os.X_OK), reason="apt-get install bubblewrap")

REPO = Path(__file__).resolve().parent.parent
ROOT = os.geteuid() == 0
# uids of their own, away from the graders' uid_base + worker (and per pytest-xdist worker)
_XDIST_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:])
_uids = itertools.count(Sandbox().uid_base + 900 + 100 * _XDIST_WORKER)
CONFIG = "(limit {} in autograder/nbgrader_config.py)"


def run(code: str, workdir: Path, sb: Sandbox | None = None, **kwargs) -> tuple[sandbox.SandboxResult, int]:
    """Run a Python snippet in the sandbox as a fresh uid; return the result and the uid."""
    uid = next(_uids)
    result = (sb or Sandbox(wall_seconds=30)).run(["python", "-c", textwrap.dedent(code)], workdir,
                                                   uid=uid, **kwargs)
    return result, uid


def leftovers(marker: str) -> list[str]:
    """Host processes whose command line contains marker."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes() if proc.name.isdigit() else b""
        except OSError:  # it ended meanwhile
            continue
        if marker.encode() in cmdline:
            found.append(f"{proc.name}: {cmdline[:100]!r}")
    return found


def test_this_machine_can_sandbox():
    assert sandbox_problem() is None


def test_network_is_loopback_only(tmp_path):
    host = socket.create_server(("127.0.0.1", 0))  # a host service the sandbox must not reach
    host.setblocking(False)
    result, _ = run(f"""
        import json, socket
        def attempt(address):
            s = socket.socket()
            s.settimeout(3)
            try:
                s.connect(address)
                return "connected"
            except OSError as e:
                return f"{{type(e).__name__}} {{e.errno}}"
        server = socket.create_server(("127.0.0.1", 0))  # inside: processes may talk to each other
        print(json.dumps({{"host": attempt(("127.0.0.1", {host.getsockname()[1]})),
                          "internet": attempt(("1.1.1.1", 53)),
                          "inside": attempt(server.getsockname()),
                          "localhost": socket.gethostbyname("localhost")}}))
        """, tmp_path)
    with host, pytest.raises(BlockingIOError):
        host.accept()  # nothing arrived
    assert json.loads(result.stdout) == {"host": f"ConnectionRefusedError {errno.ECONNREFUSED}",
                                         "internet": f"OSError {errno.ENETUNREACH}",
                                         "inside": "connected", "localhost": "127.0.0.1"}


def test_own_pid_namespace(tmp_path):
    result, _ = run("""
        import os
        print(os.getpid(), sorted(int(p) for p in os.listdir("/proc") if p.isdigit()))
        """, tmp_path)
    pid, pids = result.stdout.split(" ", 1)
    # 1 is bwrap, 2 the reporter, 3 this program: no host process is visible
    assert (int(pid), json.loads(pids)) == (3, [1, 2, 3])


def test_runs_as_the_given_uid_without_privileges(tmp_path):
    venv_file = Path(sys.prefix) / "pyvenv.cfg"
    assert venv_file.stat().st_uid == 0
    result, uid = run(f"""
        import errno, os
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), status["CapEff"].strip(),
              status["CapBnd"].strip(), status["NoNewPrivs"].strip())
        for attempt in (lambda: open({str(venv_file)!r}, "a"), lambda: os.setuid(0),
                        lambda: os.chown(".", 0, 0)):
            try:
                attempt()
                print("allowed")
            except OSError as e:
                print(errno.errorcode[e.errno])
        """, tmp_path)
    expected = uid if ROOT else os.getuid()
    assert result.stdout.splitlines() == [
        f"{expected} {expected} {expected if ROOT else os.getgid()} [] 0000000000000000 0000000000000000 1",
        "EACCES",  # not EROFS: the permission check refuses before the read-only mount would
        "EPERM", "EPERM"]
    assert tmp_path.stat().st_uid == expected  # chowned, so that it can write there


def test_sees_only_the_whitelist_and_writes_only_workdir(tmp_path):
    home = Path.home()
    secret = home / f".primer-sandbox-test-{uuid.uuid4().hex}"
    secret.write_text("secret")
    package, venv = Path(primer.__file__).parent, Path(sys.prefix)
    try:
        result, uid = run(f"""
            import errno, os
            def write(path):
                try:
                    open(path, "w").write("x")
                    return "ok"
                except OSError as e:
                    return errno.errorcode[e.errno]
            print(sorted(os.listdir({str(REPO)!r})))
            for path in ["autograder", "solutions", "submitted", "autograded", "notebooks", "README.md"]:
                print(path, os.path.exists(os.path.join({str(REPO)!r}, path)))
            print(os.path.exists({str(secret)!r}), os.path.isdir({str(home)!r}) and os.listdir({str(home)!r}))
            for path in [{str(package / "x.py")!r}, {str(venv / "x")!r}, "/usr/x", "/etc/x", "/x",
                         "here.txt", "/tmp/there.txt", "/dev/shm/shared"]:
                print(path, write(path))
            print(os.getcwd(), os.environ["HOME"], os.environ["TMPDIR"])
            """, tmp_path)
    finally:
        secret.unlink()
    # in the home folder (root's: /root) only what leads to a bound path, here the Python installation
    in_home = sorted({Path(p).relative_to(home).parts[0] for p in (sys.base_prefix, sys.prefix, package)
                      if Path(p).is_relative_to(home)})
    assert result.stdout.splitlines() == [
        str(sorted({"primer", *(venv.relative_to(REPO).parts[:1] if venv.is_relative_to(REPO) else ())})),
        *(f"{p} False" for p in ["autograder", "solutions", "submitted", "autograded", "notebooks",
                                 "README.md"]),
        f"False {in_home or False}",
        f"{package / 'x.py'} EROFS", f"{venv / 'x'} EROFS", "/usr/x EROFS",
        "/etc/x EROFS", "/x EROFS",
        "here.txt ok", "/tmp/there.txt ok", "/dev/shm/shared ok",
        f"{tmp_path} {tmp_path} {tmp_path / 'tmp'}"], result.stderr
    # /tmp inside is workdir/tmp, and the mount points bwrap made there (tmp_path is under /tmp) are gone
    assert os.listdir(tmp_path / "tmp") == ["there.txt"]
    assert (tmp_path / "here.txt").read_text() == "x"
    assert (tmp_path / "here.txt").stat().st_uid == (uid if ROOT else os.getuid())
    assert not (package / "x.py").exists() and not (venv / "x").exists()


def test_rlimits_and_environment_inside(tmp_path, monkeypatch):
    sb = Sandbox(memory_mb=3000, cpu_seconds=77, wall_seconds=30, processes=99, file_mb=12, open_files=321)
    monkeypatch.setenv("PRIMER_HOST_ONLY", "1")  # the host's environment does not reach the sandbox
    result, _ = run("""
        import json, os, resource, sys
        for name in ["AS", "CPU", "NPROC", "FSIZE", "NOFILE", "CORE"]:
            print(name, *resource.getrlimit(getattr(resource, "RLIMIT_" + name)))
        print(sorted(k for k in os.environ if k != "PWD"))
        print(os.environ["FOO"], os.environ["MPLCONFIGDIR"], sys.stdin.read())
        print(json.dumps({k: v for k, v in os.environ.items() if k.startswith("PRIMER_LIMIT_")}))
        """, tmp_path, sb, env={"FOO": "bar"}, stdin=b"from stdin")
    mb = 2**20
    *lines, limits = result.stdout.splitlines()
    assert lines == [
        f"AS {3000 * mb} {3000 * mb}", "CPU 77 82", "NPROC 99 99", f"FSIZE {12 * mb} {12 * mb}",
        "NOFILE 321 321", "CORE 0 0",
        str(sorted(["FOO", "HOME", "LANG", "MPLCONFIGDIR", "PATH", "PYTHONDONTWRITEBYTECODE", "TMPDIR",
                    *(f"PRIMER_LIMIT_{name.upper()}" for name in sandbox.LIMITS)])),
        f"bar {tmp_path / '.matplotlib'} from stdin"], result.stderr
    assert (result.returncode, result.signal, result.limit, result.message) == (0, None, None, "")
    # the program inside words its limits (memory_mb, say) from this environment, as run() does
    for name, value in json.loads(limits).items():
        monkeypatch.setenv(name, value)
    assert [limit_message(n) for n in sandbox.LIMITS] == [limit_message(n, sb) for n in sandbox.LIMITS]
    assert limit_message("memory_mb") == "used more than 3000 MB of memory " + CONFIG.format("memory_mb")


def test_limit_messages():
    sb = Sandbox(memory_mb=4096, cpu_seconds=300, wall_seconds=900, processes=256, file_mb=256,
                 open_files=1024, output_mb=4)
    assert {name: limit_message(name, sb) for name in sandbox.LIMITS} == {
        "memory_mb": "used more than 4 GB of memory " + CONFIG.format("memory_mb"),
        "cpu_seconds": "used more than 300 s of CPU time " + CONFIG.format("cpu_seconds"),
        "wall_seconds": "ran longer than 900 s " + CONFIG.format("wall_seconds"),
        "processes": "started more than 256 processes or threads " + CONFIG.format("processes"),
        "file_mb": "tried to write a file larger than 256 MB " + CONFIG.format("file_mb"),
        "open_files": "had more than 1024 files open at once " + CONFIG.format("open_files"),
        "output_mb": "printed more than 4 MB (the rest was discarded) " + CONFIG.format("output_mb")}
    # without a Sandbox (the program inside): from PRIMER_LIMIT_*, else the defaults
    assert limit_message("memory_mb") == limit_message("memory_mb", Sandbox())


def test_exit_codes_and_signals(tmp_path):
    codes = [run(code, tmp_path)[0] for code in
             ["raise SystemExit(3)", "raise SystemExit(137)", "import os; os.kill(os.getpid(), 9)"]]
    assert [(r.returncode, r.signal, r.limit) for r in codes] == [(3, None, None), (137, None, None),
                                                                  (-9, 9, None)]


def test_wall_timeout_kills_everything(tmp_path):
    marker = uuid.uuid4().hex
    started = time.monotonic()
    result, _ = run(f"""
        import os, signal
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM, signal.SIGHUP):
            signal.signal(s, signal.SIG_IGN)
        os.fork()  # two of them  # {marker}
        print("looping", flush=True)
        while True:
            pass
        """, tmp_path, Sandbox(wall_seconds=1.5))
    assert time.monotonic() - started < 5
    assert (result.returncode, result.signal, result.limit) == (None, signal.SIGKILL, "wall_seconds")
    assert result.message == "ran longer than 1.5 s " + CONFIG.format("wall_seconds")
    assert result.stdout == "looping\nlooping\n"
    assert 1.5 <= result.wall_seconds < 5
    assert leftovers(marker) == []


def test_cpu_limit(tmp_path):
    result, _ = run("while True: pass", tmp_path, Sandbox(cpu_seconds=1, wall_seconds=20))
    assert (result.returncode, result.signal, result.limit) == (-24, signal.SIGXCPU, "cpu_seconds")
    assert result.message == "used more than 1 s of CPU time " + CONFIG.format("cpu_seconds")
    assert 0.9 < result.cpu_seconds < 2


def test_cpu_limit_when_sigxcpu_is_ignored(tmp_path):
    # then the hard limit kills it, min(cpu_seconds, 5) s later
    result, _ = run("""
        import signal
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)
        while True:
            pass
        """, tmp_path, Sandbox(cpu_seconds=1, wall_seconds=30))
    assert (result.returncode, result.signal, result.limit) == (-9, signal.SIGKILL, "cpu_seconds")
    assert 1.8 < result.cpu_seconds < 3  # 1 + 1 s (CPU time is counted in ticks)


def test_output_is_capped_and_never_blocks(tmp_path):
    started = time.monotonic()
    result, _ = run("""
        import sys
        sys.stdout.write("x" * 100_000_000)  # one line of 100 MB
        sys.stdout.flush()
        print("done", file=sys.stderr)
        """, tmp_path, Sandbox(output_mb=1, wall_seconds=30))
    assert time.monotonic() - started < 10
    assert (result.returncode, result.limit) == (0, "output_mb")
    assert result.stdout == "x" * 2**20 and result.stderr == ""  # the cap is for both together
    assert result.message == "printed more than 1 MB (the rest was discarded) " + CONFIG.format("output_mb")


def test_file_size_limit(tmp_path):
    result, _ = run("""
        import errno
        try:
            with open("big", "wb") as f:
                f.write(b"x" * (3 * 2**20))
        except OSError as e:
            print(errno.errorcode[e.errno])
        """, tmp_path, Sandbox(file_mb=2, wall_seconds=30))
    assert result.stdout == "EFBIG\n"
    assert (tmp_path / "big").stat().st_size == 2 * 2**20


def test_fork_bomb_is_bounded(tmp_path):
    marker = uuid.uuid4().hex
    result, _ = run(f"""
        import errno, os, signal
        n = 0
        try:
            while True:
                if os.fork() == 0:
                    signal.pause()  # {marker}
                n += 1
        except OSError as e:
            print(n, errno.errorcode[e.errno])
        """, tmp_path, Sandbox(processes=40, wall_seconds=30))
    forks, error = result.stdout.split()
    # 40 processes of this uid: this program, its reporter (when root) and the children
    assert (error, int(forks)) == ("EAGAIN", 38 if ROOT else int(forks)), result.stderr
    assert int(forks) < 40
    assert leftovers(marker) == []


def test_detached_process_is_gone_after_run(tmp_path):
    marker = uuid.uuid4().hex
    started = time.monotonic()
    result, _ = run(f"""
        import os, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:  # a daemon: no parent, own session, stdout closed
                os.close(1)
                os.close(2)
                open("daemon.pid", "w").write(str(os.getpid()))
                time.sleep(60)  # {marker}
            os._exit(0)
        while not os.path.exists("daemon.pid"):
            time.sleep(0.01)
        """, tmp_path)
    assert time.monotonic() - started < 5
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "daemon.pid").exists()
    assert leftovers(marker) == []


def test_refuses_when_it_cannot_sandbox(tmp_path, monkeypatch):
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    problem = sandbox_problem()
    assert problem.startswith("bubblewrap is not installed (/nonexistent/bwrap is missing): "
                              "`apt-get install bubblewrap`. Or set c.Sandbox.allow_unsandboxed = True")
    with pytest.raises(SandboxUnavailable) as e:
        Sandbox().run(["python", "-c", "print('ran')"], tmp_path)
    assert str(e.value) == problem
    assert list(tmp_path.iterdir()) == []


def test_unsandboxed_keeps_the_limits(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(sandbox, "BWRAP", "/nonexistent/bwrap")
    sandbox._warn_unsandboxed.cache_clear()
    sb = Sandbox(allow_unsandboxed=True, wall_seconds=1, file_mb=5, output_mb=1)
    code = """
        import os, resource, signal
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(resource.getrlimit(resource.RLIMIT_FSIZE), os.getcwd(), os.environ["HOME"], flush=True)
        while True:
            pass
        """
    with caplog.at_level(logging.WARNING, logger=sandbox.__name__):
        results = [run(code, tmp_path, sb)[0] for _ in range(2)]
    assert len(caplog.records) == 1  # warned once
    assert "WITHOUT a sandbox" in caplog.records[0].getMessage()
    for result in results:
        assert (result.returncode, result.signal, result.limit) == (None, signal.SIGKILL, "wall_seconds")
        assert result.stdout == f"({5 * 2**20}, {5 * 2**20}) {tmp_path} {tmp_path}\n"


def test_torch_imports_under_default_limits(tmp_path):
    result, _ = run("""
        import torch
        x = torch.ones(100, 100)
        print(torch.__version__, (x @ x).sum().item())
        """, tmp_path, Sandbox())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[1] == "1000000.0"


def test_extra_readonly_under_tmp(tmp_path):
    # tmp_path is under /tmp, which inside is workdir/tmp: what is bound there must stay visible
    data, workdir = tmp_path / "data", tmp_path / "work"
    data.mkdir()
    workdir.mkdir()
    (data / "cases.txt").write_text("1 2 3")
    result, _ = run(f"""
        import errno
        print(open({str(data / "cases.txt")!r}).read())
        try:
            open({str(data / "new.txt")!r}, "w")
        except OSError as e:
            print(errno.errorcode[e.errno])
        """, workdir, extra_readonly=[data])
    assert result.stdout == "1 2 3\nEROFS\n", result.stderr
    assert list((workdir / "tmp").iterdir()) == []  # the mount points bwrap made there are gone
