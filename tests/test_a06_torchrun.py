"""Assignment 06's training worker runs unchanged under torchrun: on one machine
(`--standalone --nproc_per_node=2`) and as two "nodes" with a c10d rendezvous on loopback, the
way a learner would start it on two machines. Both give the same training as `launch()` from a
notebook. Every process has a deadline (subprocess timeouts, the launcher's timeout).
"""

from __future__ import annotations

import filecmp
import json
import os
import socket
import subprocess
import sys

import pytest
import torch

from primer.launch import launch
from tests.helpers import REPO

FOLDER = REPO / "solutions" / "06_data_parallel"
SCRIPT = FOLDER / "train_ddp.py"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run"]  # what the torchrun command runs
ARGS = ["--epochs", "1", "--hidden", "32", "--batch-size", "128"]
CONFIG = {"epochs": 1, "hidden": 32, "batch_size": 128}
TIMEOUT = 180


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}


def _result(stdout: str) -> dict:
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    assert lines, stdout
    return json.loads(lines[-1])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def in_notebook() -> dict:
    """The same training, launched the notebook's way (forked ranks)."""
    sys.path.insert(0, str(FOLDER))
    try:
        from train_ddp import train
    finally:
        sys.path.remove(str(FOLDER))
    return launch(train, 2, CONFIG, timeout=120)[0]


def _same_training(a: dict, b: dict) -> None:
    assert a["world_size"] == b["world_size"] == 2
    assert a["steps"] == b["steps"] > 0
    torch.testing.assert_close(torch.tensor(a["losses"]), torch.tensor(b["losses"]))
    assert a["accuracy"] == pytest.approx(b["accuracy"], abs=1e-6)


def test_standalone_two_processes(in_notebook):
    done = subprocess.run([*TORCHRUN, "--standalone", "--nproc_per_node=2", str(SCRIPT), *ARGS],
                          capture_output=True, text=True, timeout=TIMEOUT, env=_env(), cwd=FOLDER)
    assert done.returncode == 0, done.stdout + done.stderr
    _same_training(_result(done.stdout), in_notebook)


def test_two_nodes_on_loopback(in_notebook):
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [subprocess.Popen([*TORCHRUN, "--nnodes=2", "--nproc_per_node=1",
                               "--rdzv-backend=c10d", f"--rdzv-endpoint={endpoint}",
                               "--rdzv-id=primer-test", f"--node-rank={node}",
                               "--max-restarts=0", str(SCRIPT), *ARGS],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=_env(), cwd=FOLDER)
             for node in (0, 1)]
    outputs = []
    try:
        for node in nodes:
            outputs.append(node.communicate(timeout=TIMEOUT))
    finally:
        for node in nodes:
            node.kill()
    for node, (out, err) in zip(nodes, outputs):
        assert node.returncode == 0, out + err
    printed = [out for out, _ in outputs if any(line.startswith("{") for line in out.splitlines())]
    assert len(printed) == 1, "exactly one node runs rank 0, which prints the result"
    _same_training(_result(printed[0]), in_notebook)


def test_released_script_is_the_solution_script():
    released = REPO / "notebooks" / "06_data_parallel" / "train_ddp.py"
    assert released.exists(), "run `make release ASSIGNMENT=06_data_parallel`"
    assert filecmp.cmp(released, SCRIPT, shallow=False), "run `make release ASSIGNMENT=06_data_parallel`"


def test_the_script_refuses_an_uneven_batch():
    sys.path.insert(0, str(FOLDER))
    try:
        from train_ddp import train
    finally:
        sys.path.remove(str(FOLDER))
    with pytest.raises(Exception, match="divisible"):
        launch(train, 3, CONFIG, timeout=60)

