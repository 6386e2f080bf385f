"""The three package lists (pyproject.toml for pip, environment.yml for conda, binder/ for
Binder) name the same packages at the same versions."""

import re
import socket
import tomllib

import yaml

from tests.helpers import REPO

CONDA_TO_PIP = {"pytorch-cpu": "torch"}


def pip_pins() -> dict[str, str]:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    pins = {}
    for dep in deps:
        name, version = re.fullmatch(r"([\w.-]+)==([\w.]+)", dep).groups()
        pins[name.lower()] = version
    return pins


def conda_pins(path) -> dict[str, str]:
    env = yaml.safe_load(path.read_text())
    assert isinstance(env["dependencies"], list)
    pins = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict) or dep in ("pip",):
            continue
        match = re.fullmatch(r"([\w.-]+)=([\w.]+)", dep)
        assert match, f"{path.name}: {dep!r} is not pinned as name=version"
        name, version = match.groups()
        pins[CONDA_TO_PIP.get(name, name).lower()] = version
    return pins


def test_pyproject_pins_every_dependency_exactly():
    assert pip_pins()["torch"] == "2.13.0"


def test_environment_yml_agrees_with_pip_pins():
    conda = conda_pins(REPO / "environment.yml")
    assert conda.pop("python") == "3.11"
    assert conda == pip_pins()


def test_binder_environment_agrees_with_pip_pins():
    conda = conda_pins(REPO / "binder" / "environment.yml")
    assert conda.pop("python") == "3.11"
    assert conda == pip_pins()


def test_lock_file_agrees_with_pyproject():
    lock = dict(line.strip().split("==") for line in (REPO / "requirements-lock.txt").read_text().splitlines()
                if "==" in line)
    lock = {k.lower(): v for k, v in lock.items()}
    for name, version in pip_pins().items():
        assert lock[name] == version, name


def test_cpu_torch_index_is_used_when_it_answers_and_skipped_when_not():
    import http.server
    import threading

    from tools import torch_index

    assert torch_index.pip_options(True) == ["--extra-index-url", "https://download.pytorch.org/whl/cpu"]
    assert torch_index.pip_options(False) == []
    # the probe, against loopback only: a server that answers, and a port where nothing listens
    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert torch_index.reachable(f"http://127.0.0.1:{server.server_port}/", seconds=5)
    finally:
        server.shutdown()
        server.server_close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    assert not torch_index.reachable(f"http://127.0.0.1:{port}/", seconds=1)
    assert not torch_index.reachable("not a url")


def test_uv_is_told_the_sources_pip_is_configured_with(tmp_path):
    from tools import uv_options

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    listing = (f":env:.find-links='{wheels}'\nglobal.find-links='{wheels}'\n"
               f"global.extra-index-url='file://{tmp_path}/missing https://mirror.example/simple'\n"
               "global.cert='/etc/ssl/certs/ca-certificates.crt'\nnot a setting\n")
    config = uv_options.pip_config(listing)
    assert config["find-links"] == [str(wheels)]  # named twice, given once
    assert uv_options.uv_options(config, ["--extra-index-url", "https://cpu.example"]) == [
        "--index-strategy", "unsafe-best-match",  # pip's rule: the best version from all indexes
        "--extra-index-url", "https://mirror.example/simple",  # (the missing folder is left out)
        "--find-links", str(wheels), "--extra-index-url", "https://cpu.example"]
