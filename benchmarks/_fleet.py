"""The processes of the ``replicas`` scenario (``_replicas``) and of the fleet tests: each one a Router of
its own over the emulator's gateways, with a memory store or a RedisStore.

Each is ``python -m switchyard.benchmarks._fleet SPEC`` (:class:`Fleet` starts them). For
each phase of its spec (the memory run, then the Redis run) it builds its router, says
``ready``, waits for ``go`` on stdin so that all start together, sends its requests
(open-loop at ``rate``, or one at a time) and prints one JSON line of what it saw.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..providers import Gateway, ProviderGraph, RouterError, Tier, Timeouts
from ..router import BreakerConfig, RedisStore, Router, Store
from ._scenarios import GATEWAY_MODEL, MODEL, PRICES, extra_offers

__all__ = ["Fleet", "worker"]

MESSAGES = [{"role": "user", "content": "In one sentence: why route across gateways?"}]


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
                    "switchyard.benchmarks._fleet",
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


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1:]))
