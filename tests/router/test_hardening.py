"""The hardening issue's defects, each pinned: streams, Retry-After, waiting, config, loops, hooks."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
import looptime
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from switchyard.policies import FailoverOn5xx, RateLimitAware
from switchyard.providers import (
    AllCandidatesFailed,
    Capabilities,
    ConfigError,
    Gateway,
    MalformedReply,
    MockTransport,
    ModelUnavailable,
    NoCandidatesError,
    Offer,
    ProviderGraph,
    Response,
    RouterError,
    StreamCut,
    Tier,
    UnsupportedFeature,
    ValidationError,
    WireRequest,
)
from switchyard.providers.emulator import Emulator
from switchyard.router import Backoff, Event, Router, SaturatedError

from .conftest import HI

Handler = Callable[[WireRequest], Response | Awaitable[Response]]


def _graph(
    *names: str, tier: Tier | None = None, caps: dict[str, Capabilities] | None = None
) -> ProviderGraph:
    """OpenAI-compatible gateways each selling model 'm', the first the cheapest."""
    gateways = [
        Gateway.openai_compatible(
            name,
            f"http://{name}.test/v1",
            f"key-{name}",
            offers=[
                Offer(
                    "m",
                    "m",
                    0.1 * (i + 1),
                    0.1 * (i + 1),
                    capabilities=(caps or {}).get(name, Capabilities(streaming=True)),
                )
            ],
            tier=tier,
        )
        for i, name in enumerate(names)
    ]
    return ProviderGraph.from_catalogs(gateways)


def _sse(*events: dict[str, Any] | str) -> bytes:
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


OK_STREAM = _sse(_chunk({"content": "fine"}), _chunk({}, "stop"), "[DONE]")
OK_REPLY = json.dumps(
    {
        "id": "r",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()


def _ok(wire: WireRequest) -> Response:
    return Response(200, {}, OK_STREAM if wire.stream else OK_REPLY)


# -- 2: tool calls assembled from a streaming upstream ---------------------------------------------

TOOL_CHUNKS = [
    _chunk({"role": "assistant", "content": None}),
    _chunk(
        {
            "tool_calls": [
                {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get", "arguments": ""}}
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
    _chunk(
        {
            "tool_calls": [
                {"index": 1, "id": "call_b", "type": "function", "function": {"name": "put", "arguments": ""}}
            ]
        }
    ),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": '{"x": '}}]}),
    _chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
    _chunk({"tool_calls": [{"index": 1, "function": {"arguments": "1}"}}]}),
    _chunk({}, "tool_calls"),
]
TOOLS = [
    {"type": "function", "function": {"name": "get", "parameters": {"type": "object"}}},
    {"type": "function", "function": {"name": "put", "parameters": {"type": "object"}}},
]


def _sdk_calls(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the official SDK's stream accumulator makes of the same chunks."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk))
    message = state.get_final_completion().choices[0].message
    assert message.tool_calls is not None
    return [
        {"id": c.id, "type": c.type, "function": {"name": c.function.name, "arguments": c.function.arguments}}
        for c in message.tool_calls  # type: ignore[union-attr]
    ]


async def test_chat_over_a_streaming_upstream_keeps_tool_calls_as_the_sdk_assembles_them() -> None:
    """Interleaved tool-call deltas with split arguments become the SDK's calls; to_openai() validates."""
    body = _sse(*TOOL_CHUNKS, "[DONE]")
    transport = MockTransport(lambda wire: Response(200, {}, body))
    async with Router(_graph("a"), transport=transport) as router:
        reply = await router.chat("m", HI, tools=TOOLS, tool_choice="required", stream_upstream=True)
    assert reply.finish_reason == "tool_calls"
    assert [dict(c) for c in reply.tool_calls or ()] == _sdk_calls(TOOL_CHUNKS)
    assert json.loads(reply.tool_calls[1]["function"]["arguments"]) == {"x": 1}  # type: ignore[index]
    message = ChatCompletion.model_validate(reply.to_openai()).choices[0].message
    assert message.tool_calls is not None and message.tool_calls[0].function.arguments == '{"city": "Oslo"}'  # type: ignore[union-attr]


async def test_stream_passes_tool_call_pieces_through() -> None:
    """stream() hands each tool-call piece to the caller as it came."""
    body = _sse(*TOOL_CHUNKS, "[DONE]")
    transport = MockTransport(lambda wire: Response(200, {}, body))
    async with Router(_graph("a"), transport=transport) as router:
        pieces = [c.tool_calls async for c in router.stream("m", HI, tools=TOOLS) if c.tool_calls]
    assert len(pieces) == 6 and pieces[0][0]["id"] == "call_a"


async def test_chat_with_tools_on_the_emulator_streams_and_assembles_them(emu: Emulator) -> None:
    """End to end: the emulator streams a tool call; chat(stream_upstream=True) returns it whole."""
    graph = ProviderGraph.from_catalogs(emu.gateways())
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    async with Router(graph, policy=FailoverOn5xx(["oneai"])) as router:
        plain = await router.chat("deepseek-v3", HI, tools=tools, tool_choice="required")
        streamed = await router.chat(
            "deepseek-v3", HI, tools=tools, tool_choice="required", stream_upstream=True
        )
    for reply in (plain, streamed):
        assert reply.finish_reason == "tool_calls" and reply.tool_calls
        call = reply.tool_calls[0]
        assert call["function"]["name"] == "get_weather"
        assert "city" in json.loads(call["function"]["arguments"])
        ChatCompletion.model_validate(reply.to_openai())
    assert streamed.tool_calls == plain.tool_calls or [
        c["function"]["arguments"] for c in streamed.tool_calls or ()
    ] == [c["function"]["arguments"] for c in plain.tool_calls or ()]


# -- 3: a 200 stream with nothing in it fails over -------------------------------------------------

EMPTY_BODIES = {
    "done-only": _sse("[DONE]"),
    "no-events": b"",
    "html": b"<html><body>Bad gateway</body></html>\n",
    "json": OK_REPLY + b"\n",
    "comments-only": b": keep-alive\n\n: keep-alive\n\n",
    "role-only-then-done": _sse(_chunk({"role": "assistant", "content": ""}), _chunk({}, "stop"), "[DONE]"),
    "role-only-then-end": _sse(_chunk({"role": "assistant", "content": ""})),
    "invalid-utf8": b'data: {"choices": [{"index": 0, "delta": {"content": "\xff\xfe"}}]}\n\n',
}


@pytest.mark.parametrize("mode", ["stream", "chat"])
@pytest.mark.parametrize("body", EMPTY_BODIES.values(), ids=list(EMPTY_BODIES))
async def test_a_200_stream_with_no_content_fails_over(body: bytes, mode: str) -> None:
    """Nothing reached the caller, so an empty or garbage 200 stream moves on to the next candidate."""

    def handler(wire: WireRequest) -> Response:
        return Response(200, {}, body) if wire.gateway == "a" else _ok(wire)

    async with Router(_graph("a", "b"), transport=MockTransport(handler)) as router:
        if mode == "stream":
            chunks = [c async for c in router.stream("m", HI)]
            route = chunks[-1].route
            assert "".join(c.text for c in chunks) == "fine"
        else:
            reply = await router.chat("m", HI, stream_upstream=True)
            route = reply.route
            assert reply.text == "fine"
    assert route is not None and route.gateway == "b"
    assert route.attempts[0].outcome in (MalformedReply.__name__, StreamCut.__name__)


# -- 4, 5, 6: Retry-After clamped, backoff growing, a 503's Retry-After closing its target ----------


async def test_retry_after_is_clamped_to_max_retry_after(fake_time: looptime.LoopTimeEventLoop) -> None:
    """A Retry-After of a billion seconds closes the account for max_retry_after, not for ever."""

    def handler(wire: WireRequest) -> Response:
        if wire.gateway == "a":
            return Response(429, {"retry-after": "1000000000"}, b"{}")
        return _ok(wire)

    async with Router(_graph("a", "b"), transport=MockTransport(handler), max_retry_after=30) as router:
        await router.chat("m", HI)
        now = asyncio.get_running_loop().time()
        closed_for = router.admission.snapshot("a", now).closed_until - now
    assert 0 < closed_for <= 30


async def test_retry_after_zero_is_no_value(fake_time: looptime.LoopTimeEventLoop) -> None:
    """A 429 with Retry-After: 0 and no other candidate is not hammered: about one try a second."""
    transport = MockTransport(lambda wire: Response(429, {"retry-after": "0"}, b"{}"))
    async with Router(_graph("a"), transport=transport, deadline=5) as router:
        with pytest.raises(RouterError):
            await router.chat("m", HI)
    assert 2 <= len(transport.requests) <= 8


@attrs.frozen
class _RecordingBackoff(Backoff):
    steps: list[int] = attrs.field(factory=list)

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        self.steps.append(retry)
        return super().delay(retry, rng, retry_after)


async def test_repeated_retries_of_one_target_back_off_exponentially(
    fake_time: looptime.LoopTimeEventLoop,
) -> None:
    """Each further retry of the same target takes the next step of the full-jitter backoff."""
    backoff = _RecordingBackoff()
    transport = MockTransport(lambda wire: Response(429, {"retry-after-ms": "1"}, b"{}"))
    async with Router(_graph("a"), transport=transport, backoff=backoff, deadline=20) as router:
        with pytest.raises(RouterError):
            await router.chat("m", HI)
    assert backoff.steps[:4] == [0, 1, 2, 3]


async def test_a_503_with_retry_after_closes_its_target(fake_time: looptime.LoopTimeEventLoop) -> None:
    """OneAI's 503 'model overloaded' with Retry-After keeps the next request off that target until then."""
    calls = {"a": 0}

    def handler(wire: WireRequest) -> Response:
        if wire.gateway == "a":
            calls["a"] += 1
            if calls["a"] == 1:
                return Response(503, {"retry-after": "10"}, b'{"error": {"message": "Model overloaded"}}')
        return _ok(wire)

    async with Router(_graph("a", "b"), transport=MockTransport(handler)) as router:
        first = await router.chat("m", HI)
        second = await router.chat("m", HI)
        await asyncio.sleep(11)
        third = await router.chat("m", HI)
    assert [first.route.gateway, second.route.gateway, third.route.gateway] == ["b", "b", "a"]
    assert calls["a"] == 2


# -- 7: waiting for a slot that never frees ------------------------------------------------------


async def test_waiting_for_a_slot_in_vain_is_saturated_naming_the_limit(
    fake_time: looptime.LoopTimeEventLoop,
) -> None:
    """A request that waited for a concurrency slot and never got one says which limit it waited on."""
    release = asyncio.Event()

    async def handler(wire: WireRequest) -> Response:
        await release.wait()
        return _ok(wire)

    async with Router(_graph("a", tier=Tier(concurrency=1)), transport=MockTransport(handler)) as router:
        holder = asyncio.create_task(router.chat("m", HI, deadline=100))
        await asyncio.sleep(0.1)
        with pytest.raises(SaturatedError) as info:
            await router.chat("m", HI, deadline=2)
        release.set()
        await holder
    assert "concurrency" in str(info.value) and info.value.limits


# -- 9, 10: misconfiguration and misuse -------------------------------------------------------------


def test_misconfiguration_is_a_config_error() -> None:
    """A policy given by name, an empty order, an unknown or mis-cased gateway, a double wrapper."""
    graph = _graph("a", "b")
    with pytest.raises(ConfigError, match="policy object"):
        Router(graph, policy="cheapest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        FailoverOn5xx([])
    with pytest.raises(ConfigError, match=r"'A'.*did you mean 'a'"):
        Router(graph, policy=FailoverOn5xx(["A", "b"]))
    with pytest.raises(ConfigError, match="not a gateway"):
        Router(graph, policy=FailoverOn5xx(["oneai"]))
    with pytest.raises(ConfigError, match="wraps a RateLimitAware"):
        RateLimitAware(RateLimitAware())
    with pytest.raises(ConfigError, match="max_retry_after"):
        Router(graph, max_retry_after=0)


def test_a_router_used_from_a_second_event_loop_says_so() -> None:
    """The loop a router first runs on is its loop; another loop gets a clear RouterError."""
    router = Router(_graph("a"), transport=MockTransport(_ok))
    assert asyncio.run(router.chat("m", HI)).text == "fine"
    with pytest.raises(RouterError, match="another event loop"):
        asyncio.run(router.chat("m", HI))

    async def consume() -> None:
        async for _ in router.stream("m", HI):
            pass

    with pytest.raises(RouterError, match="another event loop"):
        asyncio.run(consume())
    asyncio.run(router.aclose())


async def test_a_closed_router_refuses_async_with_and_chat_refuses_stream_true() -> None:
    """`async with` on a closed router raises; chat(stream=True) points to router.stream()."""
    router = Router(_graph("a"), transport=MockTransport(_ok))
    with pytest.raises(ValidationError, match=r"router\.stream"):
        await router.chat("m", HI, stream=True)
    await router.aclose()
    with pytest.raises(RouterError, match="closed"):
        async with router:
            pass


# -- 12, 13, 15: fidelity in routing ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("part", "need"),
    [
        ({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, "images"),
        ({"type": "file", "file": {"file_data": "data:application/pdf;base64,AAAA"}}, "pdf"),
        ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "audio"),
    ],
)
async def test_attachments_are_routed_by_the_models_capability(part: dict[str, Any], need: str) -> None:
    """A model marked unable to read a part is left out in the plan, with the reason."""
    caps = {"a": Capabilities(streaming=True, **{need: False})}
    transport = MockTransport(_ok)
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, part]}]
    async with Router(_graph("a", "b", caps=caps), transport=transport) as router:
        explained = router.explain("m", messages)
        reply = await router.chat("m", messages)
    assert [e.gateway for e in explained.excluded] == ["a"] and need in explained.excluded[0].reason
    assert reply.route.gateway == "b" and [w.gateway for w in transport.requests] == ["b"]


async def test_the_shipped_text_only_deepseek_v3_is_excluded_for_images() -> None:
    """OneAI's deepseek-v3 is text-only in the shipped data: an image request leaves it out."""
    graph = ProviderGraph.from_catalogs([Gateway.oneai("k")])
    messages = [
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x.test/a.png"}}]}
    ]
    transport = MockTransport(_ok)
    async with Router(graph, transport=transport) as router:
        explained = router.explain("deepseek-v3", messages)
        with pytest.raises(UnsupportedFeature, match="images"):
            await router.chat("deepseek-v3", messages)
    assert not explained.candidates and "images" in explained.excluded[0].reason
    assert not transport.requests


async def test_an_unknown_model_answer_fails_over_and_leaves_the_offer_out(
    fake_time: looptime.LoopTimeEventLoop,
) -> None:
    """A gateway's 'Unknown model' (stale snapshot) is no caller error: next gateway, then left out."""

    def handler(wire: WireRequest) -> Response:
        if wire.gateway == "a":
            return Response(400, {}, b'{"error": "Unknown model \'m\'."}')
        return _ok(wire)

    transport = MockTransport(handler)
    async with Router(_graph("a", "b"), transport=transport, unavailable_for=60) as router:
        first = await router.chat("m", HI)
        second = await router.chat("m", HI)
        excluded = router.explain("m", HI).excluded
        await asyncio.sleep(61)
        assert [c.gateway for c in router.explain("m", HI).candidates] == ["a", "b"]
    assert first.route.attempts[0].outcome == ModelUnavailable.__name__ and first.route.gateway == "b"
    assert second.route.gateway == "b" and len(second.route.attempts) == 1
    assert [e.gateway for e in excluded] == ["a"] and "does not serve" in excluded[0].reason


async def test_only_unavailable_offers_left_is_no_candidates(fake_time: looptime.LoopTimeEventLoop) -> None:
    """When every gateway says it does not serve the model, the caller hears that, not a 400."""
    transport = MockTransport(lambda wire: Response(404, {}, b'{"error": {"code": "model_not_found"}}'))
    async with Router(_graph("a"), transport=transport) as router:
        with pytest.raises(AllCandidatesFailed):
            await router.chat("m", HI)
        with pytest.raises(NoCandidatesError, match="does not serve"):
            await router.chat("m", HI)


async def test_at_an_equal_rank_the_target_carrying_every_parameter_wins(emu: Emulator) -> None:
    """Equal prices: a request with seed goes to Onetoken (carries it), not OneLLM (would drop it)."""
    graph = ProviderGraph.from_catalogs(emu.gateways())
    graph.set_price("onellm", "GPT-4o-mini", 0.15, 0.60)
    graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
    async with Router(graph) as router:
        plain = await router.chat("gpt-4o-mini", HI)
        seeded = await router.chat("gpt-4o-mini", HI, seed=7, frequency_penalty=0.5)
    assert plain.route.gateway == "onellm"  # the catalog order, when nothing is dropped
    assert seeded.route.gateway == "onetoken" and seeded.dropped_params == ()


# -- 19, 20: the public surface and hooks -------------------------------------------------------------


def test_router_re_exports_what_its_methods_raise_and_return() -> None:
    """Stream, StreamChunk, StreamInterrupted and CatalogError come from router too."""
    from switchyard import providers, router

    for name in ("Stream", "StreamChunk", "StreamInterrupted", "CatalogError", "ModelUnavailable"):
        assert name in router.__all__
    assert router.StreamInterrupted is providers.StreamInterrupted
    assert router.CatalogError is providers.CatalogError


@pytest.mark.parametrize("mode", ["chat", "stream"])
async def test_a_cancelled_request_emits_request_finished(mode: str) -> None:
    """Cancelling a request (or abandoning its stream) still ends it with request.finished 'cancelled'."""
    hang = asyncio.Event()

    async def handler(wire: WireRequest) -> Response:
        await hang.wait()
        return _ok(wire)

    events: list[Event] = []
    async with Router(_graph("a"), transport=MockTransport(handler), hooks=[events.append]) as router:
        if mode == "chat":
            task = asyncio.create_task(router.chat("m", HI))
        else:

            async def consume() -> None:
                async for _ in router.stream("m", HI):
                    pass

            task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finished = [e for e in events if e.name == "request.finished"]
    assert [e.outcome for e in finished] == ["cancelled"]


async def test_a_stream_read_to_its_end_and_dropped_is_not_cancelled() -> None:
    """A consumer that got the last chunk and then closed the stream finished it: outcome ok."""
    events: list[Event] = []
    async with Router(_graph("a"), transport=MockTransport(_ok), hooks=[events.append]) as router:
        stream = router.stream("m", HI)
        async for chunk in stream:
            if chunk.done:
                break
        await stream.aclose()
    assert [e.outcome for e in events if e.name == "request.finished"] == ["ok"]


# -- 13, 14 end to end on the emulator ------------------------------------------------------------


async def test_a_stale_onellm_snapshot_fails_over_on_the_emulator(emu: Emulator) -> None:
    """OneLLM stops serving a model its shipped snapshot lists: the request goes elsewhere, then skips it."""
    graph = ProviderGraph.from_catalogs(emu.gateways())
    graph.set_price("onellm", "GPT-4o-mini", 0.10, 0.40)
    graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
    emu.remove_offers("onellm", ["GPT-4o-mini"])
    async with Router(graph) as router:
        first = await router.chat("gpt-4o-mini", HI, max_tokens=5)
        second = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    assert [(a.gateway, a.outcome) for a in first.route.attempts] == [
        ("onellm", "ModelUnavailable"),
        ("onetoken", "ok"),
    ]
    assert [a.gateway for a in second.route.attempts] == ["onetoken"]


@pytest.mark.parametrize("stream", [False, True])
async def test_onellms_silent_max_tokens_lowering_is_visible(stream: bool) -> None:
    """A balance that pays for fewer tokens than asked: the reply says the gateway capped it."""
    async with Emulator(seed=0, default_price=(1.0, 20_000.0)) as emu:
        graph = ProviderGraph.from_catalogs(emu.gateways())
        async with Router(graph, policy=FailoverOn5xx(["onellm"])) as router:
            real = await router.chat("gpt-4o-mini", HI, max_tokens=2)
            emu.set_balance("onellm", 0.1001)
            if stream:
                chunks = [c async for c in router.stream("gpt-4o-mini", HI, max_tokens=40)]
                finish, route = chunks[-1].finish_reason, chunks[-1].route
                assert route is not None
                capped = route.output_capped
            else:
                reply = await router.chat("gpt-4o-mini", HI, max_tokens=40)
                finish, capped = reply.finish_reason, reply.output_capped
        assert emu.stats("onellm").max_tokens_lowered == 1
    assert (real.finish_reason, real.output_capped) == ("length", False)
    assert (finish, capped) == ("length", True)
