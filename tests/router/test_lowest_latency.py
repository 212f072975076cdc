"""LowestLatency against the emulator, on fake time: away from a slow gateway, and back."""

from __future__ import annotations

import asyncio
from collections import Counter

from switchyard.policies import CheapestPerToken, LowestLatency, Outcome, RateLimitAware
from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Router
from switchyard.router._runtime import learner_of

from .conftest import HI


async def test_moves_away_from_a_slowing_gateway_and_comes_back(
    emu: Emulator, graph: ProviderGraph, fake_time: asyncio.AbstractEventLoop
) -> None:
    """Onetoken is fastest, turns slow (traffic leaves it), recovers (traffic returns); no real sleeping."""
    await emu.set_faults("onellm", Faults(latency=0.2))
    await emu.set_faults("onetoken", Faults(latency=0.1))
    async with Router(graph, policy=LowestLatency(seed=1)) as router:

        async def phase(n: int) -> list[str]:
            picks = []
            for _ in range(n):
                picks.append((await router.chat("gpt-4o-mini", HI)).route.gateway)
                await asyncio.sleep(1.0)
            return picks

        healthy = await phase(20)
        await emu.set_faults("onetoken", Faults(latency=2.0))
        slow = await phase(20)
        await emu.set_faults("onetoken", Faults(latency=0.1))
        recovered = await phase(40)

    assert healthy[:2] == ["onellm", "onetoken"] or healthy[:2] == ["onetoken", "onellm"], "both probed first"
    assert Counter(healthy)["onetoken"] >= 15
    assert Counter(slow[2:])["onetoken"] <= 1, "one slow answer is believed at once"
    assert Counter(recovered[-10:])["onetoken"] >= 8, "a recovered gateway is found again"


def test_attempts_are_told_to_the_policy_that_learns() -> None:
    """A learning policy under RateLimitAware is told about attempts directly; one that learns
    nothing is not told (no Outcome per attempt); a RateLimitAware subclass is told itself."""

    class Watching(RateLimitAware):
        def observe(self, outcome: Outcome) -> None:
            super().observe(outcome)

    latency = LowestLatency()
    assert learner_of(RateLimitAware(latency)) is latency
    assert learner_of(RateLimitAware(CheapestPerToken())) is None
    watching = Watching(latency)
    assert learner_of(watching) is watching
