"""What sharing limits and breakers through Redis costs a request, against the memory store, in one run.

Two measurements, each a ratio taken in the same run (rounds of the stores alternate, so
machine noise hits all of them):

1. Added latency per request: one request at a time, the mean time of a ``chat()``
   with a :class:`RedisStore` minus that with a :class:`MemoryStore`.
2. Router CPU per request: ``--concurrency`` requests in flight, this process's CPU
   per request with each store, and the ratio.

Both for a tiered account (every admission is one round trip to Redis) and an untiered
one (the fast path: closed breakers learned within ``refresh``, no round trip; each
outcome is still recorded, queued). The emulator runs as its own process on another
core than this one; redis-server too, where the scheduler puts it. The store's
timeout is raised to 250 ms, so that a redis-server kept waiting for a core now and
then (two cores, three busy processes) counts as cost, not as a fallback; the
fallbacks are reported.

Run: ``python -m switchyard.benchmarks.store_overhead [--requests N] [--rounds R] [--json FILE]``
(it needs ``redis-server`` on the PATH).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

from ._machine import provenance, write_figures

__all__ = ["main", "store_overhead"]

MESSAGES = [{"role": "user", "content": "Say hello in five words."}]
VARIANTS = ("memory", "redis")


async def _rounds(
    routers: dict[str, Any], requests: int, concurrency: int, rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Per store: the mean latency (sequential) and the CPU per request (concurrent) of each round."""
    loop = asyncio.get_running_loop()
    out: dict[str, dict[str, list[float]]] = {name: {"latency_us": [], "cpu_us": []} for name in routers}

    def call(router: Any) -> Callable[[], Awaitable[object]]:
        async def one() -> object:
            return (await router.chat("kimi", MESSAGES, max_tokens=16)).text

        return one

    async def drive(one: Callable[[], Awaitable[object]], n: int, width: int) -> float:
        remaining = n

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await one()

        cpu0 = time.process_time()
        await asyncio.gather(*(worker() for _ in range(width)))
        return time.process_time() - cpu0

    for router in routers.values():  # warm up: connections, scripts, caches
        await drive(call(router), 200, concurrency)
    for _ in range(rounds):
        for name, router in routers.items():
            sequential = max(50, requests // 10)
            t0 = loop.time()
            await drive(call(router), sequential, 1)
            out[name]["latency_us"].append((loop.time() - t0) / sequential * 1e6)
            cpu = await drive(call(router), requests, concurrency)
            out[name]["cpu_us"].append(cpu / requests * 1e6)
    return out


async def _compare(
    urls: dict[str, str], redis_url: str, requests: int, concurrency: int, rounds: int, tiered: bool
) -> dict[str, Any]:
    from ..providers import Gateway, ProviderGraph, Tier
    from ..router import RedisStore, Router

    tier = Tier(rpm=10_000_000, tpm=10**12, concurrency=10_000) if tiered else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ProviderGraph.from_catalogs([Gateway.oneai("bench", base_url=urls["oneai"], tier=tier)])
    namespace = f"overhead-{os.getpid()}-{int(tiered)}"
    routers = {
        "memory": Router(graph),
        # A generous bound: two cores shared by this process, the emulator and redis-server leave
        # redis-server waiting for a core now and then, and this measures its cost, not fallbacks.
        "redis": Router(graph, store=RedisStore(redis_url, namespace=namespace, timeout=0.25)),
    }
    try:
        measured = await _rounds(routers, requests, concurrency, rounds)
        store = routers["redis"].admission.store
        assert isinstance(store, RedisStore)
        counters = {"fallbacks": store.fallbacks, "dropped": store.dropped, "round_trips": store.round_trips}
    finally:
        for router in routers.values():
            await router.aclose()
    memory, redis = measured["memory"], measured["redis"]
    added = [r - m for r, m in zip(redis["latency_us"], memory["latency_us"], strict=True)]
    ratios = [r / m for r, m in zip(redis["cpu_us"], memory["cpu_us"], strict=True)]
    return {
        "memory_latency_us": statistics.median(memory["latency_us"]),
        "redis_latency_us": statistics.median(redis["latency_us"]),
        "added_latency_us": statistics.median(added),
        "memory_cpu_us_per_request": statistics.median(memory["cpu_us"]),
        "redis_cpu_us_per_request": statistics.median(redis["cpu_us"]),
        "cpu_ratio": statistics.median(ratios),
        "cpu_ratio_range": [min(ratios), max(ratios)],
        "redis_counters": counters,
    }


def store_overhead(requests: int = 2000, concurrency: int = 32, rounds: int = 5) -> dict[str, Any]:
    """The figures, for a tiered and an untiered account (see the module docstring)."""
    from ._replicas import RedisServer, redis_server_path
    from .overhead import emulator_on_own_core

    if redis_server_path() is None:
        raise SystemExit("store_overhead needs redis-server on the PATH (e.g. apt-get install redis-server)")
    with RedisServer() as server, emulator_on_own_core() as (urls, separate):
        return {
            "requests_per_round": requests,
            "rounds": rounds,
            "concurrency": concurrency,
            "separate_cores": separate,
            "tiered": asyncio.run(_compare(urls, server.url, requests, concurrency, rounds, True)),
            "untiered": asyncio.run(_compare(urls, server.url, requests, concurrency, rounds, False)),
        }


def main(argv: list[str] | None = None) -> int:
    """Measure and print (and write JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.store_overhead")
    parser.add_argument("--requests", type=int, default=2000, help="concurrent requests per round and store")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    args = parser.parse_args(argv)
    head = provenance("store_overhead", argv, "python -m switchyard.benchmarks.store_overhead")
    figures = store_overhead(args.requests, args.concurrency, args.rounds)
    write_figures(head, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
