"""router.stream() and streamed chat() against the emulator, on fake loop time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from switchyard.policies import LowestLatency
from switchyard.providers import (
    AllCandidatesFailed,
    Capabilities,
    Gateway,
    MockTransport,
    Offer,
    ProviderGraph,
    Response,
    ServerError,
    StreamChunk,
    StreamCut,
    StreamInterrupted,
    Timeouts,
    UpstreamTimeout,
    WireRequest,
)
from switchyard.providers.emulator import Emulator, Faults
from switchyard.providers.emulator._text import complete
from switchyard.router import Event, Router

from .conftest import HI

Loop = asyncio.AbstractEventLoop


async def _collect(router: Router, model: str = "gpt-4o-mini", **kwargs: Any) -> list[StreamChunk]:
    async with router.stream(model, HI, **kwargs) as stream:
        return [chunk async for chunk in stream]


def _text(chunks: list[StreamChunk]) -> str:
    return "".join(c.text for c in chunks)


async def test_a_stream_delivers_the_whole_answer_and_ends_with_its_accounts(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """Chunks add up to the answer; the last carries finish reason, real usage, cost and route."""
    async with Router(graph) as router:
        chunks = await _collect(router, max_tokens=6)
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=6)
    *content, last = chunks
    assert len(content) == 1 and _text(content) == reply.text, "OneLLM's whole reply is one chunk"
    assert last.done and last.finish_reason == "length" and not last.usage.estimated  # type: ignore[union-attr]
    assert last.usage.completion_tokens == 6  # type: ignore[union-attr]
    assert last.cost_usd == pytest.approx((last.usage.prompt_tokens * 0.10 + 6 * 0.40) / 1e6)  # type: ignore[union-attr]
    assert (
        last.route is not None
        and last.route.gateway == "onellm"
        and [a.outcome for a in last.route.attempts] == ["ok"]
    )
    assert emu.stats("onellm").streams == 0, "OneLLM does not stream: its reply is asked for whole"


async def test_openai_compatible_gateways_stream(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """A streaming gateway streams (Onetoken, with OneLLM down)."""
    await emu.set_faults("onellm", Faults(outage="refuse"))
    async with Router(graph) as router:
        chunks = await _collect(router, max_tokens=5)
    assert len([c for c in chunks if c.text]) == 5 and chunks[-1].route.gateway == "onetoken"  # type: ignore[union-attr]
    assert emu.stats("onetoken").streams == 1


async def test_a_cut_before_the_first_chunk_fails_over_unseen(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """The preferred gateway cuts before its first chunk: the consumer sees one answer, from the next."""
    graph.set_price("onellm", "GPT-4o-mini", 0.50, 2.00)  # make the streaming Onetoken preferred
    await emu.set_faults("onetoken", Faults(cut_after=0))
    async with Router(graph) as router:
        chunks = await _collect(router, max_tokens=5)
    assert not any(c.restart for c in chunks)
    assert _text(chunks) == complete("GPT-4o-mini", HI, 5).text, "OneLLM's whole answer"
    assert [(a.gateway, a.outcome) for a in chunks[-1].route.attempts] == [  # type: ignore[union-attr]
        ("onetoken", "StreamCut"),
        ("onellm", "ok"),
    ]


@pytest.fixture
def onetoken_first(graph: ProviderGraph) -> ProviderGraph:
    """Onetoken (streams) preferred; OneLLM next."""
    graph.set_price("onellm", "GPT-4o-mini", 0.50, 2.00)
    return graph


async def test_a_cut_after_five_chunks_raises_by_default(
    emu: Emulator, onetoken_first: ProviderGraph, fake_time: Loop
) -> None:
    """After chunks reached the caller, a cut is a typed error carrying the cause and what was delivered."""
    await emu.set_faults("onetoken", Faults(cut_after=5))
    received: list[str] = []

    async def consume(router: Router) -> None:
        async with router.stream("gpt-4o-mini", HI, max_tokens=20) as stream:
            async for chunk in stream:
                received.append(chunk.text)

    async with Router(onetoken_first) as router:
        with pytest.raises(StreamInterrupted) as info:
            await consume(router)
    error = info.value
    assert isinstance(error.cause, StreamCut) and error.__cause__ is error.cause
    assert error.delivered == "".join(received) and len(received) == 5
    assert "discard them" in str(error)


async def test_a_cut_after_five_chunks_restarts_when_asked(
    emu: Emulator, onetoken_first: ProviderGraph, fake_time: Loop
) -> None:
    """In restart mode: the five chunks, a discard marker, then the whole answer from the next candidate."""
    await emu.set_faults("onetoken", Faults(cut_after=5))
    events: list[Event] = []
    async with Router(onetoken_first, hooks=[events.append]) as router:
        chunks = await _collect(router, max_tokens=20, restart=True)
    marker = next(i for i, c in enumerate(chunks) if c.restart)
    assert marker == 5 and isinstance(chunks[marker].error, StreamCut)
    assert _text(chunks[:marker]) == "".join(complete("gpt-4o-mini", HI, 20).words[:5]), (
        "Onetoken's first five"
    )
    after = chunks[marker + 1 :]
    assert _text(after) == complete("GPT-4o-mini", HI, 20).text and after[-1].route.gateway == "onellm"  # type: ignore[union-attr]
    assert [a.outcome for a in after[-1].route.attempts] == ["StreamCut", "ok"]  # type: ignore[union-attr]
    assert "stream.restarted" in [e.name for e in events]


async def test_chat_over_a_cut_stream_returns_one_complete_reply(
    emu: Emulator, onetoken_first: ProviderGraph, fake_time: Loop
) -> None:
    """chat(stream_upstream=True) restarts on the cut and returns the next candidate's complete reply."""
    await emu.set_faults("onetoken", Faults(cut_after=5))
    async with Router(onetoken_first, stream_upstream=True) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=20)
    assert reply.text == complete("GPT-4o-mini", HI, 20).text and reply.route.gateway == "onellm"
    assert [a.outcome for a in reply.route.attempts] == ["StreamCut", "ok"]
    assert reply.usage.completion_tokens == complete("GPT-4o-mini", HI, 20).tokens


async def test_a_stall_is_caught_within_the_stall_limit(
    emu: Emulator, onetoken_first: ProviderGraph, fake_time: Loop
) -> None:
    """Three chunks, then silence: the stall limit (2 s) ends it, and restart mode moves on."""
    await emu.set_faults("onetoken", Faults(stall_after=3, inter_chunk=0.1))
    async with Router(onetoken_first, timeout=Timeouts(stall=2.0)) as router:
        start = fake_time.time()
        with pytest.raises(StreamInterrupted) as info:
            await _collect(router, max_tokens=20)
        assert fake_time.time() - start == pytest.approx(2.2, abs=0.05)
        assert isinstance(info.value.cause, UpstreamTimeout) and "stalled" in str(info.value.cause)
        chunks = await _collect(router, max_tokens=20, restart=True)
    assert chunks[-1].route.gateway == "onellm"  # type: ignore[union-attr]


async def test_no_first_token_in_time_fails_over_unseen(
    emu: Emulator, onetoken_first: ProviderGraph, fake_time: Loop
) -> None:
    """A gateway slower to its first token than the limit is left for the next before anything is seen."""
    await emu.set_faults("onetoken", Faults(ttft=5.0))
    async with Router(onetoken_first, timeout=Timeouts(first_token=1.0)) as router:
        start = fake_time.time()
        chunks = await _collect(router, max_tokens=3)
    assert fake_time.time() - start == pytest.approx(1.0, abs=0.05)
    assert [a.outcome for a in chunks[-1].route.attempts] == ["UpstreamTimeout", "ok"]  # type: ignore[union-attr]


async def test_an_error_event_inside_a_200_stream_is_typed(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """OneRouter sends an error event after two chunks: a typed error with the gateway's own message."""
    await emu.set_faults("onerouter", Faults(error_event_after=2))
    async with Router(graph) as router:
        with pytest.raises(StreamInterrupted) as info:
            await _collect(router, "claude-3.5-sonnet-20240620", max_tokens=10)
        cause = info.value.cause
        assert isinstance(cause, ServerError) and cause.upstream_message == "Provider returned error"
        assert cause.gateway == "onerouter" and cause.status == 200
        await emu.set_faults("onerouter", Faults(error_event_after=0))
        with pytest.raises(Exception, match="Provider returned error") as before:
            await _collect(router, "claude-3.5-sonnet-20240620", max_tokens=10)
        assert not isinstance(before.value, StreamInterrupted), (
            "before the first chunk it is a failed attempt"
        )


async def test_stream_outcomes_feed_breakers_and_time_to_first_token(
    emu: Emulator, onetoken_first: ProviderGraph, fake_time: Loop
) -> None:
    """LowestLatency learns a stream's time to first token, not its length."""
    await emu.set_faults("onetoken", Faults(ttft=0.3, inter_chunk=0.5))
    policy = LowestLatency(seed=0)
    async with Router(onetoken_first, policy=policy) as router:
        chunks = await _collect(router, max_tokens=6)
        offer = onetoken_first.offer("onetoken", "gpt-4o-mini")
        assert chunks[-1].route.gateway == "onetoken"  # type: ignore[union-attr]
        assert policy.score(offer, fake_time.time()) == pytest.approx(0.3, abs=0.05)


async def test_a_thousand_abandoned_streams_leave_nothing_open(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """500 consumers stop reading, 500 are cancelled: no slot, reservation, probe or connection is left."""
    await emu.set_faults("onetoken", Faults(stall_after=2))
    await emu.set_faults("onellm", Faults(outage="refuse"))
    async with Router(graph) as router:

        async def stop_early() -> None:
            async with router.stream("gpt-4o-mini", HI, max_tokens=20) as stream:
                async for _ in stream:
                    break

        async def read_forever() -> None:
            async for _ in router.stream("gpt-4o-mini", HI, max_tokens=20):
                pass

        early = [asyncio.create_task(stop_early()) for _ in range(500)]
        stuck = [asyncio.create_task(read_forever()) for _ in range(500)]
        await asyncio.gather(*early)
        await asyncio.sleep(1)
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        await asyncio.sleep(0.1)
        snap = router.admission.snapshot("onetoken", fake_time.time())
        assert (snap.in_flight, snap.reserved_tokens) == (0, 0)
        assert router.health.breaker("onetoken", "gpt-4o-mini").probes_in_flight == 0
        assert emu.stats("onetoken").in_flight == 0, "the emulator saw every connection close"
        assert emu.stats("onetoken").streams >= 500, (
            "cancelled ones still queued for a connection never got there"
        )


# -- edge cases the emulator does not produce, with the in-memory transport -----------------


def _sse(*events: dict[str, Any] | str) -> bytes:
    out = b""
    for event in events:
        data = event if isinstance(event, str) else json.dumps(event)
        out += f"data: {data}\n\n".encode()
    return out


def _delta(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "s1",
        "choices": [
            {"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}
        ],
    }


def _mock_graph(*names: str, prefill: bool = False) -> ProviderGraph:
    gateways = [
        Gateway.openai_compatible(
            name,
            f"http://{name}.test/v1",
            "k",
            offers=[
                Offer(
                    "m",
                    "m",
                    0.1 * (i + 1),
                    0.1 * (i + 1),
                    capabilities=Capabilities(streaming=True, assistant_prefill=prefill and i > 0),
                )
            ],
        )
        for i, name in enumerate(names)
    ]
    return ProviderGraph.from_catalogs(gateways)


async def test_missing_usage_is_estimated_and_marked() -> None:
    """A stream without a usage chunk ends with an estimate, marked as one."""
    transport = MockTransport(
        lambda wire: Response(200, {}, _sse(_delta("Hello there"), _delta(None, "stop"), "[DONE]"))
    )
    async with Router(_mock_graph("a"), transport=transport) as router:
        chunks = await _collect(router, "m")
    last = chunks[-1]
    assert last.usage is not None and last.usage.estimated and last.usage.completion_tokens == 3
    assert last.finish_reason == "stop"


@pytest.mark.parametrize(
    ("body", "complete"),
    [
        (_sse(_delta("Hel"), _delta("lo")), False),
        (_sse(_delta("Hel"), _delta("lo"), _delta(None, "stop")), True),
        (_sse(_delta("Hel"), _delta("lo"), "[DONE]"), True),
    ],
    ids=["no-done-no-finish", "finish-without-done", "done-without-finish"],
)
async def test_a_stream_is_complete_only_with_done_or_a_finish_reason(body: bytes, complete: bool) -> None:
    """Ending with neither [DONE] nor a finish reason is a cut, never a short answer passed off as whole."""
    transport = MockTransport(lambda wire: Response(200, {}, body))
    async with Router(_mock_graph("a"), transport=transport) as router:
        if complete:
            assert _text(await _collect(router, "m")) == "Hello"
        else:
            with pytest.raises(StreamInterrupted) as info:
                await _collect(router, "m")
            assert isinstance(info.value.cause, StreamCut) and info.value.delivered == "Hello"


async def test_a_restart_continues_from_the_delivered_text_where_the_target_takes_a_prefill() -> None:
    """The next target takes an assistant prefill: it continues, and the caller gets the whole answer."""
    sent: list[WireRequest] = []

    def handler(wire: WireRequest) -> Response:
        sent.append(wire)
        if wire.gateway == "a":
            return Response(200, {}, _sse(_delta("Once "), _delta("upon ")))  # cut: no end
        return Response(200, {}, _sse(_delta("a time."), _delta(None, "stop"), "[DONE]"))

    async with Router(_mock_graph("a", "b", prefill=True), transport=MockTransport(handler)) as router:
        chunks = await _collect(router, "m", restart=True)
    marker = next(i for i, c in enumerate(chunks) if c.restart)
    assert _text(chunks[:marker]) == "Once upon "
    assert _text(chunks[marker + 1 :]) == "Once upon a time."
    continued = sent[1].json()["messages"]
    assert continued[-1] == {"role": "assistant", "content": "Once upon "}


async def test_a_failed_restart_raises_the_first_interruption() -> None:
    """When the restart finds nothing either, the error is the interruption, not the later failure."""

    def handler(wire: WireRequest) -> Response:
        if wire.gateway == "a":
            return Response(200, {}, _sse(_delta("Half")))
        return Response(503, {}, b'{"error": {"message": "overloaded"}}')

    async with Router(_mock_graph("a", "b"), transport=MockTransport(handler)) as router:
        with pytest.raises(StreamInterrupted) as info:
            await _collect(router, "m", restart=True)
    assert isinstance(info.value.cause, StreamCut) and info.value.__cause__ is info.value.cause
    assert any(e.status == 503 for e in info.value.errors)


def test_bad_input_raises_when_the_stream_is_made() -> None:
    """stream() validates at once, before anything is sent."""
    router = Router(_mock_graph("a"), transport=MockTransport(lambda wire: Response(500, {}, b"")))
    with pytest.raises(Exception, match="temperature"):
        router.stream("m", HI, temperature=9)


class _UnfinishedBody:
    """A complete answer's body that the transport could not read in time."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._pieces()

    async def _pieces(self) -> AsyncIterator[bytes]:
        raise UpstreamTimeout("onellm", status=200, detail="the reply did not finish within 5s")
        yield b""  # an async generator

    async def read(self) -> bytes:
        raise UpstreamTimeout("onellm", status=200, detail="the reply did not finish within 5s")

    async def aclose(self) -> None:
        """Nothing to let go of."""


async def test_a_whole_answer_served_as_a_stream_keeps_the_transports_own_error() -> None:
    """OneLLM's complete answer read as a stream: a body that timed out is the transport's timeout."""
    graph = ProviderGraph.from_catalogs([Gateway.onellm("k", base_url="http://onellm.test")])
    transport = MockTransport(lambda wire: Response(200, {}, _UnfinishedBody()))
    async with Router(graph, transport=transport) as router:
        with pytest.raises(AllCandidatesFailed) as info:
            await _collect(router, "gpt-4o-mini")
    assert info.value.attempts and all(
        a.outcome == "UpstreamTimeout" and a.error is not None and "the reply did not finish" in a.error
        for a in info.value.attempts
    )
