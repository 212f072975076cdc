"""Real processes sharing one account through RedisStore, against the emulator enforcing the tier.

Each process is ``python -m switchyard.benchmarks._fleet`` (the bench's replicas): its own
Router over the emulator's gateways, OneAI the cheapest. Real time, a few seconds a test.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest
from switchyard.benchmarks._fleet import Fleet
from switchyard.benchmarks._replicas import TIER
from switchyard.benchmarks._scenarios import GATEWAYS, extra_offers
from switchyard.providers import ProviderGraph, Tier
from switchyard.providers.emulator import Emulator, Faults, Latency
from switchyard.router import Account, BreakerConfig, Event, RedisStore, Router

from .._redis import RedisServer


@pytest.fixture
async def world() -> AsyncIterator[Emulator]:
    """The bench's world: gpt-4o-mini at all four gateways, OneAI the cheapest, 50 ms an answer."""
    async with Emulator(seed=0) as emu:
        for name, offer in extra_offers().items():
            emu.add_offers(name, [offer])
        for name in GATEWAYS:
            await emu.set_faults(name, Faults(latency=Latency.fixed(0.05)))
        yield emu


def _spec(emu: Emulator, store: str, server: RedisServer, namespace: str, **extra: Any) -> dict[str, Any]:
    tier = TIER
    return {
        "urls": {name: emu.base_url(name) for name in GATEWAYS},
        "tiers": {"oneai": [tier.rpm, tier.tpm, tier.concurrency]},
        "store": store,
        "redis": server.url,
        "namespace": namespace,
        "replicas": 4,
        "timeout": 0.5,  # not a test of slowness: a loaded machine must not fall back
        "requests": 20,
        "rate": 40.0,
        **extra,
    }


async def test_four_processes_on_redis_send_no_429_where_memory_stores_do(
    world: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    """One account of two in flight, four processes: with a memory store each, the emulator answers
    429s; on one Redis, none, while OneAI still serves its share and every request succeeds."""
    runs = {}
    phases = [
        [_spec(world, store, redis_server, namespace, seed=i) for store in ("memory", "redis")]
        for i in range(4)
    ]
    async with Fleet(phases) as fleet:
        for store in ("memory", "redis"):
            world.set_tier("oneai", TIER)
            world.reset_stats()
            results = await fleet.next()
            stats = world.stats("oneai")
            runs[store] = (results, stats.rate_limited, stats.statuses.get(200, 0))
    for results, _, _ in runs.values():
        assert sum(r["ok"] for r in results) == 80 and not any(r["errors"] for r in results)
    _, memory_429s, _ = runs["memory"]
    results, redis_429s, oneai_answered = runs["redis"]
    assert memory_429s > 0
    assert redis_429s == 0
    assert oneai_answered > 0
    assert sum(r["fallbacks"] for r in results) == 0


async def test_a_breaker_opened_in_one_process_keeps_the_others_off(
    world: Emulator, redis_server: RedisServer, namespace: str
) -> None:
    """OneAI refuses connections: the first process's failures open the shared breaker, and the three
    started after it send OneAI nothing; with memory stores each of them learns it again."""
    await world.set_faults("oneai", Faults(outage="refuse"))
    common = {"rate": 0.0, "breaker": {"base_break": 60.0}}

    def phase(i: int, store: str, running: bool) -> dict[str, Any]:
        spec = _spec(world, store, redis_server, namespace, seed=i, **common)
        return {**spec, "requests": 8} if running else {**spec, "store": "memory", "requests": 0}

    # The first process alone, then the three others on Redis, then the same three on memory stores.
    phases = [
        [phase(i, "redis", i == 0), phase(i, "redis", i > 0), phase(i, "memory", i > 0)] for i in range(4)
    ]
    async with Fleet(phases) as fleet:
        first, *_ = await fleet.next()
        others = (await fleet.next())[1:]
        alone = (await fleet.next())[1:]
    assert 1 <= first["attempts"].get("oneai", 0) <= 5 and first["ok"] == 8
    assert [r["attempts"].get("oneai", 0) for r in others] == [0, 0, 0]
    assert all(r["ok"] == 8 for r in others)
    assert all(r["attempts"].get("oneai", 0) >= 1 for r in alone)


_HOLD = """
import asyncio, sys
from switchyard.providers import Tier
from switchyard.router import Account, BreakerConfig, RedisStore

async def main():
    store = RedisStore(sys.argv[1], namespace=sys.argv[2], lease=1.0, timeout=0.5)
    loop = asyncio.get_running_loop()
    account = Account("g", Tier(concurrency=2), None)
    for _ in range(2):
        admitted = await store.admit(account, 1, "m", BreakerConfig(), loop.time())
        assert admitted.reservation is not None
    print("holding", flush=True)
    await asyncio.sleep(3600)  # real-time: a worker process holding its slots until the test SIGKILLs it

asyncio.run(main())
"""


async def test_a_killed_processes_slots_come_back_after_its_lease(
    redis_server: RedisServer, namespace: str
) -> None:
    """A process holding both slots is SIGKILLed: its slots stay taken while it lives (renewed past one
    lease), and come back within a lease of its death."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _HOLD, redis_server.url, namespace, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"holding"
    # Longer than one lease, which runs on redis-server's clock; the worker renews it.
    await asyncio.sleep(1.3)  # real-time: redis-server's clock, not the loop's
    proc.kill()
    await proc.wait()
    loop = asyncio.get_running_loop()
    killed = loop.time()
    account = Account("g", Tier(concurrency=2), None)
    store = RedisStore(redis_server.url, namespace=namespace, timeout=0.5)
    try:
        admitted = await store.admit(account, 1, "m", BreakerConfig(), loop.time())
        assert admitted.deferral is not None and admitted.deferral.limit == "concurrency"
        while admitted.reservation is None and loop.time() < killed + 5:
            assert admitted.deferral is not None and admitted.deferral.until is not None
            # real-time: the dead worker's slots expire on redis-server's clock
            await asyncio.sleep(max(0.0, admitted.deferral.until - loop.time()))
            admitted = await store.admit(account, 1, "m", BreakerConfig(), loop.time())
        back = loop.time() - killed
    finally:
        await store.aclose()
    assert admitted.reservation is not None
    assert back <= 1.0 + 0.3


async def test_redis_killed_mid_run_every_request_still_succeeds(
    world: Emulator, own_redis: RedisServer, namespace: str
) -> None:
    """Redis is SIGKILLed a third of the way in and restarted two thirds in: every request succeeds,
    and the router says that it fell back, then that it is back."""
    world.set_tier("oneai", TIER)
    graph = ProviderGraph.from_catalogs(world.gateways(tiers={"oneai": TIER}))
    graph.add_offers(extra_offers().values())
    events: list[Event] = []
    store = RedisStore(own_redis.url, namespace=namespace, replicas=2, timeout=0.1)
    async with Router(graph, store=store, deadline=10, hooks=[events.append]) as router:
        loop = asyncio.get_running_loop()
        tasks = []
        for i in range(90):
            if i == 30:
                own_redis.kill()
            if i == 60:
                await asyncio.to_thread(own_redis.start)
            tasks.append(asyncio.create_task(router.chat("gpt-4o-mini", [{"role": "user", "content": "hi"}])))
            await asyncio.sleep(1 / 60)  # real-time: requests spread over a real server's kill and restart
        replies = await asyncio.gather(*tasks)
        for _ in range(100):
            if store.available:
                break
            await asyncio.sleep(0.05)  # real-time: the store reconnects to the restarted server on its own
        await router.chat("gpt-4o-mini", [{"role": "user", "content": "hi"}])  # reports the recovery
        assert loop.time() > 0
    assert len(replies) == 90
    # One outage; a loaded machine may add a spurious one, never a lost or doubled notice.
    names = [e.name for e in events if e.name.startswith("store.")]
    assert names[:1] == ["store.fallback"] and names[-1:] == ["store.recovered"]
    assert names == ["store.fallback", "store.recovered"] * store.outages
    assert store.fallbacks > 0
