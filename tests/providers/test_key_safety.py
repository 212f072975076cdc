"""API keys never appear in reprs, logs, exceptions or traces, and go only to their own gateway."""

from __future__ import annotations

import asyncio
import json
import logging
import traceback
from typing import Any

import pytest
from switchyard.providers import (
    AiohttpTransport,
    ChatRequest,
    Gateway,
    ProviderGraph,
    Response,
    Timeouts,
    UpstreamError,
)
from switchyard.providers.wire import adapter_for

from .._loopback import closed_port, read_request, response_head, serve

KEY = "sk-LEAKCHECK-7f3a9c1e5b2d"
MODEL = {
    "onellm": "GPT-4o-mini",
    "oneai": "kimi",
    "onetoken": "gpt-4o-mini",
    "onerouter": "claude-3-5-sonnet@20240620",
}


def _texts(error: BaseException) -> list[str]:
    """Everything an error shows: str, repr, the formatted traceback with its causes."""
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


async def _fail(base: str, gateway_name: str = "oneai", *, timeouts: Timeouts | None = None) -> UpstreamError:
    gw = Gateway.builtin(gateway_name, KEY, base_url=base + ("" if gateway_name == "onellm" else "/v1"))
    graph = ProviderGraph.from_catalogs([gw])
    offer = graph.offer(gw.name, MODEL[gw.name])
    adapter = adapter_for(gw)
    wire = adapter.build(ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}]), offer, gw)
    assert KEY not in repr(wire) and KEY not in repr(gw) and KEY not in repr(offer)
    transport = AiohttpTransport()
    try:
        response = await transport.request(wire, timeouts or Timeouts())
        assert KEY not in repr(response)
        try:
            await adapter.answer(response, wire, offer, gw, wall_now=0)
        finally:
            await response.aclose()
    except UpstreamError as exc:
        return exc
    finally:
        await transport.aclose()
    raise AssertionError("expected a failure")


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(status, headers, length=len(body)) + body)
        await writer.drain()

    return script


ECHO = json.dumps(
    {"error": {"message": f"Incorrect API key provided: {KEY}. Authorization: Bearer {KEY}"}}
).encode()
SCENARIOS = {
    "401-echoing-the-key": _answer(401, ECHO),
    "500-echoing-the-key": _answer(500, ECHO),
    "429-echoing-the-key": _answer(429, ECHO, {"Retry-After": "1"}),
    "html-page-with-key": _answer(502, f"<html><title>bad {KEY}</title></html>".encode()),
    "malformed-200": _answer(200, f"not json {KEY}".encode()),
    "200-error-object": _answer(
        200, json.dumps({"error": {"code": 503, "message": f"key {KEY} over"}}).encode()
    ),
    "redirect": _answer(302, b"", {"Location": f"https://evil.example/?key={KEY}"}),
}


@pytest.mark.parametrize("gateway", ["oneai", "onellm"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=list(SCENARIOS))
async def test_no_failure_shows_the_key(
    scenario: str, gateway: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Gateways that echo the key in errors, pages or redirects do not leak it into any error or log."""
    with caplog.at_level(logging.DEBUG):
        async with serve(SCENARIOS[scenario]) as base:
            error = await _fail(base, gateway)
    for text in _texts(error):
        assert KEY not in text
    assert KEY not in repr(vars(error))
    assert all(KEY not in record.getMessage() for record in caplog.records)


async def test_connection_and_timeout_failures_show_no_key(
    caplog: pytest.LogCaptureFixture, fake_time: asyncio.AbstractEventLoop
) -> None:
    """Refused connections and timeouts carry no key in their text or their cause chain."""
    hang = asyncio.Event()

    async def hanging(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await hang.wait()

    with caplog.at_level(logging.DEBUG):
        refused = await _fail(f"http://127.0.0.1:{closed_port()}")
        async with serve(hanging) as base:
            timed_out = await _fail(base, timeouts=Timeouts(first_byte=2))
    for error in (refused, timed_out):
        for text in _texts(error):
            assert KEY not in text
    assert all(KEY not in record.getMessage() for record in caplog.records)


async def test_stream_errors_show_no_key(fake_time: asyncio.AbstractEventLoop) -> None:
    """An error event echoing the key inside a 200 stream is scrubbed."""
    gw = Gateway.onerouter(KEY)
    adapter = adapter_for(gw)
    offer = ProviderGraph.from_catalogs([gw]).offer("onerouter", MODEL["onerouter"])
    wire = adapter.build(
        ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}]), offer, gw, stream=True
    )
    body = f'data: {{"error": {{"code": 401, "message": "bad key {KEY}"}}}}\n\n'.encode()

    async def consume() -> None:
        async for _ in adapter.deltas(Response(200, {}, body), wire, offer, gw, wall_now=0):
            pass

    with pytest.raises(UpstreamError) as info:
        await consume()
    for text in _texts(info.value):
        assert KEY not in text


async def test_each_key_goes_only_to_its_own_gateway() -> None:
    """Four gateways on four origins: each origin sees only its own gateway's key."""
    seen: dict[str, list[str]] = {}

    def recorder(name: str) -> Any:
        async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            _, headers, _ = await read_request(reader)
            seen.setdefault(name, []).append(headers.get("authorization", ""))
            writer.write(response_head(500, length=0))
            await writer.drain()

        return script

    names = ["onellm", "oneai", "onetoken", "onerouter"]
    transport = AiohttpTransport()
    try:
        async with (
            serve(recorder("onellm")) as b0,
            serve(recorder("oneai")) as b1,
            serve(recorder("onetoken")) as b2,
            serve(recorder("onerouter")) as b3,
        ):
            bases = dict(zip(names, (b0, b1 + "/v1", b2 + "/v1", b3 + "/v1"), strict=True))
            gateways = [Gateway.builtin(n, f"key-of-{n}", base_url=bases[n]) for n in names]
            graph = ProviderGraph.from_catalogs(gateways)
            for gw in gateways:
                offer = graph.offer(gw.name, MODEL[gw.name])
                wire = adapter_for(gw).build(
                    ChatRequest.create(offer.model, [{"role": "user", "content": "hi"}]), offer, gw
                )
                await (await transport.request(wire, Timeouts())).aclose()
    finally:
        await transport.aclose()
    assert seen == {n: [f"Bearer key-of-{n}"] for n in names}
