"""What the router costs on top of a bare aiohttp request, measured in one run.

Three measurements:

1. Client CPU per request and throughput against a bare ``aiohttp`` session, plain
   (``chat()`` against the same POST and JSON parse) and streamed (``stream()``
   against a POST whose SSE lines are split and parsed), for a router with each
   policy (CheapestPerToken, LowestLatency, FailoverOn5xx, RateLimitAware), with and
   without a tier on the account. The emulator runs in its own process pinned to
   another core; ``--concurrency`` requests are in flight. Each round measures every
   router in turn (the order rotates each round) with bare aiohttp before, between
   and after them; a router's ratio is to the mean of the two bare measurements
   around it, and the figure is the median of the per-round ratios, with their range.
2. Routing-decision time (create the request, then validate, resolve, filter and
   rank) with 10, 1,000, 10,000 and 100,000 offers in the graph: CPU time, inside a
   running event loop as in ``chat()``.
3. Import time and memory of ``import switchyard.router`` (with its policies and
   providers) in a fresh interpreter, bytecode compiled: what they add on top of
   ``import aiohttp``, which they need anyway.

Run: ``python -m switchyard.benchmarks.overhead [--requests N] [--rounds R] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aiohttp

from ._machine import provenance, write_figures

__all__ = [
    "decision_planner",
    "decision_times",
    "emulator_on_own_core",
    "import_costs",
    "main",
    "request_overhead",
]

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


@contextlib.contextmanager
def emulator_on_own_core() -> Iterator[tuple[dict[str, str], bool]]:
    """The emulator in its own process on the first core, this process on the last, for the
    block: (its URLs, whether the two got separate cores). Affinity comes back and the
    emulator stops afterwards, whatever happened."""
    cpus = sorted(os.sched_getaffinity(0))
    proc, urls = _start_emulator(cpus[0])
    try:
        os.sched_setaffinity(0, {cpus[-1]})
        yield urls, cpus[0] != cpus[-1]
    finally:
        os.sched_setaffinity(0, set(cpus))
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


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


# The policies the README's table shows, each with and without a tier on the account.
POLICIES = ("cheapest", "latency", "failover", "ratelimit")
# A tier far above what the run sends: the router tracks it (buckets, slots) but never defers.
BENCH_TIER = (10**7, 10**10, 10**4)


def _policy(name: str) -> Any:
    from ..policies import CheapestPerToken, FailoverOn5xx, LowestLatency, RateLimitAware

    return {
        "cheapest": CheapestPerToken,
        "latency": LowestLatency,
        "failover": lambda: FailoverOn5xx(["oneai"]),
        "ratelimit": lambda: RateLimitAware(CheapestPerToken()),
    }[name]()


async def _compare(
    urls: dict[str, str], requests: int, concurrency: int, rounds: int, policies: tuple[str, ...]
) -> dict[str, Any]:
    """Every variant against bare aiohttp, plain and streamed, in interleaved rounds."""
    from ..providers import ProviderGraph, Tier
    from ..providers.emulator import Emulator  # noqa: F401  (imported for the same module set as a test run)
    from ..router import Router

    payload = {"model": "kimi", "messages": MESSAGES, "max_tokens": 16}
    stream_payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
    url = urls["oneai"] + "/chat/completions"
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
    async with contextlib.AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        routers: dict[str, Any] = {}
        for tiered in (False, True):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                tier = Tier(*BENCH_TIER) if tiered else None
                gateways = [g for g in _gateways(urls, tier) if g.name == "oneai"]
                graph = ProviderGraph.from_catalogs(gateways)
            for name in policies:
                key = f"{name}, tiered" if tiered else name
                routers[key] = await stack.enter_async_context(Router(graph, policy=_policy(name)))

        async def bare() -> object:
            # What a careful bare client does per call: serialize, POST, check, parse.
            body = json.dumps(payload).encode()
            async with session.post(url, data=body, headers=headers) as response:
                answer = json.loads(await response.read())
                if response.status != 200:
                    raise RuntimeError(f"emulator answered {response.status}")
                return answer["choices"][0]["message"]["content"]

        async def bare_stream() -> object:
            # A careful bare streaming client: POST, check, split lines, parse each event, join the text.
            body = json.dumps(stream_payload).encode()
            parts = []
            async with session.post(url, data=body, headers=headers) as response:
                if response.status != 200:
                    raise RuntimeError(f"emulator answered {response.status}")
                async for line in response.content:
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        return "".join(parts)
                    event = json.loads(data)
                    for choice in event.get("choices") or ():
                        parts.append(choice["delta"].get("content") or "")
            raise RuntimeError("the stream ended without [DONE]")

        def routed(router: Any) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                reply = await router.chat("kimi", MESSAGES, max_tokens=16)
                return reply.text

            return call

        def routed_stream(router: Any) -> Callable[[], Awaitable[object]]:
            async def call() -> object:
                parts = []
                async with router.stream("kimi", MESSAGES, max_tokens=16) as chunks:
                    async for chunk in chunks:
                        parts.append(chunk.text)
                return "".join(parts)

            return call

        modes = {
            "plain": (bare, {key: routed(r) for key, r in routers.items()}),
            "stream": (bare_stream, {key: routed_stream(r) for key, r in routers.items()}),
        }
        for base, variants in modes.values():  # warm up: connections, caches, every code path
            await _drive(base, 200, concurrency)
            for call in variants.values():
                await _drive(call, 200, concurrency)
        out: dict[str, Any] = {}
        for mode, (base, variants) in modes.items():
            names = list(variants)
            bare_cpu: list[float] = []
            bare_tput: list[float] = []
            cpu: dict[str, list[float]] = {n: [] for n in names}
            ratios: dict[str, list[float]] = {n: [] for n in names}
            tput: dict[str, list[float]] = {n: [] for n in names}
            for r in range(rounds):
                # Bare aiohttp runs between every two variants (which take turns, in an order
                # that rotates each round): each variant is compared with the mean of the two
                # bare measurements just before and after it, so the machine's drift (other
                # tenants, the emulator's core) lands on both sides of each ratio.
                order = names[r % len(names) :] + names[: r % len(names)]
                before = await _drive(base, requests, concurrency)
                for n in order:
                    v_cpu, v_wall = await _drive(variants[n], requests, concurrency)
                    after = await _drive(base, requests, concurrency)
                    b_cpu, b_wall = (before[0] + after[0]) / 2, (before[1] + after[1]) / 2
                    bare_cpu.append(b_cpu / requests * 1e6)
                    bare_tput.append(requests / b_wall)
                    cpu[n].append(v_cpu / requests * 1e6)
                    ratios[n].append(v_cpu / b_cpu)
                    tput[n].append(b_wall / v_wall)
                    before = after
            out[mode] = {
                "bare_cpu_us_per_request": statistics.median(bare_cpu),
                "bare_requests_per_s": statistics.median(bare_tput),
                "routers": {
                    n: {
                        "cpu_us_per_request": statistics.median(cpu[n]),
                        "cpu_ratio": statistics.median(ratios[n]),
                        "cpu_ratio_range": [min(ratios[n]), max(ratios[n])],
                        "throughput_ratio": statistics.median(tput[n]),
                    }
                    for n in names
                },
            }
    return {"requests_per_round": requests, "rounds": rounds, "concurrency": concurrency, **out}


def _gateways(urls: dict[str, str], tier: Any = None) -> list[Any]:
    from ..providers import Gateway

    out = []
    for name, url in urls.items():
        if name == "onellm":
            out.append(Gateway.onellm("bench", base_url=url, tier=tier))
        else:
            out.append(Gateway.builtin(name, "bench", base_url=url, tier=tier))
    return out


def request_overhead(
    requests: int = 1500, concurrency: int = 32, rounds: int = 7, policies: tuple[str, ...] = POLICIES
) -> dict[str, Any]:
    """Routers (each policy, with and without a tier) vs bare aiohttp, plain and streamed, in one run.

    Client CPU per request and throughput, as ratios to bare aiohttp measured in the same round.
    """
    with emulator_on_own_core() as (urls, separate):
        result = asyncio.run(_compare(urls, requests, concurrency, rounds, policies))
    result["separate_cores"] = separate
    return result


def decision_planner(size: int) -> tuple[Any, str]:
    """A router's planner over four gateways with ``size`` offers in all, and a model they serve."""
    from ..providers import Gateway, Offer, ProviderGraph
    from ..router import Router

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
    return Router(ProviderGraph.from_catalogs(gateways))._planner, f"model-{per_gateway // 2}"


def decision_times(
    sizes: tuple[int, ...] = (10, 1_000, 10_000, 100_000), repeat: int = 2000, rounds: int = 5
) -> dict[str, Any]:
    """Microseconds of CPU per routing decision with graphs of each size, and the ratio to the smallest.

    A decision is made where the router makes it, inside a running event loop (``chat()``
    and ``stream()`` plan there), and timed as this thread's CPU time, which another
    process on the machine does not add to. The sizes take turns, ``rounds`` times
    over, and each reports its median round, so a warm-up or a busy moment does not
    land on whichever size is timed first.
    """
    return asyncio.run(_decision_times(sizes, repeat, rounds))


async def _decision_times(sizes: tuple[int, ...], repeat: int, rounds: int) -> dict[str, Any]:
    from ..providers import ChatRequest

    planners = {size: decision_planner(size) for size in sizes}
    for planner, model in planners.values():
        for _ in range(200):
            planner.plan(ChatRequest.create(model, MESSAGES, max_tokens=16), stream=False)
    timings: dict[int, list[float]] = {size: [] for size in sizes}
    for _ in range(rounds):
        for size, (planner, model) in planners.items():
            start = time.thread_time()
            for _ in range(repeat):
                planner.plan(ChatRequest.create(model, MESSAGES, max_tokens=16), stream=False)
            timings[size].append((time.thread_time() - start) / repeat * 1e6)
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

    # Bytecode compiled, as in any installed package: a first import writes it under a
    # private prefix (whatever PYTHONDONTWRITEBYTECODE says), the timed ones read it.
    with tempfile.TemporaryDirectory() as prefix:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = prefix

        def run(code: str) -> tuple[float, float]:
            values = [
                json.loads(
                    subprocess.run(
                        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
                    ).stdout
                )
                for _ in range(samples)
            ]
            return statistics.median(v[0] for v in values), statistics.median(v[1] for v in values)

        run(timing)  # compiles
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
    parser.add_argument("--requests", type=int, default=1500, help="requests per round and side")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    args = parser.parse_args(argv)
    head = provenance("overhead", argv, "python -m switchyard.benchmarks.overhead")
    figures = {
        "request_overhead": request_overhead(args.requests, args.concurrency, args.rounds),
        "decision": decision_times(),
        "imports": import_costs(),
    }
    write_figures(head, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
