"""The ``replicas`` scenario: several processes share one tiered account, each with a memory store of
its own and then, in the same run, all on one :class:`RedisStore`.

OneAI (the cheapest) has a tier of :data:`TIER` (two requests in flight), which the
emulator enforces with 429s and every process's router is told of. With memory stores
each process believes the whole tier is its own, so together they send up to N times
it and the emulator answers the excess 429 (each costs an attempt and closes the
account for its Retry-After); on one RedisStore they hold the tier between them and
send what does not fit to the next gateway at once.

Each process is ``python -m switchyard.benchmarks._replicas SPEC`` (:class:`Fleet` starts
them). For each phase of its spec (the memory run, then the Redis run) it builds its
router, says ``ready``, waits for ``go`` on stdin so that all start together, sends its
requests open-loop and prints one JSON line of what it saw.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..providers import Gateway, ProviderGraph, RouterError, Tier, Timeouts
from ..providers.emulator import Emulator
from ..router import BreakerConfig, RedisStore, Router, Store
from ._driver import Settings
from ._emuthread import EmulatorHost
from ._scenarios import GATEWAY_MODEL, GATEWAYS, MODEL, PRICES, extra_offers, healthy_faults

__all__ = [
    "PROCESSES",
    "TIER",
    "Fleet",
    "RedisServer",
    "redis_server_path",
    "run_replicas",
    "summary",
    "worker",
]

PROCESSES = 4
TIER = Tier(concurrency=2)
MESSAGES = [{"role": "user", "content": "In one sentence: why route across gateways?"}]


def redis_server_path() -> str | None:
    """Where ``redis-server`` is, or None."""
    return shutil.which("redis-server")


class RedisServer:
    """A throwaway redis-server on a free port of 127.0.0.1 (no persistence)."""

    def __init__(self) -> None:
        path = redis_server_path()
        assert path is not None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def pid(self) -> int:
        """Its process id."""
        return self._proc.pid

    def stop(self) -> None:
        """Stop it."""
        self._proc.terminate()
        self._proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def _router(spec: Mapping[str, Any]) -> Router:
    tiers = {name: Tier(*limits) for name, limits in spec.get("tiers", {}).items()}
    gateways = [
        Gateway.builtin(name, "bench", base_url=url, tier=tiers.get(name))
        for name, url in spec["urls"].items()
    ]
    graph = ProviderGraph.from_catalogs(gateways)
    graph.add_offers(extra_offers().values())
    for name in ("onetoken", "onellm"):
        graph.set_price(name, GATEWAY_MODEL[name], *PRICES[name])
    store: Store | None = None
    if spec["store"] == "redis":
        store = RedisStore(
            spec["redis"],
            namespace=spec["namespace"],
            replicas=spec.get("replicas", 1),
            timeout=spec.get("timeout", 0.02),
            seed=spec.get("seed"),
        )
    s = spec.get("scale", 0.1)
    breaker = spec.get("breaker", {})
    return Router(
        graph,
        store=store,
        timeout=Timeouts(total=max(2.0, 30 * s)),
        deadline=max(5.0, 60 * s),
        breaker=BreakerConfig(window=30 * s, base_break=breaker.get("base_break", 5 * s), max_break=120 * s),
        seed=spec.get("seed"),
    )


async def _work(spec: Mapping[str, Any], router: Router) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    requests, rate = int(spec["requests"]), float(spec.get("rate", 0))
    latencies: list[float] = []
    attempts: dict[str, int] = {}
    statuses: dict[str, int] = {}
    errors: dict[str, int] = {}

    async def one() -> None:
        start = loop.time()
        try:
            reply = await router.chat(MODEL, MESSAGES, max_tokens=24)
        except RouterError as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return
        latencies.append(loop.time() - start)
        for a in reply.route.attempts:
            attempts[a.gateway] = attempts.get(a.gateway, 0) + 1
            key = f"{a.gateway} {a.status if a.status is not None else a.outcome}"
            statuses[key] = statuses.get(key, 0) + 1

    async with router:
        cpu0, t0 = time.process_time(), loop.time()
        if rate <= 0:
            for _ in range(requests):
                await one()
        else:
            tasks = []
            for i in range(requests):
                await asyncio.sleep(max(0.0, t0 + i / rate - loop.time()))
                tasks.append(asyncio.create_task(one()))
            await asyncio.gather(*tasks)
        cpu, wall = time.process_time() - cpu0, loop.time() - t0
        store = router.admission.store
        counters = (
            {"round_trips": store.round_trips, "fallbacks": store.fallbacks, "dropped": store.dropped}
            if isinstance(store, RedisStore)
            else {}
        )
    return {
        "ok": len(latencies),
        "errors": errors,
        "attempts": attempts,
        "statuses": statuses,
        "latencies": latencies,
        "cpu_s": cpu,
        "wall_s": wall,
        **counters,
    }


def worker(argv: Sequence[str]) -> int:
    """One process of the fleet. For each phase of its spec: build the router, say ready, wait for go,
    send, print the JSON result."""
    for phase in json.loads(argv[0]):
        router = _router(phase)
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps(asyncio.run(_work(phase, router))), flush=True)
    return 0


class Fleet:
    """Processes that run phases together: ``async with Fleet(specs) as fleet: await fleet.next()``.

    Args:
        specs: for each process, its phases (a phase of ``requests: 0`` sits that one out).
    """

    def __init__(self, specs: Sequence[Sequence[Mapping[str, Any]]]) -> None:
        self._specs = specs
        self._procs: list[asyncio.subprocess.Process] = []

    async def __aenter__(self) -> Fleet:
        for spec in self._specs:
            self._procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    "-m",
                    "switchyard.benchmarks._replicas",
                    json.dumps(list(spec)),
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
            )
        return self

    async def _line(self, proc: asyncio.subprocess.Process) -> bytes:
        assert proc.stdout is not None and proc.stderr is not None
        line = await proc.stdout.readline()
        if not line:
            await proc.wait()
            error = (await proc.stderr.read()).decode(errors="replace")[-2000:]
            raise RuntimeError(f"a replica stopped (exit {proc.returncode}): {error}")
        return line

    async def next(self) -> list[dict[str, Any]]:
        """Start the next phase in every process at once; what each saw.

        Raises:
            RuntimeError: when a process failed (with the end of what it wrote to stderr).
        """
        for proc in self._procs:
            if (await self._line(proc)).strip() != b"ready":
                raise RuntimeError("a replica said something other than ready")
        for proc in self._procs:
            assert proc.stdin is not None
            proc.stdin.write(b"go\n")
            await proc.stdin.drain()
        return [json.loads(await self._line(proc)) for proc in self._procs]

    async def __aexit__(self, *exc_info: object) -> None:
        for proc in self._procs:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


def summary(results: Sequence[Mapping[str, Any]], rate_limited: int, served: int) -> dict[str, Any]:
    """One store's run over the fleet: what it saw, with the emulator's 429s and OneAI's answers."""
    latencies = sorted(x for r in results for x in r["latencies"])
    requests = sum(r["ok"] + sum(r["errors"].values()) for r in results)
    attempts = sum(sum(r["attempts"].values()) for r in results)

    def pct(q: float) -> float | None:
        return None if not latencies else latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "processes": len(results),
        "requests": requests,
        "ok": sum(r["ok"] for r in results),
        "attempts_per_request": attempts / requests if requests else 0.0,
        "rate_limited": rate_limited,
        "oneai_answered": served,
        "latency_ms": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "mean": statistics.fmean(latencies) * 1000 if latencies else None,
        },
        "cpu_us_per_request": sum(r["cpu_s"] for r in results) / requests * 1e6 if requests else 0.0,
        "round_trips_per_request": sum(r.get("round_trips", 0) for r in results) / requests
        if requests
        else 0.0,
        "fallbacks": sum(r.get("fallbacks", 0) for r in results),
        "errors": {k: sum(r["errors"].get(k, 0) for r in results) for r in results for k in r["errors"]},
    }


async def run_replicas(
    emu: EmulatorHost, settings: Settings, redis_url: str, on_phase: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The scenario: :data:`PROCESSES` processes, first each on a memory store of its own, then all on
    one RedisStore, at the bench's total rate for one cell's duration; both runs' figures and what
    the Redis run cost over the memory run.

    Latencies are the gateways' full-scale ones even in ``--quick``: requests in flight, what the
    tier limits, grow with latency, so compressing it would leave nothing to share.
    """
    rate = settings.rate / PROCESSES
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    assert emu.emulator is not None
    urls = {name: emu.emulator.base_url(name) for name in GATEWAYS}

    def spec(store: str, i: int) -> dict[str, Any]:
        return {
            "urls": urls,
            "tiers": {"oneai": [TIER.rpm, TIER.tpm, TIER.concurrency]},
            "store": store,
            "redis": redis_url,
            "namespace": namespace,
            "replicas": PROCESSES,
            "requests": max(1, round(settings.duration * rate)),
            "rate": rate,
            "scale": settings.scale,
            "seed": settings.seed + i,
        }

    async def world(e: Emulator, tier: Tier | None) -> None:
        for name, offer in extra_offers().items():
            e.add_offers(name, [offer])
        for name in GATEWAYS:
            e.set_tier(name, tier if name == "oneai" else None)
            await e.set_faults(name, healthy_faults(name, 1.0))
        e.reset_stats()

    runs = {}
    async with Fleet([[spec(store, i) for store in ("memory", "redis")] for i in range(PROCESSES)]) as fleet:
        for store in ("memory", "redis"):
            if on_phase is not None:
                on_phase(f"replicas / {store}")
            await emu.run(lambda e: world(e, TIER))
            results = await fleet.next()
            counts = await emu.call(
                lambda e: (e.stats("oneai").rate_limited, e.stats("oneai").statuses.get(200, 0))
            )
            runs[store] = summary(results, *counts)
    await emu.run(lambda e: world(e, None))
    memory, redis = runs["memory"], runs["redis"]
    return {
        "processes": PROCESSES,
        "tier": {"oneai": {"concurrency": TIER.concurrency}},
        "rate_per_s": settings.rate,
        "runs": runs,
        "redis_overhead": {
            "latency_p50_ms": _minus(redis["latency_ms"]["p50"], memory["latency_ms"]["p50"]),
            "cpu_us_per_request": redis["cpu_us_per_request"] - memory["cpu_us_per_request"],
            "cpu_ratio": redis["cpu_us_per_request"] / memory["cpu_us_per_request"]
            if memory["cpu_us_per_request"]
            else None,
            "round_trips_per_request": redis["round_trips_per_request"],
        },
    }


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
