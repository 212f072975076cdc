"""Where a figure was measured: the machine, the interpreter, the code, and how busy the box was.

Every results file the benchmarks write starts with :func:`provenance`, so a figure
quoted from it (``readme_figures``) can say which machine and which commit gave it.
"""

from __future__ import annotations

import datetime
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["machine", "provenance"]


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model"):
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def _cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count()


def _git(*args: str) -> str | None:
    """``git args`` in the folder this package's source is in (None outside a checkout)."""
    here = pathlib.Path(__file__).resolve().parent
    try:
        done = subprocess.run(
            ["git", "-C", str(here), *args], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("switchyard")
    except metadata.PackageNotFoundError:
        return "unknown"


def machine() -> dict[str, Any]:
    """The machine and software a measurement ran on.

    ``cores``: the CPUs this process may run on; ``load_average``: the 1, 5 and 15-minute
    load when the measurement started (others' work on a shared box shows here);
    ``git_commit``/``git_dirty``: the checkout the package runs from, None when installed
    from a wheel.
    """
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    try:
        load: list[float] | None = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = None
    return {
        "cores": _cores(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "switchyard": _version(),
        "git_commit": commit,
        "git_dirty": None if status is None else bool(status),
        "load_average": load,
    }


def provenance(kind: str, argv: Sequence[str] | None = None, program: str | None = None) -> dict[str, Any]:
    """The head of a results file: what wrote it (``kind``, the command line), when, and on what.

    ``program`` is the command as a user types it (``switchyard bench``); ``argv`` its
    arguments (this process's by default).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    return {
        "kind": kind,
        "command": " ".join([program or shlex.quote(sys.argv[0]), *map(shlex.quote, args)]),
        "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }


def write_figures(head: Mapping[str, Any], figures: Mapping[str, Any], path: str | None) -> None:
    """Print ``figures`` as JSON and, given a ``path``, write them there under ``head`` (the
    :func:`provenance` that ``readme_figures`` reads)."""
    print(json.dumps(figures, indent=2))
    if path:
        with open(path, "w", encoding="utf-8") as f:
            f.write(json.dumps({**head, **figures}, indent=2) + "\n")
