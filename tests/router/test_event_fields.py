"""What the events carry for telemetry: the request, the server, the answer, the time to first chunk."""

from __future__ import annotations

import looptime
import pytest
from switchyard.providers import NoCandidatesError, PromptTooLong, ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Event, Router

from .conftest import HI


async def test_a_finished_chat_carries_its_answer(emu: Emulator, graph: ProviderGraph) -> None:
    """request.finished names the target that answered, with usage, cost, finish reason and text."""
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5, temperature=0.5)
    started, finished = events[0], events[-1]
    assert started.name == "request.started" and started.stream is False
    assert started.request is not None and started.request.temperature == 0.5
    assert finished.name == "request.finished" and finished.outcome == "ok"
    assert (finished.gateway, finished.gateway_model, finished.model) == (
        reply.route.gateway,
        reply.route.gateway_model,
        reply.route.model,
    )
    assert finished.usage == reply.usage and finished.cost_usd == reply.cost_usd
    assert finished.finish_reason == reply.finish_reason and finished.text == reply.text
    assert finished.detail == "gpt-4o-mini" and finished.ttft is None
    assert finished.retry_budget is not None and finished.retry_budget > 0
    assert all(e.request is started.request for e in events)  # every event names its request


async def test_events_naming_a_target_carry_its_server(emu: Emulator, graph: ProviderGraph) -> None:
    """attempt.* and request.finished carry the gateway's origin; request.started names none."""
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        reply = await router.chat("gpt-4o-mini", HI)
    origin = graph.gateways[reply.route.gateway].origin
    assert events[0].server is None
    assert [e.server for e in events[1:]] == [origin] * (len(events) - 1)
    assert origin.host == "127.0.0.1"


async def test_a_stream_reports_its_time_to_first_chunk(
    emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A streamed request's request.finished carries the seconds until its first chunk reached the caller."""
    await emu.set_faults("oneai", Faults(ttft=0.25))
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        text = []
        async with router.stream("deepseek-v3", HI, max_tokens=5) as stream:
            async for chunk in stream:
                text.append(chunk.text)
    assert events[0].stream is True
    finished = events[-1]
    assert finished.outcome == "ok" and finished.text == "".join(text)
    assert finished.ttft == pytest.approx(0.25, abs=1e-3)


async def test_a_cancelled_stream_keeps_its_time_to_first_chunk(
    emu: Emulator, graph: ProviderGraph, fake_time: looptime.LoopTimeEventLoop
) -> None:
    """A stream left after its first chunk ends 'cancelled', with its time to first chunk and no answer."""
    await emu.set_faults("oneai", Faults(ttft=0.5, inter_chunk=1.0))
    events: list[Event] = []
    async with (
        Router(graph, hooks=[events.append]) as router,
        router.stream("deepseek-v3", HI, max_tokens=20) as stream,
    ):
        async for _ in stream:
            break
    finished = events[-1]
    assert finished.outcome == "cancelled" and finished.usage is None and finished.text is None
    assert finished.ttft == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_request_refused_while_planning_is_started_and_finished(
    emu: Emulator, graph: ProviderGraph, mode: str
) -> None:
    """Every candidate excluded (price cap): request.started then request.finished, no attempt."""
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        if mode == "chat":
            with pytest.raises(NoCandidatesError):
                await router.chat("gpt-4o-mini", HI, max_cost_usd=1e-12)
        else:
            with pytest.raises(NoCandidatesError):
                router.stream("gpt-4o-mini", HI, max_cost_usd=1e-12)
    assert [(e.name, e.outcome, e.attempt) for e in events] == [
        ("request.started", None, None),
        ("request.finished", "NoCandidatesError", 0),
    ]
    assert events[0].stream is (mode == "stream") and events[1].detail == "gpt-4o-mini"
    assert emu.stats("onellm").requests == emu.stats("onetoken").requests == 0


async def test_a_prompt_too_long_for_every_candidate_is_reported(emu: Emulator, graph: ProviderGraph) -> None:
    """PromptTooLong (a ValidationError raised while planning) ends the request with its class."""
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        with pytest.raises(PromptTooLong):
            await router.chat("qwen-max", HI, max_tokens=40_000)
    assert [(e.name, e.outcome) for e in events] == [
        ("request.started", None),
        ("request.finished", "PromptTooLong"),
    ]


async def test_bad_input_and_unknown_models_emit_nothing(emu: Emulator, graph: ProviderGraph) -> None:
    """Input that fails validation, or names no known model, raises before any event."""
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        with pytest.raises(Exception, match="temprature"):
            await router.chat("gpt-4o-mini", HI, temprature=0.2)
        with pytest.raises(Exception, match="not served"):
            await router.chat("gpt-4o-mimi", HI)
    assert events == []


async def test_an_event_repr_shows_no_content(emu: Emulator, graph: ProviderGraph) -> None:
    """The request (its messages) and the answer's text stay out of an event's repr."""
    events: list[Event] = []
    secret = [{"role": "user", "content": "the launch code is 0000"}]
    async with Router(graph, hooks=[events.append]) as router:
        reply = await router.chat("gpt-4o-mini", secret)
    for event in events:
        assert "launch code" not in repr(event)
        assert reply.text not in repr(event)


async def test_a_consumer_breaking_out_ends_the_attempt_before_the_request(
    emu: Emulator, graph: ProviderGraph
) -> None:
    """Leaving a stream early: attempt.finished 'cancelled' comes before request.finished, which counts it."""
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        async with router.stream("deepseek-v3", HI, max_tokens=20) as stream:
            async for _ in stream:
                break
        assert [(e.name, e.outcome) for e in events] == [
            ("request.started", None),
            ("attempt.started", None),
            ("attempt.finished", "cancelled"),
            ("request.finished", "cancelled"),
        ]
    assert events[-1].attempt == 1
