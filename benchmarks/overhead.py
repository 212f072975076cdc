"""What the router costs on top of a bare aiohttp request, measured in one run.

Three measurements:

1. Client CPU per request and throughput, Router vs a bare ``aiohttp`` session
   doing the same POST and JSON parse, against the emulator (its own process,
   pinned to another core), ``--concurrency`` requests in flight. Rounds of the
   two alternate (bare, router, bare, router...) so machine noise hits both; the
   figure is the median of the per-round ratios.
2. Routing-decision time (validate, resolve, filter, rank) with 10, 1,000 and
   10,000 offers in the graph, as a ratio to the 10-offer time.
3. Import time and memory of ``import switchyard.router`` (with its policies and
   providers) in a fresh interpreter: what they add on top of ``import aiohttp``, which they need anyway.

Run: ``python -m switchyard.benchmarks.overhead [--requests N] [--rounds R] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ._machine import provenance

__all__ = ["decision_times", "import_costs", "main", "request_overhead"]

MESSAGES = [{"role": "user", "content": "Say hello in five words."}]


def _start_emulator(cpu: int) -> tuple[subprocess.Popen[str], dict[str, str]]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from switchyard.router._cli import main; sys.exit(main(['emulate']))",
        ],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {cpu}),
    )
    assert proc.stdout is not None
    urls = dict(proc.stdout.readline().split()[:2] for _ in range(4))
    return proc, urls


async def _drive(
    call: Callable[[], Awaitable[object]], requests: int, concurrency: int
) -> tuple[float, float]:
    """Run ``requests`` calls, ``concurrency`` at a time; return (client CPU s, wall s)."""
    remaining = requests

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.process_time() - cpu0, time.perf_counter() - wall0


async def _compare(urls: dict[str, str], requests: int, concurrency: int, rounds: int) -> dict[str, Any]:
    from ..providers import ProviderGraph
    from ..providers.emulator import Emulator  # noqa: F401  (imported for the same module set as a test run)
    from ..router import Router

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gateways = [g for g in _gateways(urls) if g.name == "oneai"]
        graph = ProviderGraph.from_catalogs(gateways)
    payload = {"model": "kimi", "messages": MESSAGES, "max_tokens": 16}
    url = urls["oneai"] + "/chat/completions"
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
    async with aiohttp.ClientSession(connector=connector) as session, Router(graph) as router:

        async def bare() -> object:
            # What a careful bare client does per call: serialize, POST, check, parse.
            body = json.dumps(payload).encode()
            async with session.post(url, data=body, headers=headers) as response:
                answer = json.loads(await response.read())
                if response.status != 200:
                    raise RuntimeError(f"emulator answered {response.status}")
                return answer["choices"][0]["message"]["content"]

        async def routed() -> object:
            reply = await router.chat("kimi", MESSAGES, max_tokens=16)
            return reply.text

        await _drive(bare, 300, concurrency)  # warm both up: connections, caches
        await _drive(routed, 300, concurrency)
        cpu_ratios, tput_ratios = [], []
        bare_cpu, router_cpu, bare_tput, router_tput = [], [], [], []
        for _ in range(rounds):
            b_cpu, b_wall = await _drive(bare, requests, concurrency)
            r_cpu, r_wall = await _drive(routed, requests, concurrency)
            bare_cpu.append(b_cpu / requests * 1e6)
            router_cpu.append(r_cpu / requests * 1e6)
            bare_tput.append(requests / b_wall)
            router_tput.append(requests / r_wall)
            cpu_ratios.append(r_cpu / b_cpu)
            tput_ratios.append((requests / r_wall) / (requests / b_wall))
    return {
        "requests_per_round": requests,
        "rounds": rounds,
        "concurrency": concurrency,
        "bare_cpu_us_per_request": statistics.median(bare_cpu),
        "router_cpu_us_per_request": statistics.median(router_cpu),
        "cpu_ratio": statistics.median(cpu_ratios),
        "cpu_ratio_range": [min(cpu_ratios), max(cpu_ratios)],
        "bare_requests_per_s": statistics.median(bare_tput),
        "router_requests_per_s": statistics.median(router_tput),
        "throughput_ratio": statistics.median(tput_ratios),
    }


def _gateways(urls: dict[str, str]) -> list[Any]:
    from ..providers import Gateway

    out = []
    for name, url in urls.items():
        if name == "onellm":
            out.append(Gateway.onellm("bench", base_url=url))
        else:
            out.append(Gateway.builtin(name, "bench", base_url=url))
    return out


def request_overhead(requests: int = 3000, concurrency: int = 32, rounds: int = 5) -> dict[str, Any]:
    """Router vs bare aiohttp, same run: client CPU per request and throughput, as ratios."""
    cpus = sorted(os.sched_getaffinity(0))
    proc, urls = _start_emulator(cpus[0])
    try:
        os.sched_setaffinity(0, {cpus[-1]})
        result = asyncio.run(_compare(urls, requests, concurrency, rounds))
    finally:
        os.sched_setaffinity(0, set(cpus))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    result["separate_cores"] = cpus[0] != cpus[-1]
    return result


def decision_times(
    sizes: tuple[int, ...] = (10, 1_000, 10_000), repeat: int = 2000, rounds: int = 5
) -> dict[str, Any]:
    """Microseconds per routing decision with graphs of each size, and the ratio to the smallest.

    The sizes take turns, ``rounds`` times over, and each reports its median round, so
    a warm-up or a busy moment does not land on whichever size is timed first.
    """
    from ..providers import ChatRequest, Gateway, Offer, ProviderGraph
    from ..router import Router

    planners = {}
    for size in sizes:
        gateways = []
        per_gateway = size // 4
        for g in range(4):
            offers = [
                Offer(f"model-{i}", f"model-{i}-g{g}", 0.1 * (g + 1), 0.4 * (g + 1), 128_000)
                for i in range(per_gateway)
            ]
            gateways.append(
                Gateway.openai_compatible(f"g{g}", f"http://127.0.0.1:{9000 + g}/v1", "k", offers=offers)
            )
        planners[size] = (Router(ProviderGraph.from_catalogs(gateways))._planner, f"model-{per_gateway // 2}")
    for planner, model in planners.values():
        for _ in range(200):
            planner.plan(ChatRequest.create(model, MESSAGES, max_tokens=16), stream=False)
    timings: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(rounds):
        for size, (planner, model) in planners.items():
            start = time.perf_counter()
            for _ in range(repeat):
                planner.plan(ChatRequest.create(model, MESSAGES, max_tokens=16), stream=False)
            timings[size].append((time.perf_counter() - start) / repeat * 1e6)
    base = statistics.median(timings[sizes[0]])
    return {
        str(size): {
            "us_per_decision": statistics.median(us),
            "ratio_to_smallest": statistics.median(us) / base,
            "rounds_us": us,
        }
        for size, us in timings.items()
    }


def import_costs(samples: int = 7) -> dict[str, Any]:
    """Import time and memory of the packages, in fresh interpreters, next to aiohttp alone.

    Time is measured without tracing (tracemalloc slows imports several times);
    memory is Python's allocations (tracemalloc) in separate runs.
    """
    timing = (
        "import time, json; t = time.perf_counter(); import aiohttp; a = time.perf_counter() - t; "
        "t = time.perf_counter(); import switchyard.router, switchyard.policies, switchyard.providers; "
        "b = time.perf_counter() - t; "
        "print(json.dumps([a * 1000, b * 1000]))"
    )
    memory = (
        "import tracemalloc, json; tracemalloc.start(); import aiohttp; "
        "a = tracemalloc.get_traced_memory()[0]; "
        "import switchyard.router, switchyard.policies, switchyard.providers; "
        "b = tracemalloc.get_traced_memory()[0]; "
        "print(json.dumps([a / 2**20, (b - a) / 2**20]))"
    )

    def run(code: str) -> tuple[float, float]:
        values = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", code], capture_output=True, text=True, check=True
                ).stdout
            )
            for _ in range(samples)
        ]
        return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)

    aiohttp_ms, ours_ms = run(timing)
    aiohttp_mib, ours_mib = run(memory)
    return {
        "aiohttp_ms": aiohttp_ms,
        "router_policies_providers_extra_ms": ours_ms,
        "total_ratio_to_aiohttp_ms": (aiohttp_ms + ours_ms) / aiohttp_ms,
        "aiohttp_mib": aiohttp_mib,
        "router_policies_providers_extra_mib": ours_mib,
        "total_ratio_to_aiohttp_mib": (aiohttp_mib + ours_mib) / aiohttp_mib,
    }


def main(argv: list[str] | None = None) -> int:
    """Run all three and print them (and write JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.overhead")
    parser.add_argument("--requests", type=int, default=3000, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    args = parser.parse_args(argv)
    head = provenance("overhead", argv, "python -m switchyard.benchmarks.overhead")
    figures = {
        "request_overhead": request_overhead(args.requests, args.concurrency, args.rounds),
        "decision": decision_times(),
        "imports": import_costs(),
    }
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write(json.dumps({**head, **figures}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
