"""Outlier ejection: a gateway in a brownout (30% failures) goes last among its model's candidates."""

from __future__ import annotations

import asyncio

import looptime
import pytest
from switchyard.providers import ConfigError, ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Outliers, Router

from .conftest import HI

Loop = looptime.LoopTimeEventLoop


async def _attempts_per_request(graph: ProviderGraph, outliers: Outliers | None, n: int = 200) -> float:
    attempts = 0
    async with Router(graph, outliers=outliers, seed=0) as router:
        for _ in range(n):
            reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
            attempts += len(reply.route.attempts)
            await asyncio.sleep(0.05)
    return attempts / n


async def test_a_brownout_is_left_with_ejection_and_paid_for_without(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """OneLLM (cheapest) fails 30%: without ejection about 1.3 attempts per request (its breaker
    wants 50%); with it, OneLLM goes last once measured, and requests take about one attempt."""
    await emu.set_faults("onellm", Faults(errors={503: 0.3}))
    without = await _attempts_per_request(graph, None)
    with_ejection = await _attempts_per_request(graph, Outliers())
    assert without > 1.2
    assert with_ejection < 1.1


async def test_explain_says_which_target_is_an_outlier(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """The ejected target is ranked last, and explain() says why."""
    await emu.set_faults("onellm", Faults(errors={503: 0.5}))
    async with Router(graph, outliers=Outliers(min_calls=5), seed=0) as router:
        for _ in range(40):
            await router.chat("gpt-4o-mini", HI, max_tokens=5)
        plan = router.explain("gpt-4o-mini", HI, max_tokens=5)
    first, last = plan.candidates[0], plan.candidates[-1]
    assert first.gateway == "onetoken"
    assert last.gateway == "onellm" and last.reason.startswith("an outlier: ")


async def test_a_healthy_model_ejects_nothing(emu: Emulator, graph: ProviderGraph, fake_time: Loop) -> None:
    """With every candidate answering, the cheapest stays first."""
    assert await _attempts_per_request(graph, Outliers(), n=50) == 1.0


@pytest.mark.parametrize("kwargs", [{"ratio": 0}, {"ratio": 1.5}, {"min_calls": 0}, {"min_calls": True}])
def test_bad_outlier_settings_are_refused(kwargs: dict[str, float]) -> None:
    """ratio in (0, 1], min_calls a whole number from 1."""
    with pytest.raises(ConfigError, match="Outliers"):
        Outliers(**kwargs)  # type: ignore[arg-type]
