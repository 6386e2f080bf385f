"""Run a function on several gloo ranks from a notebook cell: `launch(fn, world_size, *args)`.

    results = launch(fn, 2, x, timeout=30)   # fn(rank, world_size, x) on ranks 0 and 1

Each rank is a process *forked* from the kernel, so `fn` may be a function defined in a notebook
cell (spawned processes would have to pickle it, which fails for cell-defined functions). Every
worker limits torch to one thread before anything else, joins a rendezvous store private to this
launch, initializes a gloo process group, runs `fn`, waits at a barrier for the other ranks and
sends back its return value, pickled by value (numpy arrays, Python objects, even tensors). What a
worker prints (Python, C++) appears in the cell after its rank; a C++ abort's dump, in one line.

Failures:
- a rank raises: every worker is killed and the rank's traceback is raised in the cell as
  `WorkerError` (a `NotImplementedError` stays a `NotImplementedError`);
- a rank waits longer than `timeout` for a message or collective (e.g. a blocking `send` on both
  ranks), or the launch outlives its deadline: every worker is killed and `DeadlockError` says so;
- the cell is interrupted (or a grader's alarm fires): every worker is killed before the exception
  propagates; a worker also dies by itself if the kernel dies (Linux) or if it outlives its
  deadline by several seconds. No orphaned processes either way.

The rendezvous store is a `FileStore` in a fresh temporary folder, not a `TCPStore` on a free port:
a TCPStore looks up the *name* of every peer (reverse DNS), and where the DNS server drops such
queries each lookup can stall for 5 s (the course's CI: one launch in ~13). A file needs no network.
"""

from __future__ import annotations

import builtins
import contextlib
import ctypes
import faulthandler
import io
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import warnings
from datetime import timedelta

import torch
import torch.distributed as dist

__all__ = ["DeadlockError", "WorkerError", "launch"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# The launch's deadline is the process group's timeout plus this, so that a rank stuck in a gloo
# operation can report where it was stuck before the launcher gives up on it.
_GRACE = 3.0
# After a rank reports that its peer vanished, wait this long for the report that explains why.
_SETTLE = 1.0

# What a rank's error says about the cause, most telling first.
_RAISED, _DIED, _TIMED_OUT, _PEER_GONE = 0, 1, 2, 3


class WorkerError(RuntimeError):
    """A rank raised an exception (or died); the message holds that rank's traceback."""

    def __init__(self, message: str, rank: int | None = None, remote_type: str | None = None):
        super().__init__(message)
        self.rank = rank
        self.remote_type = remote_type

    def _render_traceback_(self):  # IPython shows the rank's traceback, not the launcher's
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


class DeadlockError(TimeoutError):
    """The ranks did not finish in time: almost always a deadlock (a message nobody sends)."""

    def _render_traceback_(self):
        return [f"\x1b[31m{type(self).__name__}\x1b[0m: {self}"]


# --------------------------------------------------------------------------- the worker side


def _die_with_parent() -> None:
    """Linux: the kernel kills this worker when the process that forked it dies."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            PR_SET_PDEATHSIG = 1
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def _redirect_output(fd: int) -> None:
    """Send this worker's stdout and stderr (Python and C++ alike) into the parent's pipe."""
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", closefd=False), line_buffering=True)


def _learner_line(frames: traceback.StackSummary) -> str:
    """' (line N of your code: ...)' for the innermost frame outside the course package, the
    installed packages (torch, numpy, ...) and the standard library."""
    site_packages = os.path.dirname(os.path.dirname(torch.__file__))
    roots = (_PACKAGE_DIR, site_packages, os.path.dirname(os.__file__))
    mine = [f for f in frames if not f.filename.startswith(roots)]
    if not mine:
        return ""
    f = mine[-1]
    where = "your code" if ("ipykernel" in f.filename or f.filename.startswith("<")) \
        else os.path.basename(f.filename)
    return f" (line {f.lineno} of {where}: {(f.line or '').strip()})"


def _kind(exc: BaseException) -> int:
    if not isinstance(exc, RuntimeError):
        return _RAISED
    text = str(exc).lower()
    if "timed out" in text or "timeout" in text:
        return _TIMED_OUT
    if any(s in text for s in ("closed by peer", "reset by peer", "broken pipe", "connection closed")):
        return _PEER_GONE
    return _RAISED


def _error_payload(exc: BaseException) -> dict:
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # the launcher's own frames say nothing to the learner
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    return {"kind": _kind(exc), "type": type(exc).__name__, "message": str(exc),
            "traceback": text, "where": _learner_line(traceback.extract_tb(tb)),
            "not_implemented": isinstance(exc, NotImplementedError)}


def _worker(rank, world_size, store_path, timeout, fn, args, conn, out_fd, fds_to_close) -> None:
    # First: no multithreaded torch op may run in a child forked after the parent ran one
    # (libgomp's thread pool does not survive fork), and two ranks share two cores.
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    for fd in fds_to_close:  # the parent's ends of the pipes, and the other ranks' ends
        with contextlib.suppress(OSError):
            os.close(fd)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles interrupts
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)  # the last resort: die after the deadline
    signal.alarm(int(math.ceil(timeout + 2 * _GRACE + 5)))
    _die_with_parent()
    _redirect_output(out_fd)
    faulthandler.disable()  # pytest's or the kernel's would dump the parent's stack on a crash
    caught: list = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            store = dist.FileStore(store_path, world_size)
            dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size,
                                    timeout=timedelta(seconds=timeout))
            result = fn(rank, world_size, *args)
            # No rank leaves before every rank is done: a message still in flight from this
            # rank to a slower one must not be lost when this process exits.
            if dist.is_initialized():
                dist.barrier()
        payload = {"ok": True, "result": result}
    except BaseException as exc:  # noqa: BLE001 (everything goes back to the parent)
        payload = {"ok": False, "error": _error_payload(exc)}
    payload["warnings"] = list(dict.fromkeys((w.category.__name__, str(w.message)) for w in caught))
    try:
        data = pickle.dumps(payload)  # plain pickle: tensors by value, not shared memory
    except Exception as exc:
        data = pickle.dumps({"ok": False, "warnings": payload["warnings"], "error": {
            "kind": _RAISED, "type": type(exc).__name__, "traceback": "", "where": "",
            "not_implemented": False,
            "message": f"its return value could not be sent to the notebook ({exc}); return "
                       "numbers, lists, dicts or numpy arrays"}})
    sys.stdout.flush()
    sys.stderr.flush()
    conn.send_bytes(data)
    conn.close()


# --------------------------------------------------------------------------- the parent side


class _Output:
    """Forwards the workers' output to the cell, line by line, prefixed with the rank."""

    def __init__(self, fds: list[int]):
        self.open = dict(enumerate(fds))
        self.partial = {rank: b"" for rank in self.open}
        self.last = {rank: [] for rank in self.open}  # each rank's last few lines
        self.held: dict[int, list[str]] = {}  # a C++ abort's lines, named after the verdict

    def last_words(self, rank: int, said: list[str] | None = None) -> str:
        """What a crashed rank said last (a C++ abort says why in its `what():` line)."""
        lines = [s.strip() for s in (self.last[rank] if said is None else said) if s.strip()]
        said = next((s[len("what():"):] for s in reversed(lines) if s.startswith("what():")),
                    lines[-1] if lines else "")
        return re.sub(r"^\[(enforce fail at )?[^\]\s]+:\d+\]\s*", "", said.strip())

    def read(self, ready) -> None:
        for rank, fd in list(self.open.items()):
            if fd in ready:
                self._read(rank, fd)

    def drain(self) -> None:
        """Everything left, once the workers are gone."""
        for rank, fd in list(self.open.items()):
            with contextlib.suppress(OSError):
                os.set_blocking(fd, False)
                while rank in self.open:
                    self._read(rank, fd)

    def _read(self, rank: int, fd: int) -> None:
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:  # when draining: nothing more will come
            data = b""
        if not data:
            if self.partial[rank]:
                self._print(rank, self.partial[rank])
            self.partial[rank] = b""
            del self.open[rank]
            return
        lines = (self.partial[rank] + data).split(b"\n")
        self.partial[rank] = lines.pop()
        for line in lines:
            self._print(rank, line)

    def _print(self, rank: int, line: bytes) -> None:
        text = line.decode(errors="replace")
        self.last[rank] = (self.last[rank] + [text])[-5:]
        if rank in self.held or text.startswith("terminate called after throwing"):
            return self.held.setdefault(rank, []).append(text)
        print(f"[rank {rank}] {text}", file=sys.stdout, flush=True)

    def aborts(self, besides: int | None = None) -> str:
        """A line for each rank but `besides` whose C++ code aborted: what it said (what():)."""
        return "\n".join(f"rank {rank} then aborted in gloo's C++ code ({len(held)} lines of output "
                         f"not shown): {self.last_words(rank, held)}"
                         for rank, held in sorted(self.held.items()) if rank != besides)


def _kill(processes) -> None:
    for p in processes:
        if p.exitcode is None:
            with contextlib.suppress(Exception):
                os.kill(p.pid, signal.SIGKILL)
    for p in processes:
        with contextlib.suppress(Exception):
            p.join(timeout=5)


def _died(process) -> dict:
    process.join(timeout=1)
    code = process.exitcode
    how = (f"was killed by signal {signal.Signals(-code).name}" if code is not None and code < 0
           else f"exited with status {code}")
    return {"kind": _DIED, "type": "", "traceback": "", "where": "", "not_implemented": False,
            "message": how}


def _raise(rank: int, world_size: int, error: dict, timeout: float, output: _Output):
    aborts = output.aborts(besides=rank)  # other ranks' C++ aborts: a consequence, after the cause
    tb = (f"\n\nTraceback on rank {rank}:\n{error['traceback']}" if error["traceback"] else "") \
        + (f"\n\n{aborts}" if aborts else "")
    if error["kind"] == _TIMED_OUT:
        raise DeadlockError(
            f"deadlock: rank {rank} of {world_size} waited {timeout:g} s for a message or a "
            f"collective that no other rank matched{error['where']}. Every send needs a "
            "matching recv on the other rank, a blocking send on both ranks at once waits "
            "forever (use isend + recv), and every rank must call the same collectives in the "
            f"same order.{tb}")
    if error["kind"] == _DIED:
        said = output.last_words(rank)
        raise WorkerError(f"rank {rank} of {world_size} died (its process {error['message']}): "
                          + (said or "it crashed, called os._exit, or ran out of memory")
                          + (f"\n{aborts}" if aborts else ""), rank)
    # gloo prefixes its messages with the C++ source line: "[.../pair.cc:553] Connection ..."
    text = re.sub(r"^\[[^\]\s]+:\d+\]\s*", "", error["message"])
    first, _, rest = f"{error['type']}: {text}".rstrip().partition("\n")
    message = f"rank {rank} of {world_size} raised {first}{error['where']}"
    message += (f"\n{rest}" if rest else "") + tb
    worker_error = WorkerError(message, rank, error["type"])
    if error["not_implemented"]:
        raise NotImplementedError(error["message"]) from worker_error
    raise worker_error


def _rewarn(items) -> None:
    for category, message in items:
        cls = getattr(builtins, category, None)
        if not (isinstance(cls, type) and issubclass(cls, Warning)):
            cls = UserWarning
        warnings.warn(message, cls, stacklevel=3)


def _import_lazy_modules() -> None:
    """torch imports some modules on first use; DDP's constructor and every optimizer's first
    step import torch._dynamo (seconds). Imported once here, before forking, they cost the
    workers nothing; imported in each worker, they would cost every launch again."""
    if "torch._dynamo" not in sys.modules:
        with contextlib.suppress(Exception):
            import torch._dynamo  # noqa: F401


def launch(fn, world_size: int, *args, timeout: float = 60.0) -> list:
    """Run `fn(rank, world_size, *args)` on `world_size` gloo ranks; return the ranks' results.

    `timeout` (seconds) is the process group's timeout: a send, recv or collective that waits
    longer fails, and the launch reports a deadlock. The whole launch gets `timeout` plus a few
    seconds. Returns the values `fn` returned, in rank order.
    """
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    if dist.is_available() and dist.is_initialized():
        raise RuntimeError("launch() cannot fork while this process holds a process group; call "
                           "torch.distributed.destroy_process_group() first")
    _import_lazy_modules()
    ctx = multiprocessing.get_context("fork")  # named explicitly: Python 3.14 changes the default
    tmp = tempfile.mkdtemp(prefix="primer-launch-")
    store_path = os.path.join(tmp, "store")
    processes: list = []
    readers: list = []
    out_fds: list[int] = []
    try:
        pipes = [ctx.Pipe(duplex=False) for _ in range(world_size)]
        outs = [os.pipe() for _ in range(world_size)]
        everyone = [c.fileno() for pair in pipes for c in pair] + [fd for pair in outs for fd in pair]
        readers = [reader for reader, _ in pipes]
        out_fds = [r for r, _ in outs]
        with warnings.catch_warnings():  # Python ≥ 3.12 warns about forking a threaded process
            warnings.filterwarnings("ignore", message=r".*fork\(\) may lead to deadlocks",
                                    category=DeprecationWarning)
            for rank in range(world_size):
                mine = (pipes[rank][1].fileno(), outs[rank][1])
                # Not daemonic, so that a rank may start processes of its own (DataLoader
                # workers); the parent kills every rank in any case (the finally below).
                p = ctx.Process(target=_worker, name=f"primer-rank-{rank}", daemon=False, args=(
                    rank, world_size, store_path, timeout, fn, args, pipes[rank][1],
                    outs[rank][1], [fd for fd in everyone if fd not in mine]))
                p.start()
                processes.append(p)
        for rank in range(world_size):  # the parent keeps only the reading ends
            pipes[rank][1].close()
            os.close(outs[rank][1])
        return _supervise(processes, readers, _Output(out_fds), world_size, timeout)
    finally:
        _kill(processes)  # also on KeyboardInterrupt, or the grader's alarm
        for fd in out_fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        for conn in readers:
            with contextlib.suppress(OSError):
                conn.close()
        shutil.rmtree(tmp, ignore_errors=True)


def _supervise(processes, readers, output: _Output, world_size: int, timeout: float) -> list:
    deadline = time.monotonic() + timeout + _GRACE
    results: dict[int, object] = {}
    errors: dict[int, dict] = {}
    warned: list = []
    first_error_at = None
    while len(results) + len(errors) < world_size:
        now = time.monotonic()
        if now >= deadline:
            break
        if errors:
            if min(e["kind"] for e in errors.values()) < _PEER_GONE or now >= first_error_at + _SETTLE:
                break
        pending = [r for r in range(world_size) if r not in results and r not in errors]
        waiting = [readers[r] for r in pending] + [processes[r].sentinel for r in pending]
        waiting += list(output.open.values())
        ready = multiprocessing.connection.wait(waiting, timeout=min(deadline - now, 0.5))
        output.read(ready)
        for rank in pending:
            if readers[rank] in ready:
                try:
                    payload = pickle.loads(readers[rank].recv_bytes())
                except (EOFError, OSError):
                    errors[rank] = _died(processes[rank])
                    continue
                warned += payload.get("warnings", [])
                if payload["ok"]:
                    results[rank] = payload["result"]
                else:
                    errors[rank] = payload["error"]
            elif processes[rank].sentinel in ready and not readers[rank].poll():
                errors[rank] = _died(processes[rank])
        if errors and first_error_at is None:
            first_error_at = time.monotonic()
    _kill(processes)
    output.drain()  # what the ranks printed before they were stopped
    _rewarn(dict.fromkeys(map(tuple, warned)))
    if errors:
        rank = min(errors, key=lambda r: (errors[r]["kind"], r))
        _raise(rank, world_size, errors[rank], timeout, output)
    if len(results) < world_size:
        missing = [r for r in range(world_size) if r not in results]
        raise DeadlockError(
            f"deadlock (or code far too slow): rank{'s' * (len(missing) > 1)} "
            f"{', '.join(map(str, missing))} of {world_size} still running after "
            f"{timeout + _GRACE:g} s. Look for a blocking send that both ranks execute at once, a "
            "recv without a matching send, a collective that not every rank calls, or a loop "
            "that never ends.")
    if output.held:  # a rank aborted as it left: say so, in a line
        print(output.aborts(), file=sys.stdout, flush=True)
    return [results[r] for r in range(world_size)]
