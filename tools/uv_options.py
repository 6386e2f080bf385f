"""The options that make `uv pip install` take its packages where `pip install` would, for the
Makefile's environment set-up.

    python tools/uv_options.py [--extra-index-url URL ...]   prints uv's options, one line

uv installs the locked environment several times faster than pip (the wheels are unpacked in
parallel), but it does not read pip's configuration. On a machine whose pip is configured (a
local folder of wheels, such as a CPU-only torch; a mirror; a constraints file), uv must be told
the same, or it would take torch's CUDA build from PyPI. So this reads pip's own view of its
configuration (`pip config list`: its files and its PIP_* variables) and says it in uv's terms:
index-url, extra-index-url, find-links and constraint; sources that do not exist are left out, as
pip leaves them out (with a warning). The arguments given (tools/torch_index.py's) are added.
`--index-strategy unsafe-best-match` is pip's rule: the best version from all indexes, not the
first index that has the package.
"""

from __future__ import annotations

import ast
import os
import shlex
import subprocess
import sys
from urllib.parse import urlparse

OPTIONS = {"index-url": "--index-url", "extra-index-url": "--extra-index-url",
           "find-links": "--find-links", "constraint": "--constraint"}


def pip_config(listing: str) -> dict[str, list[str]]:
    """`pip config list` output (`global.find-links='/opt/wheels'`, `:env:.find-links=...`) as
    {key: values}; a value holding several (space-separated) gives several."""
    config: dict[str, list[str]] = {}
    for line in listing.splitlines():
        name, sep, value = line.partition("=")
        if not sep:
            continue
        key = name.rsplit(".", 1)[-1]
        for item in ast.literal_eval(value).split():
            if item not in config.setdefault(key, []):
                config[key].append(item)
    return config


def exists(source: str) -> bool:
    """A URL that is not a file:// one is taken as given; a local path or file:// URL must exist."""
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return True
    return os.path.exists(parsed.path if parsed.scheme == "file" else source)


def uv_options(config: dict[str, list[str]], extra: list[str]) -> list[str]:
    options = ["--index-strategy", "unsafe-best-match"]
    for key, flag in OPTIONS.items():
        for value in config.get(key, []):
            if exists(value):
                options += [flag, value]
    return options + extra


if __name__ == "__main__":
    listing = subprocess.run([sys.executable, "-m", "pip", "config", "list"],
                             capture_output=True, text=True).stdout
    print(shlex.join(uv_options(pip_config(listing), sys.argv[1:])))
