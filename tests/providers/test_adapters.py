"""Wire adapters: each gateway's request body and reply, normalized to one value."""

from __future__ import annotations

import json
from typing import Any

import pytest
from multidict import CIMultiDict
from openai.types.chat import ChatCompletion
from switchyard.providers import (
    Capabilities,
    ChatRequest,
    Gateway,
    MalformedReply,
    Offer,
    ProviderGraph,
    RateLimited,
    Reply,
    Response,
    Route,
    ServerError,
    StreamCut,
    UnsupportedFeature,
    UpstreamError,
)
from switchyard.providers._onellm import OneLLMAdapter
from switchyard.providers._openai import OpenAIAdapter
from switchyard.providers.wire import Delta, adapter_for

from ._deltas import read_deltas

NOW = 1_700_000_000.0
ALL_PARAMS: dict[str, Any] = {
    "temperature": 0.3,
    "top_p": 0.9,
    "max_tokens": 64,
    "stop": ["END"],
    "seed": 7,
    "frequency_penalty": 0.1,
    "presence_penalty": 0.2,
    "user": "u-1",
}
MESSAGES = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def graph() -> ProviderGraph:
    """The four built-in gateways with keys."""
    return ProviderGraph.from_catalogs(
        [Gateway.builtin(n, f"key-{n}-123456") for n in ("onellm", "oneai", "onetoken", "onerouter")]
    )


def _build(
    graph: ProviderGraph, gateway: str, model: str, *, stream: bool = False, **params: Any
) -> tuple[dict[str, Any], Any]:
    gw = graph.gateway(gateway)
    offer = graph.offer(gateway, model)
    request = ChatRequest.create(offer.model, MESSAGES, **params)
    wire = adapter_for(gw).build(request, offer, gw, stream=stream)
    return wire.json(), wire


# What each gateway's body carries for the same request (ALL_PARAMS), and what is dropped.
EXPECTED: list[tuple[str, str, dict[str, Any], tuple[str, ...]]] = [
    (
        "oneai",
        "deepseek-v3",
        {"role0": "system", **ALL_PARAMS},
        (),
    ),
    (
        "onetoken",
        "gpt-4o-mini",
        {"role0": "developer", **ALL_PARAMS},
        (),
    ),
    (
        "onetoken",
        "gpt-4o-search-preview",
        {
            "role0": "developer",
            "max_tokens": 64,
            "stop": ["END"],
            "seed": 7,
            "user": "u-1",
            "web_search_options": {},
        },
        ("temperature", "top_p", "frequency_penalty", "presence_penalty"),
    ),
    (
        "onerouter",
        "claude-3-5-sonnet@20240620",
        {"role0": "system", **ALL_PARAMS, "usage": {"include": True}},
        (),
    ),
    (
        "onellm",
        "GPT-4o-mini",
        {"role0": "system", "temperature": 0.3, "top_p": 0.9, "max_tokens": 64, "stop_sequences": ["END"]},
        ("seed", "frequency_penalty", "presence_penalty", "user"),
    ),
]


@pytest.mark.parametrize(
    ("gateway", "model", "expected", "dropped"), EXPECTED, ids=[f"{g}:{m}" for g, m, _, _ in EXPECTED]
)
def test_each_gateway_gets_its_own_body(
    graph: ProviderGraph, gateway: str, model: str, expected: dict[str, Any], dropped: tuple[str, ...]
) -> None:
    """One request becomes each gateway's body by the one table: renamed, dropped, or added."""
    body, wire = _build(graph, gateway, model, **ALL_PARAMS)
    expected = dict(expected)
    role0 = expected.pop("role0")
    assert body.pop("model") == model
    messages = body.pop("messages")
    assert [m["role"] for m in messages] == [role0, "user"]
    assert body == expected
    assert set(wire.dropped) == set(dropped)


def test_onellm_never_gets_stream_or_stop(graph: ProviderGraph) -> None:
    """OneLLM gets stop_sequences, never stop or stream; asked to stream, it is asked for the whole answer."""
    body, _ = _build(graph, "onellm", "Sonnet-3.7", stop="###")
    assert body["stop_sequences"] == ["###"] and "stop" not in body and "stream" not in body
    streamed, wire = _build(graph, "onellm", "Sonnet-3.7", stream=True, stop="###")
    assert streamed == body and not wire.stream and wire.headers["Accept"] == "application/json"
    assert str(graph.gateway("onellm").chat_url) == "https://onellm.dev/api"


@pytest.mark.parametrize(
    ("gateway", "model", "stream_fields"),
    [
        ("oneai", "deepseek-v3", {"stream": True, "stream_options": {"include_usage": True}}),
        ("onetoken", "gpt-4o-mini", {"stream": True, "stream_options": {"include_usage": True}}),
        ("onerouter", "claude-3-5-sonnet@20240620", {"stream": True, "usage": {"include": True}}),
    ],
)
def test_streams_ask_for_final_usage(
    graph: ProviderGraph, gateway: str, model: str, stream_fields: dict[str, Any]
) -> None:
    """A streamed request asks for the final usage chunk the way each gateway takes it."""
    body, wire = _build(graph, gateway, model, stream=True)
    assert {k: body[k] for k in stream_fields} == stream_fields
    assert wire.headers["Accept"] == "text/event-stream"


@pytest.mark.parametrize(
    ("gateway", "model", "params", "messages", "need"),
    [
        ("onellm", "GPT-4o", {"tools": [{"type": "function", "function": {"name": "f"}}]}, None, "tools"),
        ("onellm", "GPT-4o", {"response_format": {"type": "json_object"}}, None, "json_mode"),
        (
            "onellm",
            "GPT-4o",
            {},
            [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}],
            "images",
        ),
        ("oneai", "kimi", {"web_search_options": {}}, None, "web_search"),
        ("onellm", "GPT-4o", {"web_search_options": {}}, None, "web_search"),
    ],
)
def test_what_a_target_cannot_carry_is_refused_before_sending(
    graph: ProviderGraph, gateway: str, model: str, params: dict[str, Any], messages: Any, need: str
) -> None:
    """Tools, JSON mode, images or search are never dropped silently: the adapter refuses."""
    gw, offer = graph.gateway(gateway), graph.offer(gateway, model)
    request = ChatRequest.create(offer.model, messages or [{"role": "user", "content": "x"}], **params)
    adapter = adapter_for(gw)
    assert need in adapter.unmet(request, offer)
    with pytest.raises(UnsupportedFeature, match=need):
        adapter.build(request, offer, gw)


def test_web_search_goes_to_search_models(graph: ProviderGraph) -> None:
    """web_search_options given by the caller reaches a search model unchanged."""
    body, _ = _build(
        graph, "onetoken", "gpt-4o-mini-search-preview", web_search_options={"search_context_size": "low"}
    )
    assert body["web_search_options"] == {"search_context_size": "low"}


def test_adapters_are_chosen_by_wire_and_dialect(graph: ProviderGraph) -> None:
    """OneLLM gets its own adapter; each OpenAI-compatible gateway its dialect."""
    assert isinstance(adapter_for(graph.gateway("onellm")), OneLLMAdapter)
    router = adapter_for(graph.gateway("onerouter"))
    assert isinstance(router, OpenAIAdapter) and router.dialect.usage_include
    assert adapter_for(graph.gateway("onetoken")).dialect.developer_role  # type: ignore[union-attr]


def test_wire_request_repr_hides_the_key(graph: ProviderGraph) -> None:
    """The key sits only in the Authorization header, and no repr shows it."""
    _, wire = _build(graph, "oneai", "kimi")
    assert wire.headers["Authorization"] == "Bearer key-oneai-123456"
    assert "key-oneai-123456" not in repr(wire)
    assert "key-oneai-123456" not in wire.body.decode()


# -- replies -------------------------------------------------------------------------------

OPENAI_REPLY = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_001,
    "model": "x",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
}
ONELLM_REPLY = {
    "provider": "openai",
    "model": "GPT-4.1",
    "role": "assistant",
    "content": "Hello!",
    "usage": {"input_tokens": 12, "output_tokens": 3, "total_tokens": 15},
    "finish_reason": "stop",
}
ONEROUTER_REPLY = {
    **OPENAI_REPLY,
    "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15, "cost": 0.000081},
}
FORMATS = [
    ("oneai", "deepseek-v3", OPENAI_REPLY),
    ("onetoken", "gpt-4o-mini", OPENAI_REPLY),
    ("onerouter", "claude-3-5-sonnet@20240620", ONEROUTER_REPLY),
    ("onellm", "GPT-4.1", ONELLM_REPLY),
]


async def _parse(
    graph: ProviderGraph, gateway: str, model: str, body: Any, status: int = 200, **headers: str
) -> Reply:
    """The adapter's answer to a complete response, with the route the router would attach."""
    gw, offer = graph.gateway(gateway), graph.offer(gateway, model)
    adapter = adapter_for(gw)
    request = ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}], seed=1)
    wire = adapter.build(request, offer, gw)
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    answer = await adapter.answer(Response(status, CIMultiDict(headers), raw), wire, offer, gw, wall_now=NOW)
    route = Route(gw.name, offer.gateway_model, offer.model, output_capped=answer.output_capped)
    return answer.reply(route)


@pytest.mark.parametrize(("gateway", "model", "body"), FORMATS, ids=[f[0] for f in FORMATS])
async def test_every_format_normalizes_to_one_reply_the_sdk_accepts(
    graph: ProviderGraph, gateway: str, model: str, body: dict[str, Any]
) -> None:
    """A reply in each of the four formats becomes the same Reply; to_openai() validates as ChatCompletion."""
    reply = await _parse(graph, gateway, model, body)
    assert (reply.text, reply.finish_reason) == ("Hello!", "stop")
    assert (reply.usage.prompt_tokens, reply.usage.completion_tokens, reply.usage.total_tokens) == (12, 3, 15)
    completion = ChatCompletion.model_validate(reply.to_openai())
    assert completion.choices[0].message.content == "Hello!"
    assert completion.usage is not None and completion.usage.total_tokens == 15
    assert reply.dropped_params == (("seed",) if gateway == "onellm" else ())


async def test_cost_comes_from_the_gateway_or_the_catalog(graph: ProviderGraph) -> None:
    """OneRouter's reported cost wins; OneAI's is published price times usage; an unknown price is None."""
    assert (
        await _parse(graph, "onerouter", "claude-3-5-sonnet@20240620", ONEROUTER_REPLY)
    ).cost_usd == 0.000081
    assert (await _parse(graph, "oneai", "deepseek-v3", OPENAI_REPLY)).cost_usd == pytest.approx(
        (12 * 0.5 + 3 * 2.19) / 1e6
    )
    assert (await _parse(graph, "onellm", "GPT-4.1", ONELLM_REPLY)).cost_usd is None


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("SAFETY", "content_filter"),
        (None, "stop"),
        ("weird", "stop"),
    ],
)
async def test_finish_reasons_normalize(graph: ProviderGraph, raw: str | None, normalized: str) -> None:
    """OneLLM passes its provider's finish reason; it maps onto OpenAI's four and the raw word is kept."""
    reply = await _parse(graph, "onellm", "GPT-4.1", {**ONELLM_REPLY, "finish_reason": raw})
    assert (reply.finish_reason, reply.raw_finish_reason) == (normalized, raw)
    ChatCompletion.model_validate(reply.to_openai())


@pytest.mark.parametrize("raw", [5, ["stop"], {"reason": "stop"}, True])
async def test_a_finish_reason_that_is_not_a_string_counts_as_stop(graph: ProviderGraph, raw: object) -> None:
    """A finish reason that is not a string is no documented word: a reply that ends as ``stop``
    with no raw reason kept (not an AttributeError or TypeError from deep inside)."""
    choice = {**OPENAI_REPLY["choices"][0], "finish_reason": raw}
    reply = await _parse(graph, "oneai", "deepseek-v3", {**OPENAI_REPLY, "choices": [choice]})
    assert (reply.finish_reason, reply.raw_finish_reason) == ("stop", None)


async def test_tool_calls_survive_to_openai(graph: ProviderGraph) -> None:
    """A tool-call reply with no content validates as a ChatCompletion with tool_calls."""
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": 1}'}}
    body = {
        **OPENAI_REPLY,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": None, "tool_calls": [call]},
                "finish_reason": "tool_calls",
            }
        ],
    }
    reply = await _parse(graph, "oneai", "kimi", body)
    completion = ChatCompletion.model_validate(reply.to_openai())
    assert completion.choices[0].message.tool_calls is not None
    assert completion.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("gateway", "model", "body", "why"),
    [
        ("oneai", "kimi", b"", "empty body"),
        ("oneai", "kimi", b"{not json", "not JSON"),
        ("oneai", "kimi", b"<html><title>oops</title></html>", "HTML"),
        ("oneai", "kimi", b"[1, 2]", "not a JSON object"),
        ("oneai", "kimi", {"choices": []}, "no choices"),
        ("oneai", "kimi", {"choices": [{"message": {"role": "assistant"}}]}, "neither content"),
        ("oneai", "kimi", {**OPENAI_REPLY, "usage": None}, "no usage"),
        ("onellm", "GPT-4o", {**ONELLM_REPLY, "content": None}, "content"),
        ("onellm", "GPT-4o", {**ONELLM_REPLY, "usage": {"prompt_tokens": 1}}, "input_tokens"),
    ],
)
async def test_malformed_200s_are_typed(
    graph: ProviderGraph, gateway: str, model: str, body: Any, why: str
) -> None:
    """A 200 that is not a reply is MalformedReply (retryable), never a reply."""
    with pytest.raises(MalformedReply, match=why) as info:
        await _parse(graph, gateway, model, body)
    assert info.value.retryable and info.value.status == 200


async def test_error_inside_a_200_body(graph: ProviderGraph) -> None:
    """OneRouter may answer 200 with an error object; it becomes the typed error it stands for."""
    with pytest.raises(RateLimited, match="inside a 200"):
        await _parse(
            graph, "onerouter", "claude-3-5-sonnet@20240620", {"error": {"code": 429, "message": "busy"}}
        )


async def test_finish_reason_error_is_a_failure(graph: ProviderGraph) -> None:
    """A reply whose finish_reason is 'error' is a server error, not an answer."""
    body = {
        **OPENAI_REPLY,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "par"}, "finish_reason": "error"}
        ],
    }
    with pytest.raises(ServerError):
        await _parse(graph, "onerouter", "claude-3-5-sonnet@20240620", body)


# -- stream events -------------------------------------------------------------------------


def _sse(*events: object) -> bytes:
    return b"".join(f"data: {e if isinstance(e, str) else json.dumps(e)}\n\n".encode() for e in events)


async def _deltas(
    graph: ProviderGraph, gateway: str, model: str, body: bytes, status: int = 200, prefill: str | None = None
) -> list[Delta]:
    gw, offer = graph.gateway(gateway), graph.offer(gateway, model)
    adapter = adapter_for(gw)
    request = ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}])
    wire = adapter.build(request, offer, gw, stream=True, prefill=prefill)
    return await read_deltas(adapter.deltas(Response(status, {}, body), wire, offer, gw, wall_now=NOW))


CHUNK = {"id": "c1", "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}
LAST = {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
USAGE = {
    "id": "c1",
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cost": 0.001},
}


async def test_stream_events_parse_to_deltas(graph: ProviderGraph) -> None:
    """Content, finish reason and the final usage chunk each parse to a delta; [DONE] ends them."""
    body = _sse(CHUNK, LAST, USAGE, "[DONE]", CHUNK)
    text, last, usage = await _deltas(graph, "onerouter", "claude-3-5-sonnet@20240620", body)
    assert (text.text, text.response_id) == ("Hel", "c1")
    assert last.finish_reason == "stop"
    assert usage.usage is not None and usage.usage.reported_cost_usd == 0.001 and usage.text == ""


async def test_a_refused_stream_is_its_typed_error(graph: ProviderGraph) -> None:
    """A stream answered with a status other than 200 raises what the status and body say."""
    with pytest.raises(RateLimited):
        await _deltas(graph, "oneai", "kimi", b'{"error": {"message": "slow down"}}', status=429)


@pytest.mark.parametrize(
    ("body", "cls", "match"),
    [
        (_sse(CHUNK), StreamCut, "without \\[DONE\\] or a finish reason after 1 chunks"),
        (_sse(USAGE), StreamCut, "ended before any content"),
        (_sse(LAST, "[DONE]"), MalformedReply, "finished without any content"),
        (_sse(LAST), MalformedReply, "finished without any content"),
        (b": keep-alive\n\n", MalformedReply, "held no server-sent events \\(1 comment lines\\)"),
    ],
    ids=["cut", "cut-before-content", "empty-done", "empty-finished", "no-events"],
)
async def test_a_stream_ends_only_when_complete(
    graph: ProviderGraph, body: bytes, cls: type[UpstreamError], match: str
) -> None:
    """Deltas end only for a finished answer with content: a cut or an empty stream raises its error."""
    with pytest.raises(cls, match=match):
        await _deltas(graph, "oneai", "kimi", body)


async def test_an_empty_continuation_of_a_prefill_is_complete() -> None:
    """A target continuing a prefill may add nothing, provided it says why it stopped."""
    gw = Gateway.openai_compatible(
        "p",
        "https://p.example/v1",
        "key-p",
        offers=[Offer("m", capabilities=Capabilities(assistant_prefill=True))],
    )
    graph = ProviderGraph.from_catalogs([gw])
    wire = adapter_for(gw).build(
        ChatRequest.create("m", [{"role": "user", "content": "hi"}]),
        graph.offer("p", "m"),
        gw,
        prefill="Once",
    )
    assert wire.prefilled == "Once" and wire.json()["messages"][-1] == {
        "role": "assistant",
        "content": "Once",
    }
    deltas = await _deltas(graph, "p", "m", _sse(LAST, "[DONE]"), prefill="Once")
    assert [d.finish_reason for d in deltas] == ["stop"]
    with pytest.raises(MalformedReply, match="without any content"):
        await _deltas(graph, "p", "m", _sse("[DONE]"), prefill="Once")


async def test_a_prefill_goes_only_where_it_is_taken(graph: ProviderGraph) -> None:
    """A target not marked assistant_prefill (and OneLLM) gets no prefill, and says so."""
    for gateway, model in (("oneai", "kimi"), ("onellm", "GPT-4.1")):
        gw, offer = graph.gateway(gateway), graph.offer(gateway, model)
        request = ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}])
        wire = adapter_for(gw).build(request, offer, gw, stream=True, prefill="Once")
        assert wire.prefilled == "" and wire.json()["messages"][-1]["role"] == "user"


async def test_onellm_gives_its_whole_answer_as_one_delta(graph: ProviderGraph) -> None:
    """OneLLM does not stream: its complete reply is one delta with everything in it."""
    (delta,) = await _deltas(graph, "onellm", "GPT-4.1", json.dumps(ONELLM_REPLY).encode())
    assert (delta.text, delta.finish_reason) == ("Hello!", "stop")
    assert delta.usage is not None and delta.usage.total_tokens == 15 and delta.response_id


@pytest.mark.parametrize(
    ("data", "cls", "match"),
    [
        (
            '{"error": {"code": 502, "message": "Provider returned error"}}',
            ServerError,
            "Provider returned error",
        ),
        ('{"error": {"message": "upstream died"}}', ServerError, "upstream died"),
        ("not json at all", MalformedReply, "not JSON"),
        ('["a"]', MalformedReply, "not a JSON object"),
        ('{"choices": [{"delta": {"content": 5}}]}', MalformedReply, "not a string"),
        ('{"choices": [{"delta": {}, "finish_reason": "error"}]}', ServerError, "finish_reason 'error'"),
    ],
)
def test_bad_stream_events_are_typed_errors(
    graph: ProviderGraph, data: str, cls: type[UpstreamError], match: str
) -> None:
    """An error event inside a 200 stream, or an event that is not a JSON chunk, raises its typed error."""
    gw = graph.gateway("onerouter")
    adapter = adapter_for(gw)
    assert isinstance(adapter, OpenAIAdapter)
    with pytest.raises(cls, match=match):
        adapter.parse_event(data, gw, wall_now=NOW)
