"""Slow start: a gateway with no recent success gets a few requests in flight, then a ramp."""

from __future__ import annotations

import asyncio

import looptime
import pytest
from switchyard.policies import AccountLimits, Deferral, Reservation
from switchyard.providers import ConfigError, ProviderGraph, Tier
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Event, Router

from .conftest import HI

Loop = looptime.LoopTimeEventLoop


def test_the_window_starts_small_and_grows_by_one_per_success_up_to_the_cap() -> None:
    """Two in flight at first; each success widens it by one; at the cap slow start ends."""
    account = AccountLimits("g", None, 0.0, connections=5, slow_start=2)
    held = [account.reserve(1, 0.0) for _ in range(3)]
    assert [type(h) for h in held] == [Reservation, Reservation, Deferral]
    assert isinstance(held[2], Deferral) and held[2].limit == "slow start"
    for expected in (3, 4):
        account.succeeded()
        assert account.snapshot(0.0).slow_start == expected
    account.succeeded()
    assert account.snapshot(0.0).slow_start is None and account.unlimited is False
    account.restart()
    assert account.snapshot(0.0).slow_start == 2


def test_a_window_as_wide_as_the_cap_is_no_slow_start() -> None:
    """slow_start at or over the cap (64 with none) changes nothing."""
    assert AccountLimits("g", Tier(concurrency=2), 0.0, slow_start=4).ramp is None
    assert AccountLimits("g", None, 0.0, slow_start=64).unlimited


async def test_a_dead_cheapest_gateway_on_a_fresh_router_gets_a_few_requests_not_a_pool(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """100 concurrent requests on a fresh router whose cheapest gateway refuses connections:
    at most 10 reach it (it was 64, the connection pool), and every request succeeds."""
    await emu.set_faults("onellm", Faults(outage="refuse"))
    sent: list[str] = []

    def hook(event: Event) -> None:
        if event.name == "attempt.started" and event.gateway:
            sent.append(event.gateway)

    async with Router(graph, hooks=[hook]) as router:
        replies = await asyncio.gather(*(router.chat("gpt-4o-mini", HI, max_tokens=5) for _ in range(100)))
    assert all(r.route.gateway == "onetoken" for r in replies)
    assert 1 <= sent.count("onellm") <= 10


async def test_after_an_outage_traffic_returns_as_a_ramp(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """The cheapest recovers: its breaker closes and its window starts small, then grows with
    each answer until slow start ends."""
    await emu.set_faults("onellm", Faults(outage="refuse"))
    async with Router(graph, seed=0) as router:
        for _ in range(6):
            await router.chat("gpt-4o-mini", HI, max_tokens=5)
        assert router.health.state("onellm") == "open"
        assert router.admission.snapshot("onellm", fake_time.time()).slow_start == 4
        await emu.set_faults("onellm", Faults())
        await asyncio.sleep(10)  # past the break
        windows = []
        for _ in range(8):
            await asyncio.gather(*(router.chat("gpt-4o-mini", HI, max_tokens=5) for _ in range(10)))
            windows.append(router.admission.snapshot("onellm", fake_time.time()).slow_start)
        assert windows[0] is not None and windows[0] < 16, "a ramp, not a cliff"
        assert windows == sorted(windows, key=lambda w: 1e9 if w is None else w)
        assert windows[-1] is None, "slow start ends at the cap"


@pytest.mark.parametrize("value", [0, -1, True, 2.5])
def test_a_bad_slow_start_is_refused(graph: ProviderGraph, value: object) -> None:
    """slow_start is a positive whole number of requests, or None."""
    with pytest.raises(ConfigError, match="slow_start"):
        Router(graph, slow_start=value)  # type: ignore[arg-type]
