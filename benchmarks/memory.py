"""Memory held by one Router over a long run: does anything grow with the number of requests?

The emulator runs in its own process (``switchyard emulate``) pinned to one CPU, so
this process holds only the router, its HTTP client and the driver. After a
warm-up (connections open, every lazy structure made), tracing starts; every
``--every`` requests the script collects garbage and records:

- RSS, the process's resident memory (from ``/proc/self/statm``);
- tracemalloc's current traced memory: what Python objects made since tracing
  started still hold, which is the figure a leak moves and allocator noise does not.

Growth is measured from the first checkpoint after warm-up to the last; it must
stay within noise (under 1 MiB) for healthy traffic however many requests pass.

Run: ``python -m switchyard.benchmarks.memory [--requests N] [--every N] [--json PATH]``
(default 1,000,000 requests; a few minutes to tens of minutes on a small box).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, Final

import attrs

from ..policies import CheapestPerToken, LowestLatency, Policy
from ..providers import BUILTIN_GATEWAYS, Gateway, ProviderGraph
from ..router import Router
from ._machine import provenance

__all__ = ["Checkpoint", "main", "measure"]

_MIB: Final = 1024 * 1024
_LIMIT_MIB: Final = 1.0
_HI: Final = [{"role": "user", "content": "hi"}]
_POLICIES: Final[dict[str, Callable[[], Policy]]] = {
    "latency": lambda: LowestLatency(seed=0),
    "cheapest": CheapestPerToken,
}


@attrs.frozen
class Checkpoint:
    """The process's memory after ``requests`` requests."""

    requests: int
    seconds: float
    rss_mib: float
    traced_mib: float
    traced_peak_mib: float


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / _MIB


def _start_emulator(cpu: int | None) -> tuple[subprocess.Popen[str], dict[str, str]]:
    exe = os.path.join(os.path.dirname(sys.executable), "switchyard")
    command = [exe] if os.path.exists(exe) else [shutil.which("switchyard") or "switchyard"]
    proc = subprocess.Popen(
        [*command, "emulate"],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu})),
    )
    assert proc.stdout is not None
    urls = dict(proc.stdout.readline().split()[:2] for _ in BUILTIN_GATEWAYS)
    return proc, urls


def _gateways(urls: dict[str, str]) -> list[Gateway]:
    return [Gateway.builtin(name, "bench-key", base_url=urls[name]) for name in BUILTIN_GATEWAYS]


async def _drive(router: Router, model: str, count: int, concurrency: int) -> None:
    remaining = count

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await router.chat(model, _HI, max_tokens=8)

    await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))


async def _run(
    urls: dict[str, str],
    *,
    requests: int,
    every: int,
    warmup: int,
    concurrency: int,
    model: str,
    policy: str,
    report: Callable[[Checkpoint], None],
) -> list[Checkpoint]:
    graph = ProviderGraph.from_catalogs(_gateways(urls))
    checkpoints: list[Checkpoint] = []
    async with Router(graph, policy=_POLICIES[policy](), seed=0) as router:
        await _drive(router, model, warmup, concurrency)
        gc.collect()
        tracemalloc.start()
        started = time.perf_counter()

        def checkpoint(done: int) -> None:
            gc.collect()
            current, peak = tracemalloc.get_traced_memory()
            point = Checkpoint(done, time.perf_counter() - started, _rss_mib(), current / _MIB, peak / _MIB)
            checkpoints.append(point)
            report(point)

        checkpoint(0)
        done = 0
        while done < requests:
            batch = min(every, requests - done)
            await _drive(router, model, batch, concurrency)
            done += batch
            checkpoint(done)
        tracemalloc.stop()
    return checkpoints


def measure(
    requests: int = 1_000_000,
    *,
    every: int = 100_000,
    warmup: int = 20_000,
    concurrency: int = 16,
    model: str = "gpt-4o-mini",
    policy: str = "latency",
    report: Callable[[Checkpoint], None] = lambda point: None,
) -> dict[str, Any]:
    """Run the emulator in a child process, send ``requests`` through one Router, return the figures."""
    cpus = sorted(os.sched_getaffinity(0))
    server_cpu, client_cpu = (cpus[0], cpus[-1]) if len(cpus) > 1 else (None, None)
    proc, urls = _start_emulator(server_cpu)
    try:
        if client_cpu is not None:
            os.sched_setaffinity(0, {client_cpu})
        checkpoints = asyncio.run(
            _run(
                urls,
                requests=requests,
                every=every,
                warmup=warmup,
                concurrency=concurrency,
                model=model,
                policy=policy,
                report=report,
            )
        )
    finally:
        os.sched_setaffinity(0, set(cpus))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    first, last = checkpoints[0], checkpoints[-1]
    # The first interval still settles (pools, free lists); growth is judged from the
    # first checkpoint after it, and reported from the start of tracing as well.
    settled = checkpoints[1] if len(checkpoints) > 2 else first
    growth = {
        "traced_mib": last.traced_mib - settled.traced_mib,
        "rss_mib": last.rss_mib - settled.rss_mib,
        "traced_mib_from_warmup": last.traced_mib - first.traced_mib,
        "rss_mib_from_warmup": last.rss_mib - first.rss_mib,
    }
    return {
        "requests": requests,
        "warmup": warmup,
        "every": every,
        "concurrency": concurrency,
        "model": model,
        "policy": policy,
        "separate_cores": server_cpu is not None,
        "requests_per_s": requests / last.seconds if last.seconds else None,
        "checkpoints": [attrs.asdict(c) for c in checkpoints],
        "growth": growth,
        "growth_measured_from": settled.requests,
        "limit_mib": _LIMIT_MIB,
        "bounded": growth["traced_mib"] < _LIMIT_MIB and growth["rss_mib"] < _LIMIT_MIB,
    }


def _row(point: Checkpoint, first: Checkpoint | None) -> str:
    base = first if first is not None else point
    return (
        f"{point.requests:>10,} {point.seconds:>9.1f} {point.rss_mib:>9.2f} "
        f"{point.rss_mib - base.rss_mib:>+9.2f} {point.traced_mib:>10.3f} "
        f"{point.traced_mib - base.traced_mib:>+10.3f}"
    )


def main(argv: list[str] | None = None) -> int:
    """Print a table as the run goes, then the verdict; write JSON with ``--json``."""
    parser = argparse.ArgumentParser(
        prog="python -m switchyard.benchmarks.memory", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--requests", type=int, default=1_000_000, help="requests after warm-up")
    parser.add_argument("--every", type=int, default=100_000, help="requests between checkpoints")
    parser.add_argument("--warmup", type=int, default=20_000, help="requests before tracing starts")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    parser.add_argument("--model", default="gpt-4o-mini")
    parser.add_argument("--policy", choices=sorted(_POLICIES), default="latency")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    head = provenance("memory", argv, "python -m switchyard.benchmarks.memory")
    if args.requests <= 0 or args.every <= 0 or args.warmup < 0 or args.concurrency <= 0:
        parser.error("--requests, --every and --concurrency must be positive, --warmup not negative")

    print(f"{'requests':>10} {'seconds':>9} {'RSS MiB':>9} {'ΔRSS':>9} {'traced MiB':>10} {'Δtraced':>10}")
    first: list[Checkpoint] = []

    def report(point: Checkpoint) -> None:
        print(_row(point, first[0] if first else None), flush=True)
        first[:] = first or [point]

    result = measure(
        args.requests,
        every=args.every,
        warmup=args.warmup,
        concurrency=args.concurrency,
        model=args.model,
        policy=args.policy,
        report=report,
    )
    growth = result["growth"]
    print(
        f"\n{result['requests_per_s']:.0f} requests/s. Growth from {result['growth_measured_from']:,} "
        f"requests to the end: traced {growth['traced_mib']:+.3f} MiB, RSS {growth['rss_mib']:+.2f} MiB "
        f"(limit {_LIMIT_MIB:g} MiB): {'bounded' if result['bounded'] else 'GROWS'}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**head, **result}, f, indent=2)
            f.write("\n")
    return 0 if result["bounded"] else 1


if __name__ == "__main__":
    sys.exit(main())
