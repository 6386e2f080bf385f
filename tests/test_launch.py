"""primer.launch: results, errors, deadlocks, concurrency, interrupts and orphans.

Every test that starts processes has a deadline: the launcher's own (`timeout`), and for the
tests that run a script in a subprocess, `subprocess` timeouts. None of them can hang.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from primer.grading import LearnerTimeout, _deadline
from primer.launch import DeadlockError, WorkerError, launch
from tests.helpers import REPO


def _alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _children() -> list[int]:
    """Live child processes of this process (Linux)."""
    me, found = os.getpid(), []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (FileNotFoundError, ProcessLookupError):
                continue
            if int(fields[1]) == me and fields[0] != "Z":
                found.append(int(entry))
    return found


@pytest.fixture(autouse=True)
def no_orphans():
    before = set(_children())
    yield
    deadline = time.monotonic() + 5
    while set(_children()) - before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_children()) - before, "a launch left worker processes behind"


# --------------------------------------------------------------------------- results


def test_results_in_rank_order_as_python_and_numpy():
    scale = 10.0  # a closure: forked workers see it without pickling

    def fn(rank, world_size, offset):
        t = torch.full((3,), float(rank) * scale + offset)
        dist.all_reduce(t)
        return {"rank": rank, "world": world_size, "sum": t.numpy(), "tensor": t * 2}

    results = launch(fn, 3, 1.0, timeout=20)
    assert [r["rank"] for r in results] == [0, 1, 2]
    assert all(r["world"] == 3 for r in results)
    for r in results:
        np.testing.assert_array_equal(r["sum"], np.full(3, 33.0, dtype=np.float32))
        torch.testing.assert_close(r["tensor"], torch.full((3,), 66.0))  # a tensor, by value


def test_the_kernels_signal_handlers_are_left_alone():
    # torch.distributed.elastic launchers install SIGINT/SIGTERM handlers in the caller and leave
    # them there; launch() forks instead, and the kernel's handlers must survive it.
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM)}
    launch(lambda rank, world_size: rank, 2, timeout=20)
    assert {s: signal.getsignal(s) for s in before} == before


def test_one_rank_and_one_thread_per_worker():
    def fn(rank, world_size):
        return torch.get_num_threads(), dist.get_world_size()

    assert launch(fn, 1, timeout=20) == [(1, 1)]


def test_output_and_warnings_reach_the_cell(capsys):
    def fn(rank, world_size):
        print(f"hello from {rank}")
        print("to stderr", file=sys.stderr)
        warnings.warn("careful", FutureWarning)
        return rank

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert launch(fn, 2, timeout=20) == [0, 1]
    out, err = capsys.readouterr()
    assert "[rank 0] hello from 0" in out and "[rank 1] hello from 1" in out
    assert "[rank 1] to stderr" in out and err == ""  # nothing on stderr: graded cells keep points
    assert [str(w.message) for w in caught] == ["careful"]
    assert caught[0].category is FutureWarning


# --------------------------------------------------------------------------- failures


def test_a_raising_rank_brings_its_traceback_back():
    def fn(rank, world_size):
        if rank == 1:
            raise ValueError("bad shard on purpose")
        dist.barrier()  # rank 0 would wait for rank 1 forever
        return rank

    start = time.monotonic()
    with pytest.raises(WorkerError) as info:
        launch(fn, 2, timeout=20)
    assert time.monotonic() - start < 10  # reported at once, not after the timeout
    message = str(info.value)
    first = message.splitlines()[0]
    assert first.startswith("rank 1 of 2 raised ValueError: bad shard on purpose")
    assert "raise ValueError" in first  # the line of the learner's code
    assert "Traceback on rank 1" in message and "in fn" in message
    assert info.value.rank == 1


def test_not_implemented_stays_not_implemented():
    def fn(rank, world_size):
        raise NotImplementedError()

    with pytest.raises(NotImplementedError) as info:
        launch(fn, 2, timeout=20)
    assert str(info.value) == ""  # the grader recognizes a released stub by this
    assert isinstance(info.value.__cause__, WorkerError)


def test_blocking_sends_on_both_ranks_are_a_deadlock():
    def fn(rank, world_size):
        dist.send(torch.ones(16), dst=1 - rank)
        dist.recv(torch.empty(16), src=1 - rank)

    start = time.monotonic()
    with pytest.raises(DeadlockError) as info:
        launch(fn, 2, timeout=3)
    assert time.monotonic() - start < 3 + 3 + 2
    first = str(info.value).splitlines()[0]
    assert first.startswith("deadlock") and "dist.send" in first


def test_a_loop_that_never_ends_is_stopped():
    def fn(rank, world_size):
        while True:
            pass

    start = time.monotonic()
    with pytest.raises(DeadlockError, match="deadlock"):
        launch(fn, 2, timeout=1)
    assert time.monotonic() - start < 1 + 3 + 2


def test_a_rank_that_dies_is_reported():
    def fn(rank, world_size):
        if rank == 0:
            os._exit(3)
        dist.barrier()

    with pytest.raises(WorkerError, match=r"^rank 0 of 2 died \(its process exited with status 3\)"):
        launch(fn, 2, timeout=20)


def test_a_crash_in_gloo_says_why():
    def fn(rank, world_size):  # the ranks disagree on the message size: gloo aborts
        if rank == 0:
            dist.send(torch.ones(4), dst=1)
        else:
            dist.recv(torch.empty(3), src=0)

    with pytest.raises(WorkerError) as info:
        launch(fn, 2, timeout=20)
    first = str(info.value).splitlines()[0]
    assert "SIGABRT" in first and "size" in first, first


ABORT_DUMP = (b"terminate called after throwing an instance of 'gloo::IoException'\n"
              b"  what():  [../third_party/gloo/gloo/transport/tcp/pair.cc:534] Connection closed by peer\n"
              b"frame #0: c10::Error::Error(...) + 0x80\n")


def test_a_cpp_abort_is_one_line_after_the_verdict(capsys):
    def fn(rank, world_size):
        if rank == 1:
            os.write(2, ABORT_DUMP)  # what gloo's C++ code prints as it aborts a rank
            time.sleep(10)  # (killed when rank 0 fails)
        time.sleep(1)
        raise ValueError("the real mistake")

    with pytest.raises(WorkerError) as info:
        launch(fn, 2, timeout=20)
    message = str(info.value)
    assert message.startswith("rank 0 of 2 raised ValueError: the real mistake")
    assert message.rstrip().endswith("rank 1 then aborted in gloo's C++ code (3 lines of output not "
                                     "shown): Connection closed by peer")
    assert "terminate called" not in capsys.readouterr().out  # not printed raw above the verdict

    def leaves_aborting(rank, world_size):
        if rank == 1:
            os.write(2, ABORT_DUMP)
        return rank

    assert launch(leaves_aborting, 2, timeout=20) == [0, 1]
    out = capsys.readouterr().out
    assert "terminate called" not in out and "rank 1 then aborted in gloo's C++ code" in out


def test_an_unpicklable_result_is_explained():
    def fn(rank, world_size):
        return lambda: rank

    with pytest.raises(WorkerError, match="could not be sent to the notebook"):
        launch(fn, 1, timeout=20)


# --------------------------------------------------------------------------- concurrency


def test_two_launches_at_once_do_not_collide():
    out: dict[str, object] = {}

    def fn(rank, world_size, tag):
        time.sleep(0.3)  # both launches are alive at the same time
        t = torch.tensor([float(rank + tag)])
        dist.all_reduce(t)
        return t.item()

    def run(tag):
        try:
            out[tag] = launch(fn, 2, tag, timeout=20)
        except BaseException as exc:  # noqa: BLE001
            out[tag] = exc

    threads = [threading.Thread(target=run, args=(tag,)) for tag in (100, 200)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert out == {100: [201.0, 201.0], 200: [401.0, 401.0]}


# --------------------------------------------------------------------------- interrupts


def test_the_graders_alarm_kills_the_workers(tmp_path):
    def fn(rank, world_size, folder):
        Path(folder, str(os.getpid())).touch()
        time.sleep(60)

    with pytest.raises(LearnerTimeout), _deadline(1.5):
        launch(fn, 2, str(tmp_path), timeout=30)
    pids = [int(p.name) for p in tmp_path.iterdir()]
    assert len(pids) == 2
    assert not any(_alive(pid) for pid in pids)


_SCRIPT = """
import os, sys, time
from pathlib import Path
from primer.launch import launch

def fn(rank, world_size, folder):
    Path(folder, str(os.getpid())).touch()
    time.sleep(120)

launch(fn, 2, sys.argv[1], timeout=120)
"""


def _start_script(folder: Path) -> subprocess.Popen:
    script = folder / "script.py"
    script.write_text(textwrap.dedent(_SCRIPT))
    pids = folder / "pids"
    pids.mkdir()
    proc = subprocess.Popen([sys.executable, str(script), str(pids)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(list(pids.iterdir())) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the workers did not start"
        time.sleep(0.1)
    return proc


def _wait_gone(pids: list[int], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(_alive(p) for p in pids)


def test_an_interrupt_leaves_no_orphans(tmp_path):
    proc = _start_script(tmp_path)
    pids = [int(p.name) for p in (tmp_path / "pids").iterdir()]
    proc.send_signal(signal.SIGINT)  # what "interrupt the kernel" does
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in err
    assert _wait_gone(pids)


def test_workers_die_with_a_killed_kernel(tmp_path):
    proc = _start_script(tmp_path)
    pids = [int(p.name) for p in (tmp_path / "pids").iterdir()]
    proc.kill()  # SIGKILL: no finally block runs in the parent
    proc.communicate(timeout=30)
    assert _wait_gone(pids)
