"""OpenTelemetry(): the exact GenAI span tree, attributes, span events and metrics, on the emulator."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from typing import Any

import attrs
import looptime
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from switchyard.providers import ConfigError, NoCandidatesError, ProviderGraph, Tier
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import BreakerConfig, Event, OpenTelemetry, Router

from .conftest import HI


@attrs.define
class Otel:
    """An SDK tracer and meter provider exporting to memory, and the hook over them."""

    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    tracing: TracerProvider
    metering: MeterProvider

    def hook(self, **kwargs: Any) -> OpenTelemetry:
        return OpenTelemetry(self.tracing, self.metering, **kwargs)

    def finished(self) -> dict[str, ReadableSpan]:
        """The finished spans by name (each name once)."""
        spans = self.spans.get_finished_spans()
        by_name = {s.name: s for s in spans}
        assert len(by_name) == len(spans), [s.name for s in spans]
        return by_name

    def points(self, name: str) -> list[tuple[dict[str, Any], int, float]]:
        """Each data point of histogram ``name``: its attributes, count and sum."""
        data = self.reader.get_metrics_data()
        out = []
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            assert isinstance(point, HistogramDataPoint)
                            out.append((dict(point.attributes or {}), point.count, point.sum))
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    """Fresh SDK providers: spans to an in-memory exporter, metrics to an in-memory reader."""
    spans = InMemorySpanExporter()
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    metering = MeterProvider(metric_readers=[reader])
    yield Otel(spans, reader, tracing, metering)
    tracing.shutdown()
    metering.shutdown()


def _server(graph: ProviderGraph, gateway: str) -> dict[str, Any]:
    origin = graph.gateways[gateway].origin
    return {"server.address": "127.0.0.1", "server.port": origin.port}


def _parent(span: ReadableSpan) -> int | None:
    return None if span.parent is None else span.parent.span_id


async def test_a_request_that_fails_over(otel: Otel, emu: Emulator, graph: ProviderGraph) -> None:
    """Failover: chat span under the caller's, two attempts under it, breaker and failover events, metrics."""
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    breaker = BreakerConfig(consecutive_failures=1, base_break=5.0, jitter=0.0)
    async with Router(graph, hooks=[otel.hook()], breaker=breaker) as router:
        with otel.tracing.get_tracer("test").start_as_current_span("caller"):
            reply = await router.chat("gpt-4o-mini", HI, max_tokens=5, temperature=0.2, top_p=0.9, seed=7)
    spans = otel.finished()
    assert set(spans) == {"caller", "chat gpt-4o-mini", "attempt onellm", "attempt onetoken"}
    caller, chat = spans["caller"], spans["chat gpt-4o-mini"]
    first, second = spans["attempt onellm"], spans["attempt onetoken"]
    assert _parent(chat) == caller.context.span_id
    assert _parent(first) == _parent(second) == chat.context.span_id
    assert first.end_time <= second.start_time  # type: ignore[operator]
    assert chat.kind is first.kind is second.kind is SpanKind.CLIENT
    usage = reply.usage
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 5,
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.top_p": 0.9,
        "gen_ai.request.seed": 7,
        "gen_ai.provider.name": "onetoken",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": (reply.finish_reason,),
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
        "switchyard.attempts": 2,
        "switchyard.cost_usd": reply.cost_usd,
        **_server(graph, "onetoken"),
    }
    assert chat.status.status_code is StatusCode.UNSET
    assert dict(first.attributes or {}) == {
        "gen_ai.provider.name": "onellm",
        "gen_ai.request.model": "GPT-4o-mini",
        "http.response.status_code": 502,
        "error.type": "ServerError",
        "switchyard.attempt": 1,
        **_server(graph, "onellm"),
    }
    assert first.status.status_code is StatusCode.ERROR
    assert dict(second.attributes or {}) == {
        "gen_ai.provider.name": "onetoken",
        "gen_ai.request.model": "gpt-4o-mini",
        "http.response.status_code": 200,
        "switchyard.attempt": 2,
        **_server(graph, "onetoken"),
    }
    assert second.status.status_code is StatusCode.UNSET
    assert [(e.name, dict(e.attributes or {})) for e in chat.events] == [
        (
            "switchyard.breaker.opened",
            {
                "switchyard.gateway": "onellm",
                "switchyard.gateway_model": "GPT-4o-mini",
                "switchyard.detail": "1 failures in a row: ServerError",
                "switchyard.open_for_s": pytest.approx(5.0, abs=0.05),
            },
        ),
        (
            "switchyard.failover",
            {
                "switchyard.gateway": "onetoken",
                "switchyard.gateway_model": "gpt-4o-mini",
                "switchyard.detail": "from onellm:GPT-4o-mini",
            },
        ),
    ]
    common = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.provider.name": "onetoken",
        "gen_ai.response.model": "gpt-4o-mini",
        **_server(graph, "onetoken"),
    }
    ((attributes, count, _),) = otel.points("gen_ai.client.operation.duration")
    assert attributes == common and count == 1
    assert sorted(otel.points("gen_ai.client.token.usage"), key=lambda p: p[2]) == sorted(
        [
            ({**common, "gen_ai.token.type": "input"}, 1, usage.prompt_tokens),
            ({**common, "gen_ai.token.type": "output"}, 1, usage.completion_tokens),
        ],
        key=lambda p: p[2],
    )
    assert otel.points("gen_ai.client.operation.time_to_first_chunk") == []


async def test_a_streamed_request_records_its_time_to_first_chunk(
    otel: Otel, emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A stream: gen_ai.request.stream, the time to first chunk on the span and as a metric."""
    await emu.set_faults("oneai", Faults(ttft=0.25))
    async with Router(graph, hooks=[otel.hook()]) as router:
        with otel.tracing.get_tracer("test").start_as_current_span("caller"):
            async with router.stream("deepseek-v3", HI, max_tokens=5) as stream:
                async for _ in stream:
                    pass
    spans = otel.finished()
    assert set(spans) == {"caller", "chat deepseek-v3", "attempt oneai"}
    chat = spans["chat deepseek-v3"]
    assert _parent(chat) == spans["caller"].context.span_id
    assert _parent(spans["attempt oneai"]) == chat.context.span_id
    attributes = dict(chat.attributes or {})
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.25, abs=1e-3)
    assert attributes["gen_ai.provider.name"] == "oneai" and "error.type" not in attributes
    ((point_attributes, count, total),) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert count == 1 and total == pytest.approx(0.25, abs=1e-3)
    assert point_attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "deepseek-v3",
        "gen_ai.provider.name": "oneai",
        "gen_ai.response.model": "deepseek-v3",
        **_server(graph, "oneai"),
    }


async def test_a_stream_is_a_child_of_the_span_current_when_it_is_read(
    otel: Otel, emu: Emulator, graph: ProviderGraph
) -> None:
    """Concurrent streams read under different spans each hang under their own reader's span."""
    tracer = otel.tracing.get_tracer("test")

    async def read(name: str, router: Router) -> None:
        with tracer.start_as_current_span(name):
            async with router.stream("deepseek-v3", HI, max_tokens=5) as stream:
                async for _ in stream:
                    await asyncio.sleep(0)

    async with Router(graph, hooks=[otel.hook()]) as router:
        await asyncio.gather(read("reader-a", router), read("reader-b", router))
    spans = otel.spans.get_finished_spans()
    ids = {s.name: s.context.span_id for s in spans if s.name.startswith("reader")}
    chats = [s for s in spans if s.name == "chat deepseek-v3"]
    attempts = [s for s in spans if s.name == "attempt oneai"]
    assert sorted(_parent(c) for c in chats) == sorted(ids.values())  # type: ignore[type-var]
    assert sorted(_parent(a) for a in attempts) == sorted(c.context.span_id for c in chats)  # type: ignore[type-var]


async def test_a_cancelled_request(otel: Otel, emu: Emulator, graph: ProviderGraph, fake_time: Any) -> None:
    """A chat cancelled mid-attempt: error.type 'cancelled' on the request, its attempt, the metric."""
    await emu.set_faults("onellm", Faults(latency=30.0))
    async with Router(graph, hooks=[otel.hook()]) as router:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(router.chat("gpt-4o-mini", HI), 1.0)
    spans = otel.finished()
    assert set(spans) == {"chat gpt-4o-mini", "attempt onellm"}
    chat, attempt = spans["chat gpt-4o-mini"], spans["attempt onellm"]
    assert _parent(attempt) == chat.context.span_id and _parent(chat) is None
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.provider.name": "onellm",
        "switchyard.attempts": 1,
        "error.type": "cancelled",
        **_server(graph, "onellm"),
    }
    assert dict(attempt.attributes or {}) == {
        "gen_ai.provider.name": "onellm",
        "gen_ai.request.model": "GPT-4o-mini",
        "error.type": "cancelled",
        "switchyard.attempt": 1,
        **_server(graph, "onellm"),
    }
    assert chat.status.status_code is attempt.status.status_code is StatusCode.ERROR
    ((attributes, count, total),) = otel.points("gen_ai.client.operation.duration")
    assert count == 1 and total == pytest.approx(1.0, abs=0.01)
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.provider.name": "onellm",
        "error.type": "cancelled",
        **_server(graph, "onellm"),
    }
    assert otel.points("gen_ai.client.token.usage") == []


async def test_a_stream_left_after_its_first_chunk(
    otel: Otel, emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """Breaking out of a stream ends its attempt, then its request: both 'cancelled', the TTFT kept."""
    await emu.set_faults("oneai", Faults(ttft=0.5, inter_chunk=1.0))
    async with (
        Router(graph, hooks=[otel.hook()]) as router,
        router.stream("deepseek-v3", HI, max_tokens=20) as stream,
    ):
        async for _ in stream:
            break
    spans = otel.finished()
    chat, attempt = spans["chat deepseek-v3"], spans["attempt oneai"]
    assert attempt.end_time <= chat.end_time  # type: ignore[operator]
    assert (chat.attributes or {})["error.type"] == (attempt.attributes or {})["error.type"] == "cancelled"
    assert (chat.attributes or {})["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.5, abs=1e-3)
    ((_, count, _),) = otel.points("gen_ai.client.operation.time_to_first_chunk")
    assert count == 1


async def test_a_request_rejected_before_sending(otel: Otel, emu: Emulator, graph: ProviderGraph) -> None:
    """Every candidate over the price cap: a chat span with error.type, no attempt, a duration."""
    async with Router(graph, hooks=[otel.hook()]) as router:
        with (
            otel.tracing.get_tracer("test").start_as_current_span("caller"),
            pytest.raises(NoCandidatesError),
        ):
            await router.chat("gpt-4o-mini", HI, max_tokens=5, max_cost_usd=1e-12)
    spans = otel.finished()
    assert set(spans) == {"caller", "chat gpt-4o-mini"}
    chat = spans["chat gpt-4o-mini"]
    assert _parent(chat) == spans["caller"].context.span_id
    assert dict(chat.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.request.max_tokens": 5,
        "switchyard.attempts": 0,
        "error.type": "NoCandidatesError",
    }
    assert chat.status.status_code is StatusCode.ERROR and chat.events == ()
    assert otel.points("gen_ai.client.operation.duration") == [
        (
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "error.type": "NoCandidatesError",
            },
            1,
            0.0,
        )
    ]


async def test_a_deferral_is_a_span_event(
    otel: Otel, emu: Emulator, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """Accounts at their requests/min limit: a bucket.deferred span event each, then the request waits."""
    graph = ProviderGraph.from_catalogs(emu.gateways(tiers={"oneai": Tier(rpm=1)}))
    async with Router(graph, hooks=[otel.hook()]) as router:
        await router.chat("deepseek-v3", HI, max_tokens=5)
        await router.chat("deepseek-v3", HI, max_tokens=5)
    chat = otel.spans.get_finished_spans()[-1]
    assert chat.name == "chat deepseek-v3"
    ((name, attributes),) = [(e.name, dict(e.attributes or {})) for e in chat.events]
    assert name == "switchyard.bucket.deferred"
    assert attributes == {
        "switchyard.gateway": "oneai",
        "switchyard.gateway_model": "deepseek-v3",
        "switchyard.detail": "requests/min",
        "switchyard.wait_s": pytest.approx(60.0, abs=0.5),
    }


async def test_content_is_recorded_only_when_asked(otel: Otel, emu: Emulator, graph: ProviderGraph) -> None:
    """capture_content=True records the messages and the answer as the conventions' JSON; off by default."""
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]
    async with Router(graph, hooks=[otel.hook()]) as plain:
        await plain.chat("gpt-4o-mini", messages)
    chat = otel.spans.get_finished_spans()[-1]
    assert not any(k in (chat.attributes or {}) for k in ("gen_ai.input.messages", "gen_ai.output.messages"))
    otel.spans.clear()
    async with Router(graph, hooks=[otel.hook(capture_content=True)]) as router:
        reply = await router.chat("gpt-4o-mini", messages)
    chat = otel.spans.get_finished_spans()[-1]
    attributes = chat.attributes or {}
    assert json.loads(str(attributes["gen_ai.input.messages"])) == [
        {"role": "system", "parts": [{"type": "text", "content": "be brief"}]},
        {"role": "user", "parts": [{"type": "text", "content": "hi there"}]},
    ]
    assert json.loads(str(attributes["gen_ai.output.messages"])) == [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": reply.text}],
            "finish_reason": reply.finish_reason,
        }
    ]


def test_a_missing_package_is_a_config_error_naming_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without opentelemetry installed, OpenTelemetry() raises ConfigError naming switchyard[otel]."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigError, match=r"switchyard\[otel\]"):
        OpenTelemetry()


def test_events_out_of_order_or_unknown_are_ignored(otel: Otel) -> None:
    """Events for a request it never saw start, or unknown names, record nothing and raise nothing."""
    hook = otel.hook()
    for name in ("attempt.started", "attempt.finished", "breaker.opened", "request.finished", "x.y"):
        hook(Event(name, 99, outcome="ok"))
    assert otel.spans.get_finished_spans() == ()


def test_import_router_loads_no_telemetry_package() -> None:
    """`import switchyard.router` imports neither opentelemetry nor prometheus_client."""
    import subprocess

    code = (
        "import sys, switchyard.router; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'opentelemetry', 'prometheus_client'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


async def test_a_sampled_out_request_still_counts_in_the_metrics(emu: Emulator, graph: ProviderGraph) -> None:
    """A sampler that drops every trace: nothing is exported, nothing raises, the metrics still count."""
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

    spans = InMemorySpanExporter()
    tracing = TracerProvider(sampler=ALWAYS_OFF)
    tracing.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    otel = Otel(spans, reader, tracing, MeterProvider(metric_readers=[reader]))
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    async with Router(graph, hooks=[otel.hook()]) as router:
        await router.chat("gpt-4o-mini", HI)
    assert spans.get_finished_spans() == ()
    ((_, count, _),) = otel.points("gen_ai.client.operation.duration")
    assert count == 1


def test_content_shapes_keep_tool_calls_and_only_the_kind_of_other_parts() -> None:
    """Tool calls and tool results become typed parts; an image part keeps its type, never its data."""
    from switchyard.providers import ChatRequest
    from switchyard.router._content import input_messages

    request = ChatRequest.create(
        "m",
        [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "look", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "a cat"},
        ],
    )
    shaped = json.loads(input_messages(request.messages))
    assert shaped == [
        {"role": "user", "parts": [{"type": "text", "content": "what is this?"}, {"type": "image_url"}]},
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "c1", "name": "look", "arguments": "{}"}],
        },
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "c1", "response": "a cat"}]},
    ]
    assert "AAAA" not in json.dumps(shaped)


async def test_a_hedged_request_has_two_overlapping_attempts(
    otel: Otel, emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A hedge: both attempts are children of the request, the slow one 'cancelled', a hedge span event."""
    from switchyard.router import Hedge

    await emu.set_faults("onellm", Faults(latency=5.0))
    await emu.set_faults("onetoken", Faults(latency=0.2))
    events: list[Event] = []
    async with Router(graph, hedge=Hedge(after=0.5), hooks=[otel.hook(), events.append]) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    assert reply.route.gateway == "onetoken"
    assert [e.name for e in events][-1] == "request.finished"
    spans = otel.finished()
    assert set(spans) == {"chat gpt-4o-mini", "attempt onellm", "attempt onetoken"}
    chat, slow, fast = spans["chat gpt-4o-mini"], spans["attempt onellm"], spans["attempt onetoken"]
    assert _parent(slow) == _parent(fast) == chat.context.span_id
    assert fast.start_time < slow.end_time  # type: ignore[operator]
    assert (slow.attributes or {})["error.type"] == "cancelled"
    assert "error.type" not in (fast.attributes or {})
    assert (chat.attributes or {})["gen_ai.provider.name"] == "onetoken"
    assert "error.type" not in (chat.attributes or {})
    assert "switchyard.hedge" in [e.name for e in chat.events]
