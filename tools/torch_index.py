"""The pip options that give CPU-only torch here, for `make lab` and `make test` (Makefile).

    python tools/torch_index.py     prints "--extra-index-url https://download.pytorch.org/whl/cpu"
                                    when PyTorch's CPU wheel index answers, else nothing

On Linux, plain `pip install torch==2.13.0` from PyPI is the CUDA build (several GB of GPU
libraries). PyTorch's CPU index has the same release as `2.13.0+cpu`, which pip prefers (a local
version sorts after the plain one, and `==2.13.0` matches both). Where that index cannot be
reached (an offline mirror, a firewall), pip uses the configured index alone, as before; the
probe gives up after PROBE_SECONDS, so a blocked network costs at most that.
"""

from __future__ import annotations

import sys
import urllib.request

CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 3.0


def pip_options(cpu_index_reachable: bool) -> list[str]:
    return ["--extra-index-url", CPU_INDEX] if cpu_index_reachable else []


def reachable(url: str = f"{CPU_INDEX}/torch/", seconds: float = PROBE_SECONDS) -> bool:
    """Whether `url` answers (any HTTP status below 400) within `seconds`."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=seconds) as reply:
            return reply.status < 400
    except (OSError, ValueError):  # refused, unreachable, timed out, an HTTP error, a bad URL
        return False


if __name__ == "__main__":
    print(" ".join(pip_options(reachable())))
    sys.exit(0)
