"""How many plain replies per second the emulator serves on one core.

The emulator runs in its own process pinned to one CPU; the load comes from this
process, pinned to another, with ``--concurrency`` requests in flight. Two figures:

- replies/s observed (bounded by the client when the client is the slower side);
- the emulator's own CPU time per reply (from /proc), so 1 / that is what one
  core of emulator can serve, whatever the client manages.

Run: ``python -m switchyard.benchmarks.emulator_throughput [--requests N] [--concurrency C] [--json FILE]``
(the JSON names the machine, for ``readme_figures``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import aiohttp

from ._machine import provenance

__all__ = ["main", "measure"]


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


async def _drive(url: str, requests: int, concurrency: int) -> float:
    payload = json.dumps({"model": "kimi", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16})
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=concurrency)
    remaining = requests

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                async with session.post(url, data=payload, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        raise RuntimeError(f"emulator answered {response.status}")

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def measure(requests: int = 20_000, concurrency: int = 64) -> dict[str, Any]:
    """Start an emulator on one core, load it from another, and return the figures."""
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = cpus[0], cpus[-1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from switchyard.router._cli import main; sys.exit(main(['emulate']))",
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {server_cpu}),
    )
    try:
        assert proc.stdout is not None
        urls = dict(proc.stdout.readline().split()[:2] for _ in range(4))
        url = urls["oneai"] + "/chat/completions"
        os.sched_setaffinity(0, {client_cpu})
        asyncio.run(_drive(url, 500, concurrency))  # warm up
        cpu_before = _cpu_seconds(proc.pid)
        elapsed = asyncio.run(_drive(url, requests, concurrency))
        server_cpu_used = _cpu_seconds(proc.pid) - cpu_before
    finally:
        os.sched_setaffinity(0, set(cpus))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    return {
        "requests": requests,
        "concurrency": concurrency,
        "separate_cores": server_cpu != client_cpu,
        "observed_replies_per_s": requests / elapsed,
        "server_cpu_us_per_reply": server_cpu_used / requests * 1e6,
        "replies_per_core_second": requests / server_cpu_used if server_cpu_used else float("inf"),
    }


def main(argv: list[str] | None = None) -> int:
    """Print the figures."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.emulator_throughput")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    args = parser.parse_args(argv)
    head = provenance("emulator_throughput", argv, "python -m switchyard.benchmarks.emulator_throughput")
    result = measure(args.requests, args.concurrency)
    print(json.dumps(result, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**head, **result}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
