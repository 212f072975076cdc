"""Hedged requests: a slow attempt's twin goes to the next candidate; the first answer wins."""

from __future__ import annotations

import asyncio
import json

import looptime
import pytest
from switchyard.providers import (
    ConfigError,
    Gateway,
    MockTransport,
    Offer,
    ProviderGraph,
    Response,
    WireRequest,
)
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import BreakerState, Event, Hedge, RetryBudget, Router

from .conftest import HI

Loop = looptime.LoopTimeEventLoop


def _names(events: list[Event]) -> list[str]:
    return [e.name for e in events if e.name in ("hedge", "attempt.finished")]


async def test_a_slow_primary_is_hedged_and_the_first_answer_wins(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """OneLLM (cheapest) takes 5 s; after 0.5 s Onetoken gets the twin and answers; OneLLM's
    attempt is cancelled: its connection closed, its slot back, its breaker not charged."""
    await emu.set_faults("onellm", Faults(latency=5.0))
    await emu.set_faults("onetoken", Faults(latency=0.2))
    events: list[Event] = []
    async with Router(graph, hedge=Hedge(after=0.5), hooks=[events.append]) as router:
        start = fake_time.time()
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
        took = fake_time.time() - start
        await asyncio.sleep(0.1)
        now = fake_time.time()
        assert router.admission.snapshot("onellm", now).in_flight == 0
        assert router.health.breaker("onellm", "GPT-4o-mini").state is BreakerState.CLOSED
    assert took == pytest.approx(0.7, abs=0.05)
    assert reply.route.gateway == "onetoken"
    assert sorted(f"{a.gateway}:{a.outcome}" for a in reply.route.attempts) == [
        "onellm:cancelled",
        "onetoken:ok",
    ]
    price = graph.offer("onetoken", "gpt-4o-mini")
    assert reply.cost_usd == pytest.approx(
        price.cost_usd(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    )
    assert next(e for e in events if e.name == "hedge").gateway == "onetoken"
    assert emu.stats("onellm").in_flight == 0, "the loser's connection was closed"


async def test_a_fast_answer_is_never_hedged(emu: Emulator, graph: ProviderGraph, fake_time: Loop) -> None:
    """An answer inside ``after`` sends nothing else."""
    await emu.set_faults("onellm", Faults(latency=0.2))
    events: list[Event] = []
    async with Router(graph, hedge=Hedge(after=0.5), hooks=[events.append]) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    assert [a.gateway for a in reply.route.attempts] == ["onellm"]
    assert "hedge" not in _names(events)
    assert emu.stats("onetoken").requests == 0


async def test_after_none_waits_for_the_targets_latency_quantile(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """With after=None nothing is hedged until OneLLM has 8 latencies; then a request slower
    than their 95th percentile gets a twin at about that percentile."""
    await emu.set_faults("onellm", Faults(latency=0.3))
    events: list[Event] = []
    async with Router(graph, hedge=Hedge(max_share=1.0), hooks=[events.append]) as router:
        for _ in range(8):
            await router.chat("gpt-4o-mini", HI, max_tokens=5)
        assert "hedge" not in _names(events)
        await emu.set_faults("onellm", Faults(latency=5.0))
        start = fake_time.time()
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
        took = fake_time.time() - start
    assert reply.route.gateway == "onetoken"
    assert took < 1.0, "the twin went at OneLLM's usual 0.3 s, not after its 5 s"


async def test_max_share_bounds_how_many_requests_are_hedged(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """max_share=0.1: of 40 slow requests in a row (all inside one 30 s window), at most 10% are
    hedged, plus the one a window always allows."""
    await emu.set_faults("onellm", Faults(latency=2.0))
    events: list[Event] = []
    async with Router(graph, hedge=Hedge(after=0.1, max_share=0.1), hooks=[events.append]) as router:
        for _ in range(40):
            await router.chat("gpt-4o-mini", HI, max_tokens=5, deadline=30)
    hedges = [e for e in events if e.name == "hedge"]
    assert 4 <= len(hedges) <= 1 + 40 * 0.1


async def test_a_spent_retry_budget_sends_no_twin(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """A hedge is a retry: with the budget spent, the slow attempt runs alone."""
    await emu.set_faults("onellm", Faults(latency=1.0))
    budget = RetryBudget(0.0, min_per_second=0.0)
    async with Router(graph, hedge=Hedge(after=0.1), retry_budget=budget) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    assert [a.gateway for a in reply.route.attempts] == ["onellm"]


async def test_a_cost_cap_bounds_the_hedge(emu: Emulator, graph: ProviderGraph, fake_time: Loop) -> None:
    """max_cost_usd that fits either attempt but not both: no twin."""
    await emu.set_faults("onellm", Faults(latency=1.0))
    cheap = graph.offer("onellm", "GPT-4o-mini")
    dear = graph.offer("onetoken", "gpt-4o-mini")
    async with Router(graph, hedge=Hedge(after=0.1)) as router:
        ctx = router.explain("gpt-4o-mini", HI, max_tokens=5)
        prompt = ctx.prompt_tokens
        both = (cheap.cost_usd(prompt, 5) or 0.0) + (dear.cost_usd(prompt, 5) or 0.0)
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5, max_cost_usd=both * 0.9)
    assert [a.gateway for a in reply.route.attempts] == ["onellm"]


async def test_a_stream_is_hedged_until_its_first_chunk(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """OneLLM does not stream, so Onetoken first: its first token takes 3 s; the twin at OneLLM
    answers first. A stream whose first chunk came in time is never hedged after it."""
    graph.set_price("onetoken", "gpt-4o-mini", 0.01, 0.01)  # Onetoken first
    await emu.set_faults("onetoken", Faults(ttft=3.0))
    async with Router(graph, hedge=Hedge(after=0.5)) as router:
        chunks = [c async for c in router.stream("gpt-4o-mini", HI, max_tokens=5)]
        assert chunks[-1].route is not None and chunks[-1].route.gateway == "onellm"
        outcomes = sorted(f"{a.gateway}:{a.outcome}" for a in chunks[-1].route.attempts)
        assert outcomes == ["onellm:ok", "onetoken:cancelled"]
        await emu.set_faults("onetoken", Faults(ttft=0.1, inter_chunk=1.0))
        chunks = [c async for c in router.stream("gpt-4o-mini", HI, max_tokens=5)]
        assert chunks[-1].route is not None
        assert [a.gateway for a in chunks[-1].route.attempts] == ["onetoken"]
        await asyncio.sleep(0.1)
        assert router.admission.snapshot("onetoken", fake_time.time()).in_flight == 0


@pytest.mark.parametrize(
    "kwargs", [{"after": 0}, {"after": -1.0}, {"quantile": 1.0}, {"quantile": 0}, {"max_share": 1.5}]
)
def test_bad_hedge_settings_are_refused(kwargs: dict[str, float]) -> None:
    """after is positive; quantile in (0, 1); max_share in (0, 1]."""
    with pytest.raises(ConfigError, match="Hedge"):
        Hedge(**kwargs)  # type: ignore[arg-type]


_ANSWER = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


async def test_the_twin_skips_a_candidate_whose_account_cannot_take_it_now(fake_time: Loop) -> None:
    """Of a, b and c (cheapest first), a is slow and b's account is closed by a Retry-After. A
    plan checks only its front, so b is still in the plan after a; the twin goes to c."""
    gateways = [
        Gateway.openai_compatible(
            name, f"http://127.0.0.1:{9000 + i}/v1", "k", offers=[Offer("m", "m", 0.1 * (i + 1), 0.2)]
        )
        for i, name in enumerate("abc")
    ]

    async def answer(wire: WireRequest) -> Response:
        if wire.gateway == "a":
            await asyncio.sleep(5.0)
        return Response(200, {"content-type": "application/json"}, _ANSWER)

    transport = MockTransport(answer)
    graph = ProviderGraph.from_catalogs(gateways)
    events: list[Event] = []
    async with Router(graph, hedge=Hedge(after=0.5), transport=transport, hooks=[events.append]) as router:
        await router.admission.rate_limited(graph.offer("b", "m"), 60.0, fake_time.time())
        reply = await router.chat("m", HI, max_tokens=1)
    assert next(e for e in events if e.name == "hedge").gateway == "c"
    assert reply.route.gateway == "c"
    assert sorted(w.gateway for w in transport.requests) == ["a", "c"]
