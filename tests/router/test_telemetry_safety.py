"""No telemetry hook records a key, or message content unless asked; none can break a request."""

from __future__ import annotations

import asyncio
import logging

import looptime
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry, generate_latest
from switchyard.providers import NoCandidatesError, ProviderGraph, RouterError, Tier
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import BreakerConfig, Event, Logs, OpenTelemetry, Prometheus, Router

KEY = "sk-live-5w1tchy4rd-DO-NOT-LEAK-0123456789"
PROMPT = "my mother's maiden name is Quintessa"
SYSTEM = "the vault combination is 31-41-59"


async def _traffic(router: Router, emu: Emulator) -> list[str]:
    """Every path that reports: failover, a 429 closing an account, a stream, a cut stream
    restarted, a rejection, a cancellation. Returns the answers' texts."""
    messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": PROMPT}]
    texts = [(await router.chat("gpt-4o-mini", messages, max_tokens=5)).text]
    await emu.set_faults("oneai", Faults(cut_after=2))
    async with router.stream("deepseek-v3", messages, max_tokens=8, restart=True) as stream:
        texts.append("".join([c.text async for c in stream]))
    await emu.set_faults("onetoken", Faults(errors={429: 1.0}))
    with pytest.raises(RouterError):  # onellm's breaker is open, onetoken answers 429s
        await router.chat("gpt-4o-mini", messages, max_tokens=5, deadline=3)
    with pytest.raises(NoCandidatesError):
        await router.chat("gpt-4o-mini", messages, max_cost_usd=1e-12)
    await emu.set_faults("onetoken", Faults(latency=30.0))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(router.chat("gpt-4o-mini", messages), 1.0)
    return [t for t in texts if t]


async def test_no_key_and_no_content_in_any_signal(
    emu: Emulator, fake_time: looptime.LoopTimeEventLoop, caplog: pytest.LogCaptureFixture
) -> None:
    """A known key and known content appear in no span name, attribute, event, metric label or log record."""
    gateways = emu.gateways(KEY, tiers={"oneai": Tier(rpm=100)})
    graph = ProviderGraph.from_catalogs(gateways)
    graph.set_price("onellm", "GPT-4o-mini", 0.10, 0.40)
    graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
    await emu.set_faults("onellm", Faults(errors={502: 1.0}), model="GPT-4o-mini")
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    metering = MeterProvider(metric_readers=[reader])
    registry = CollectorRegistry()
    events: list[Event] = []
    caplog.set_level(logging.DEBUG)
    hooks = [OpenTelemetry(tracing, metering), Prometheus(registry), Logs(), events.append]
    breaker = BreakerConfig(consecutive_failures=1)
    async with Router(
        graph, hooks=hooks, breaker=breaker, fallbacks={"deepseek-v3": ["deepseek-chat"]}
    ) as router:
        texts = await _traffic(router, emu)
    assert texts and all(len(t) > 3 for t in texts)

    exported: list[str] = []
    for span in spans.get_finished_spans():
        exported += [span.name, str(span.status.description), repr(dict(span.attributes or {}))]
        exported += [f"{e.name} {dict(e.attributes or {})!r}" for e in span.events]
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                exported += [metric.name, *(repr(dict(p.attributes or {})) for p in metric.data.data_points)]
    exported.append(generate_latest(registry).decode())
    for record in caplog.records:
        exported += [record.getMessage(), repr(vars(record))]
    exported += [repr(e) for e in events]
    blob = "\n".join(exported)
    assert "chat gpt-4o-mini" in blob and "switchyard_requests_total" in blob and "ServerError" in blob
    assert {"RateLimited", "StreamCut", "cancelled", "NoCandidatesError"} <= {e.outcome for e in events}
    for secret in (KEY, KEY[-12:], PROMPT, "Quintessa", SYSTEM, *texts):
        assert secret not in blob, secret
    tracing.shutdown()
    metering.shutdown()


async def test_a_raising_hook_breaks_nothing(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    """A hook that raises on every event is logged and skipped; the request and the other hooks go on."""
    graph = ProviderGraph.from_catalogs(emu.gateways())
    registry = CollectorRegistry()

    def broken(event: Event) -> None:
        raise RuntimeError("hook bug")

    async with Router(graph, hooks=[broken, Prometheus(registry)]) as router:
        reply = await router.chat("deepseek-v3", [{"role": "user", "content": "hi"}])
    assert reply.text
    assert (
        registry.get_sample_value("switchyard_requests_total", {"model": "deepseek-v3", "outcome": "ok"}) == 1
    )
    assert any("hook" in r.getMessage() and r.name == "switchyard.hooks" for r in caplog.records)
