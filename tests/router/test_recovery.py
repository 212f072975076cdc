"""Recovery: a gateway back from an outage of any length is in use again within 10 s."""

from __future__ import annotations

import asyncio

import looptime
import pytest
from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Event, Router

from .conftest import HI

Loop = looptime.LoopTimeEventLoop


@pytest.mark.parametrize("fault", [Faults(outage="refuse"), Faults(errors={503: 1.0})])
async def test_a_gateway_back_from_a_sixty_second_outage_is_used_within_ten_seconds(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop, fault: Faults
) -> None:
    """The cheapest fails fast (refused, or 503) for 60 s, then recovers: a request every
    0.25 s finds it again within 10 s, and each break lets at most one failed probe
    through to a user request."""
    attempts: list[tuple[float, str, str]] = []

    def hook(event: Event) -> None:
        if event.name == "attempt.finished" and event.gateway == "onellm":
            attempts.append((fake_time.time(), event.gateway, event.outcome or ""))

    await emu.set_faults("onellm", fault)
    async with Router(graph, hooks=[hook], seed=0) as router:
        start = fake_time.time()
        recovered_at = None
        while fake_time.time() - start < 90:
            now = fake_time.time() - start
            if recovered_at is None and now >= 60:
                await emu.set_faults("onellm", Faults())
                recovered_at = fake_time.time()
            reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
            assert reply.text
            await asyncio.sleep(0.25)
    assert recovered_at is not None
    back = [t for t, _, outcome in attempts if outcome == "ok" and t >= recovered_at]
    assert back, "the recovered gateway was never used again"
    assert back[0] - recovered_at <= 10.0
    failed = [t for t, _, outcome in attempts if outcome != "ok" and t < recovered_at]
    tripped_at = failed[4]  # five failures in a row trip the breaker
    probes = [t for t in failed if t > tripped_at]
    breaks = (recovered_at - tripped_at) / 5.0  # base_break: a fast failure's break never grows
    assert len(probes) <= breaks + 1, "at most one failed probe per break"
