"""Prometheus(): the exact switchyard_* metric values for failover, streams, cancellation and rejection."""

from __future__ import annotations

import asyncio
import sys

import looptime
import pytest
from prometheus_client import CollectorRegistry
from switchyard.providers import ConfigError, NoCandidatesError, ProviderGraph, Tier
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import BreakerConfig, Prometheus, Router

from .conftest import HI


@pytest.fixture
def registry() -> CollectorRegistry:
    """A fresh registry per test."""
    return CollectorRegistry()


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


async def test_a_request_that_fails_over(
    registry: CollectorRegistry, emu: Emulator, graph: ProviderGraph
) -> None:
    """One request, two attempts: counts by outcome, the answer's tokens and cost, the breaker."""
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    breaker = BreakerConfig(consecutive_failures=1, jitter=0.0)
    async with Router(graph, hooks=[Prometheus(registry)], breaker=breaker) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    assert _value(registry, "switchyard_requests_total", model="gpt-4o-mini", outcome="ok") == 1
    assert (
        _value(
            registry,
            "switchyard_attempts_total",
            gateway="onellm",
            model="gpt-4o-mini",
            outcome="ServerError",
        )
        == 1
    )
    assert (
        _value(registry, "switchyard_attempts_total", gateway="onetoken", model="gpt-4o-mini", outcome="ok")
        == 1
    )
    assert (
        _value(registry, "switchyard_tokens_total", gateway="onetoken", type="input")
        == reply.usage.prompt_tokens
    )
    assert (
        _value(registry, "switchyard_tokens_total", gateway="onetoken", type="output")
        == reply.usage.completion_tokens
    )
    assert reply.cost_usd is not None
    assert _value(registry, "switchyard_cost_usd_total", gateway="onetoken") == pytest.approx(reply.cost_usd)
    assert _value(registry, "switchyard_tokens_total", gateway="onellm", type="input") is None
    assert _value(registry, "switchyard_breaker_open", gateway="onellm", model="GPT-4o-mini") == 1
    assert (
        _value(registry, "switchyard_request_duration_seconds_count", model="gpt-4o-mini", outcome="ok") == 1
    )
    assert _value(registry, "switchyard_time_to_first_token_seconds_count", model="gpt-4o-mini") is None
    budget = _value(registry, "switchyard_retry_budget_remaining")
    assert budget is not None and budget == pytest.approx(
        router.retry_budget.balance(asyncio.get_running_loop().time())
    )


async def test_a_breaker_closing_again_reads_zero(
    registry: CollectorRegistry, emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """After its break a breaker goes half-open (0.5), and a good probe closes it (0)."""
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    breaker = BreakerConfig(consecutive_failures=1, base_break=5.0, jitter=0.0)
    samples = []
    prometheus = Prometheus(registry)

    def watch(event: object) -> None:
        samples.append(_value(registry, "switchyard_breaker_open", gateway="onellm", model="GPT-4o-mini"))

    async with Router(graph, hooks=[prometheus, watch], breaker=breaker) as router:
        await router.chat("gpt-4o-mini", HI)
        await emu.set_faults("onellm", Faults())
        await asyncio.sleep(6)
        reply = await router.chat("gpt-4o-mini", HI)
    assert reply.route.gateway == "onellm"
    assert [v for i, v in enumerate(samples) if v is not None and (i == 0 or samples[i - 1] != v)] == [
        1,
        0.5,
        0,
    ]


async def test_a_streamed_request_observes_its_time_to_first_token(
    registry: CollectorRegistry, emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A stream whose first chunk comes after 0.25 s lands in the 0.32 s bucket, not the 0.16 s one."""
    await emu.set_faults("oneai", Faults(ttft=0.25))
    async with (
        Router(graph, hooks=[Prometheus(registry)]) as router,
        router.stream("deepseek-v3", HI, max_tokens=5) as stream,
    ):
        async for _ in stream:
            pass
    name = "switchyard_time_to_first_token_seconds"
    assert _value(registry, f"{name}_count", model="deepseek-v3") == 1
    assert _value(registry, f"{name}_sum", model="deepseek-v3") == pytest.approx(0.25, abs=1e-3)
    assert _value(registry, f"{name}_bucket", model="deepseek-v3", le="0.16") == 0
    assert _value(registry, f"{name}_bucket", model="deepseek-v3", le="0.32") == 1
    assert _value(registry, "switchyard_requests_total", model="deepseek-v3", outcome="ok") == 1


async def test_a_cancelled_request(
    registry: CollectorRegistry, emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A chat cancelled after 1 s: one 'cancelled' request and attempt, its duration, no tokens or cost."""
    await emu.set_faults("onellm", Faults(latency=30.0))
    async with Router(graph, hooks=[Prometheus(registry)]) as router:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(router.chat("gpt-4o-mini", HI), 1.0)
    assert _value(registry, "switchyard_requests_total", model="gpt-4o-mini", outcome="cancelled") == 1
    assert (
        _value(
            registry, "switchyard_attempts_total", gateway="onellm", model="gpt-4o-mini", outcome="cancelled"
        )
        == 1
    )
    duration = "switchyard_request_duration_seconds_sum"
    assert _value(registry, duration, model="gpt-4o-mini", outcome="cancelled") == pytest.approx(
        1.0, abs=0.01
    )
    assert _value(registry, "switchyard_tokens_total", gateway="onellm", type="input") is None
    assert _value(registry, "switchyard_cost_usd_total", gateway="onellm") is None


async def test_a_request_rejected_before_sending(
    registry: CollectorRegistry, emu: Emulator, graph: ProviderGraph
) -> None:
    """Every candidate over the price cap: one NoCandidatesError request, no attempt."""
    async with Router(graph, hooks=[Prometheus(registry)]) as router:
        with pytest.raises(NoCandidatesError):
            await router.chat("gpt-4o-mini", HI, max_cost_usd=1e-12)
    assert (
        _value(registry, "switchyard_requests_total", model="gpt-4o-mini", outcome="NoCandidatesError") == 1
    )
    names = {
        s.name for m in registry.collect() for s in m.samples if s.name.startswith("switchyard_attempts")
    }
    assert names == set()


async def test_deferrals_count_by_limit(
    registry: CollectorRegistry, emu: Emulator, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A second request to a 1-request/min account is deferred once, labelled rpm."""
    graph = ProviderGraph.from_catalogs(emu.gateways(tiers={"oneai": Tier(rpm=1)}))
    async with Router(graph, hooks=[Prometheus(registry)]) as router:
        await router.chat("deepseek-v3", HI, max_tokens=5)
        await router.chat("deepseek-v3", HI, max_tokens=5)
    assert _value(registry, "switchyard_bucket_deferrals_total", gateway="oneai", limit="rpm") == 1


async def test_one_hook_serves_two_routers(
    registry: CollectorRegistry, emu: Emulator, graph: ProviderGraph
) -> None:
    """The hook keeps no per-request state: two routers share it and their counts add up."""
    hook = Prometheus(registry)
    async with Router(graph, hooks=[hook]) as a, Router(graph, hooks=[hook]) as b:
        await asyncio.gather(a.chat("gpt-4o-mini", HI), b.chat("gpt-4o-mini", HI))
    assert _value(registry, "switchyard_requests_total", model="gpt-4o-mini", outcome="ok") == 2


def test_a_registry_takes_the_metrics_once(registry: CollectorRegistry) -> None:
    """A second Prometheus() on one registry is a ConfigError, and leaves the registry as it was."""
    Prometheus(registry)
    before = sorted(m.name for m in registry.collect())
    with pytest.raises(ConfigError, match="one Prometheus"):
        Prometheus(registry)
    assert sorted(m.name for m in registry.collect()) == before


def test_a_missing_package_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without prometheus_client installed, Prometheus() raises ConfigError naming switchyard[prometheus]."""
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigError, match=r"switchyard\[prometheus\]"):
        Prometheus()
