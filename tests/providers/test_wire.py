"""Adapter and transport together, against aioresponses: every documented status, every translation."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import aioresponses
from switchyard.providers import (
    AiohttpTransport,
    AuthenticationError,
    BadRequest,
    ChatRequest,
    ContextLengthExceeded,
    EndpointError,
    Gateway,
    InsufficientBalance,
    MalformedReply,
    Overloaded,
    PermissionDenied,
    ProviderGraph,
    RateLimited,
    Reply,
    Route,
    ServerError,
    Timeouts,
    UpstreamError,
)
from switchyard.providers.wire import adapter_for

NOW = 1_700_000_000.0
GATEWAYS = ("onellm", "oneai", "onetoken", "onerouter")
MODEL = {
    "onellm": "GPT-4o-mini",
    "oneai": "deepseek-v3",
    "onetoken": "gpt-4o-mini",
    "onerouter": "claude-3-5-sonnet@20240620",
}
URL = {
    "onellm": "https://onellm.dev/api",
    "oneai": "https://api.oneai.io/v1/chat/completions",
    "onetoken": "https://onetoken.one/v1/chat/completions",
    "onerouter": "https://llm.onerouter.pro/v1/chat/completions",
}
OK = {
    "onellm": {
        "provider": "openai",
        "model": "GPT-4o-mini",
        "role": "assistant",
        "content": "ok",
        "usage": {"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
        "finish_reason": "stop",
    },
    "openai": {
        "id": "chatcmpl-9",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    },
}


def _error_body(gateway: str, message: str) -> dict[str, Any]:
    # OneLLM's document only says to "check the response body"; OpenAI-compatible
    # gateways use {"error": {"message", "type", "code"}}.
    if gateway == "onellm":
        return {"error": message}
    return {"error": {"message": message, "type": "api_error", "code": None}}


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """A transport with its own session, closed after the test."""
    t = AiohttpTransport()
    yield t
    await t.aclose()


@pytest.fixture(scope="module")
def graph() -> ProviderGraph:
    """The four built-in gateways, each with its own key."""
    return ProviderGraph.from_catalogs([Gateway.builtin(n, f"wire-key-{n}-0001") for n in GATEWAYS])


async def _call(transport: AiohttpTransport, graph: ProviderGraph, gateway: str, **params: Any) -> Reply:
    gw, offer = graph.gateway(gateway), graph.offer(gateway, MODEL[gateway])
    adapter = adapter_for(gw)
    request = ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}], **params)
    wire = adapter.build(request, offer, gw)
    response = await transport.request(wire, Timeouts())
    try:
        answer = await adapter.answer(response, wire, offer, gw, wall_now=NOW)
    finally:
        await response.aclose()
    return answer.reply(Route(gw.name, offer.gateway_model, offer.model))


# The union of the four seeds' error tables (OneLLM: 400 401 403 404 405 422 429 500;
# OneAI: 401 402 429 500 503), plus 502 and 504 that any proxy in front may send.
STATUSES: list[tuple[int, type[UpstreamError], str]] = [
    (400, BadRequest, "Invalid JSON or missing required fields."),
    (401, AuthenticationError, "Invalid or missing API key"),
    (402, InsufficientBalance, "Insufficient balance — top up your account"),
    (403, PermissionDenied, "You don't have access to the requested resource"),
    (404, EndpointError, "Invalid Endpoint."),
    (405, EndpointError, "Endpoint does not support the HTTP method used."),
    (422, BadRequest, "Invalid type or format in the request body."),
    (429, RateLimited, "Rate limit exceeded — slow down or upgrade"),
    (500, ServerError, "Server error — we're on it. Retry with backoff"),
    (502, ServerError, "Bad gateway"),
    (503, Overloaded, "Model overloaded — try again or switch models"),
    (504, ServerError, "Gateway timeout"),
]


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize(("status", "cls", "message"), STATUSES, ids=[str(s[0]) for s in STATUSES])
async def test_every_documented_status_becomes_its_typed_error(
    transport: AiohttpTransport,
    graph: ProviderGraph,
    gateway: str,
    status: int,
    cls: type[UpstreamError],
    message: str,
) -> None:
    """Each gateway's error statuses raise the right class with the gateway's own message."""
    headers = {"Retry-After": "3"} if status == 429 else {}
    with aioresponses() as mocked:
        mocked.post(URL[gateway], status=status, payload=_error_body(gateway, message), headers=headers)
        with pytest.raises(cls) as info:
            await _call(transport, graph, gateway)
    error = info.value
    assert type(error) is cls
    assert (error.gateway, error.status, error.upstream_message) == (gateway, status, message)
    assert error.retry_after == (3.0 if status == 429 else None)


@pytest.mark.parametrize("gateway", GATEWAYS)
@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (200, b"", MalformedReply),
        (200, b'{"choices": [', MalformedReply),
        (200, b"<html><head><title>Maintenance</title></head></html>", MalformedReply),
        (502, b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>", ServerError),
        (
            400,
            json.dumps({"error": {"message": "maximum context length is 128000 tokens"}}).encode(),
            ContextLengthExceeded,
        ),
    ],
    ids=["empty-200", "bad-json-200", "html-200", "html-502", "context-length-400"],
)
async def test_malformed_and_html_answers_are_typed(
    transport: AiohttpTransport,
    graph: ProviderGraph,
    gateway: str,
    status: int,
    body: bytes,
    cls: type[UpstreamError],
) -> None:
    """An empty or broken 200, an HTML error page and a context-length 400 each get their class."""
    with aioresponses() as mocked:
        mocked.post(
            URL[gateway],
            status=status,
            body=body,
            content_type="text/html" if b"<html" in body else "application/json",
        )
        with pytest.raises(cls):
            await _call(transport, graph, gateway)


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_a_good_answer_parses(transport: AiohttpTransport, graph: ProviderGraph, gateway: str) -> None:
    """Each gateway's 200 becomes a Reply."""
    with aioresponses() as mocked:
        mocked.post(URL[gateway], payload=OK["onellm" if gateway == "onellm" else "openai"])
        reply = await _call(transport, graph, gateway)
    assert (reply.text, reply.usage.total_tokens, reply.route.gateway) == ("ok", 4, gateway)


SENT = {
    "onellm": {"temperature": 0.5, "top_p": 0.5, "max_tokens": 9, "stop_sequences": ["Z"]},
    "oneai": {
        "temperature": 0.5,
        "top_p": 0.5,
        "max_tokens": 9,
        "stop": ["Z"],
        "seed": 3,
        "frequency_penalty": 1.0,
        "presence_penalty": -1.0,
        "user": "me",
    },
    "onetoken": {
        "temperature": 0.5,
        "top_p": 0.5,
        "max_tokens": 9,
        "stop": ["Z"],
        "seed": 3,
        "frequency_penalty": 1.0,
        "presence_penalty": -1.0,
        "user": "me",
    },
    "onerouter": {
        "temperature": 0.5,
        "top_p": 0.5,
        "max_tokens": 9,
        "stop": ["Z"],
        "seed": 3,
        "frequency_penalty": 1.0,
        "presence_penalty": -1.0,
        "user": "me",
        "usage": {"include": True},
    },
}
DROPPED = {"onellm": ("seed", "frequency_penalty", "presence_penalty", "user")}


@pytest.mark.parametrize("gateway", GATEWAYS)
async def test_parameters_go_on_the_wire_translated(
    transport: AiohttpTransport, graph: ProviderGraph, gateway: str
) -> None:
    """What reaches each gateway is its own translation; the reply lists what was dropped."""
    params = {
        "temperature": 0.5,
        "top_p": 0.5,
        "max_tokens": 9,
        "stop": "Z",
        "seed": 3,
        "frequency_penalty": 1.0,
        "presence_penalty": -1.0,
        "user": "me",
    }
    with aioresponses() as mocked:
        mocked.post(URL[gateway], payload=OK["onellm" if gateway == "onellm" else "openai"])
        reply = await _call(transport, graph, gateway, **params)
    ((key, calls),) = mocked.requests.items()
    (call,) = calls
    assert (key[0], str(key[1])) == ("POST", URL[gateway])
    body = json.loads(call.kwargs["data"])
    assert body.pop("model") == MODEL[gateway]
    assert body.pop("messages") == [{"role": "user", "content": "hi"}]
    assert body == SENT[gateway]
    assert set(reply.dropped_params) == set(DROPPED.get(gateway, ()))
    assert call.kwargs["headers"]["Authorization"] == f"Bearer wire-key-{gateway}-0001"
    assert call.kwargs["allow_redirects"] is False
