"""Health and admission against the emulator, on fake loop time: the issue's acceptance list."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from switchyard.providers import AiohttpTransport, Offer, ProviderGraph, Tier
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Event, Router

HI = [{"role": "user", "content": "hi"}]
Loop = asyncio.AbstractEventLoop


def _four_gateway_graph(emu: Emulator) -> ProviderGraph:
    """gpt-4o-mini at all four gateways; OneAI cheapest, then OneRouter, Onetoken, OneLLM."""
    extra = {
        "oneai": Offer("gpt-4o-mini", "gpt-4o-mini", 0.10, 0.40, 128_000, gateway="oneai"),
        "onerouter": Offer("gpt-4o-mini", "gpt-4o-mini", 0.12, 0.48, 128_000, gateway="onerouter"),
    }
    for name, offer in extra.items():
        emu.add_offers(name, [offer])
    graph = ProviderGraph.from_catalogs(emu.gateways())
    graph.add_offers(extra.values())
    graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
    graph.set_price("onellm", "GPT-4o-mini", 0.20, 0.80)
    return graph


async def test_dead_cheapest_and_a_brownout_all_requests_succeed(fake_time: Loop) -> None:
    """Cheapest refuses connections, next has 30% 503s: 1,000 succeed; the dead one sees <= 10 + probes."""
    events: list[Event] = []
    async with Emulator(seed=11) as emu:
        graph = _four_gateway_graph(emu)
        for name in ("oneai", "onerouter", "onetoken", "onellm"):
            await emu.set_faults(name, Faults(latency=0.02))
        await emu.set_faults("oneai", Faults(outage="refuse"))
        await emu.set_faults("onerouter", Faults(latency=0.02, errors={503: 0.3}))
        async with Router(graph, hooks=[events.append], seed=5) as router:
            queue = list(range(1000))
            served: Counter[str] = Counter()

            async def caller() -> None:
                while queue:
                    queue.pop()
                    reply = await router.chat("gpt-4o-mini", HI, max_tokens=8)
                    served[reply.route.gateway] += 1

            await asyncio.gather(*(caller() for _ in range(5)))
    assert sum(served.values()) == 1000 and "oneai" not in served
    dead_attempts = sum(1 for e in events if e.name == "attempt.started" and e.gateway == "oneai")
    probes = sum(
        1
        for e in events
        if e.name == "breaker.half_opened" and e.gateway == "oneai" and e.gateway_model is None
    )
    assert dead_attempts <= 10 + probes, f"{dead_attempts} attempts at the dead gateway, {probes} probes"
    assert any(e.name == "breaker.opened" and e.gateway == "oneai" for e in events)
    assert served["onerouter"] > 0, "the brownout gateway keeps serving"


async def test_free_tier_with_fifty_concurrent_callers_sends_no_429(fake_time: Loop) -> None:
    """Tier.FREE (20 RPM, 200K TPM, 2 concurrent) on both sides: 50 callers at once get 0 429s."""
    async with Emulator(seed=1) as emu:
        emu.set_tier("oneai", Tier.FREE)
        await emu.set_faults("oneai", Faults(latency=0.5))
        graph = ProviderGraph.from_catalogs(emu.gateways(tiers={"oneai": Tier.FREE}))
        async with Router(graph, deadline=300) as router:
            start = fake_time.time()
            replies = await asyncio.gather(*(router.chat("kimi", HI, max_tokens=16) for _ in range(50)))
            elapsed = fake_time.time() - start
        stats = emu.stats("oneai")
    assert len(replies) == 50 and all(r.route.gateway == "oneai" for r in replies)
    assert stats.rate_limited == 0 and stats.requests == 50
    assert stats.peak_concurrency <= 2
    assert 85 <= elapsed <= 100, f"20 at once, then one per 3 s: ~90 s, took {elapsed:.1f}"


@pytest.mark.parametrize("style", ["seconds", "http-date", "ms"])
async def test_nothing_reaches_a_gateway_before_its_retry_after(style: str, fake_time: Loop) -> None:
    """After a 429 (Retry-After as seconds, an HTTP-date or ms), 0 requests reach it until it expires."""
    started: list[tuple[float, str]] = []

    def watch(event: Event) -> None:
        if event.name == "attempt.started":
            started.append((fake_time.time(), event.gateway or ""))

    async with Emulator(seed=1) as emu:
        emu.set_tier("oneai", Tier(rpm=1), retry_after=style)  # the client is not told the tier
        graph = ProviderGraph.from_catalogs(emu.gateways())
        async with Router(graph, hooks=[watch], deadline=200) as router:
            await router.chat("kimi", HI)
            second = asyncio.create_task(router.chat("kimi", HI))
            await asyncio.sleep(1)
            assert emu.stats("oneai").statuses == {200: 1, 429: 1}
            third = asyncio.create_task(router.chat("kimi", HI))
            await asyncio.sleep(57)
            assert emu.stats("oneai").requests == 2, "nothing reaches it while it is closed"
            await asyncio.gather(second, third)
        stats = emu.stats("oneai")
    rate_limited_at = started[1][0]
    after = [t for t, _ in started[2:]]
    assert min(after) - rate_limited_at >= 59.0
    assert stats.statuses[200] == 3


async def test_cancelling_a_thousand_in_flight_requests_leaves_nothing_held(fake_time: Loop) -> None:
    """1,000 requests in flight, then cancelled: no slot, reservation or probe is left held."""
    tier = Tier(rpm=1_000_000, tpm=1_000_000_000, concurrency=10_000)
    async with Emulator(seed=1) as emu:
        await emu.set_faults("oneai", Faults(latency=100.0))
        graph = ProviderGraph.from_catalogs(emu.gateways(tiers={"oneai": tier}))
        transport = AiohttpTransport(limit=2000, limit_per_host=2000)  # all 1,000 really in flight...
        async with Router(graph, transport=transport, slow_start=None) as router:  # ...at once
            tasks = [asyncio.create_task(router.chat("kimi", HI, max_tokens=10)) for _ in range(1000)]
            await asyncio.sleep(1)
            held = router.admission.snapshot("oneai", fake_time.time())
            assert held.in_flight == 1000 and held.reserved_tokens > 0
            for task in tasks:
                task.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            after = router.admission.snapshot("oneai", fake_time.time())
            assert (after.in_flight, after.reserved_tokens) == (0, 0)
            assert router.health.breaker("oneai").probes_in_flight == 0


async def test_breaker_events_follow_an_outage_and_its_recovery(fake_time: Loop) -> None:
    """A gateway that refuses, then recovers: breaker.opened, then half_opened and closed for its probe."""
    events: list[Event] = []
    async with Emulator(seed=1) as emu:
        graph = ProviderGraph.from_catalogs(emu.gateways())
        graph.set_price("onellm", "GPT-4o-mini", 0.10, 0.40)
        graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
        await emu.set_faults("onellm", Faults(outage="refuse"))
        async with Router(graph, hooks=[events.append], seed=2) as router:
            for _ in range(8):
                assert (await router.chat("gpt-4o-mini", HI)).route.gateway == "onetoken"
            await emu.set_faults("onellm", None)
            await asyncio.sleep(20)
            assert (await router.chat("gpt-4o-mini", HI)).route.gateway == "onellm"
    names = [
        (e.name, e.gateway_model) for e in events if e.name.startswith("breaker.") and e.gateway == "onellm"
    ]
    assert names == [
        ("breaker.opened", None),
        ("breaker.opened", "GPT-4o-mini"),
        ("breaker.half_opened", None),
        ("breaker.half_opened", "GPT-4o-mini"),
        ("breaker.closed", None),
        ("breaker.closed", "GPT-4o-mini"),
    ]


async def test_a_full_connection_pool_sends_the_next_request_elsewhere(fake_time: Loop) -> None:
    """With 4 connections per host and OneAI slow, requests 5-8 go to OneRouter at once instead of
    queueing inside aiohttp for a connection (where their timeouts would run and blame OneAI)."""
    events: list[Event] = []
    async with Emulator(seed=1) as emu:
        graph = _four_gateway_graph(emu)
        await emu.set_faults("oneai", Faults(latency=15.0))
        transport = AiohttpTransport(limit_per_host=4)
        assert transport.connections_per_host == 4
        async with Router(graph, transport=transport, timeout=20.0, hooks=[events.append]) as router:
            start = fake_time.time()
            tasks = [asyncio.create_task(router.chat("gpt-4o-mini", HI, max_tokens=8)) for _ in range(8)]
            done, _ = await asyncio.wait(tasks, timeout=5.0)
            assert len(done) == 4, "the four over the cap were served elsewhere, without waiting"
            plan = router.explain("gpt-4o-mini", HI, max_tokens=8)
            assert (
                "oneai:gpt-4o-mini: deferred (oneai connections: frees when a request in flight ends)"
                in str(plan)
            )
            replies = await asyncio.gather(*tasks)
            assert fake_time.time() - start == pytest.approx(15.0, abs=0.5)
        assert emu.stats("oneai").peak_concurrency == 4
    assert Counter(r.route.gateway for r in replies) == {"oneai": 4, "onerouter": 4}
    assert all(len(r.route.attempts) == 1 for r in replies), "no timeout, no failover"
    assert not [e for e in events if e.name == "attempt.finished" and e.outcome != "ok"]
