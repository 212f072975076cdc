"""No object reachable from a raised error holds an API key: causes, contexts, args, attributes."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from switchyard.providers import Gateway, ProviderGraph, RouterError, Timeouts
from switchyard.router import Router

from .._loopback import closed_port, read_request, response_head, serve

KEY = "sk-CHAINCHECK-1b7e40c2d9a8"

_OPAQUE = (
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.FrameType,
    types.TracebackType,
    types.CodeType,
    type,
    asyncio.AbstractEventLoop,
)


def _reachable(root: object) -> list[str]:
    """The text of every object reachable from ``root`` through causes, contexts, args and attributes."""
    seen: set[int] = set()
    stack: list[object] = [root]
    texts: list[str] = []
    while stack:
        obj = stack.pop()
        if obj is None or id(obj) in seen or isinstance(obj, (bool, int, float, *_OPAQUE)):
            continue
        seen.add(id(obj))
        if isinstance(obj, str | bytes | bytearray):
            texts.append(obj.decode("latin-1") if isinstance(obj, bytes | bytearray) else obj)
            continue
        texts.append(repr(obj))
        if isinstance(obj, BaseException):
            texts.append(str(obj))
            stack.extend((obj.__cause__, obj.__context__, *obj.args))
        if isinstance(obj, Mapping):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        if attrs.has(type(obj)):
            stack.extend(getattr(obj, f.name, None) for f in attrs.fields(type(obj)))
        stack.extend(getattr(obj, "__dict__", {}).values())
        for klass in type(obj).__mro__:
            for slot in getattr(klass, "__slots__", ()):
                stack.append(getattr(obj, slot, None))
    return texts


def _answer(status: int, body: bytes, headers: dict[str, str] | None = None) -> Any:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(status, headers, length=len(body)) + body)
        await writer.drain()

    return script


def _raw(data: bytes) -> Any:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(data)
        await writer.drain()

    return script


async def _hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    await asyncio.Event().wait()


def _sse(*events: bytes, cut: bool = False) -> Any:
    body = b"".join(b"data: " + e + b"\n\n" for e in events)
    head = response_head(200, {"Content-Type": "text/event-stream"}, length=None if cut else len(body))

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(head + body)
        await writer.drain()

    return script


ECHO = json.dumps({"error": {"message": f"Incorrect API key: {KEY}. Authorization: Bearer {KEY}"}}).encode()
CHUNK = json.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "hi"}}]}).encode()
SCENARIOS: dict[str, Any] = {
    "not-http": _raw(b"NOT HTTP AT ALL " + KEY.encode() + b"\r\n\r\n"),
    "bad-status-line": _raw(b"HTTP/1.1 abc nope\r\n\r\n"),
    "disconnect": _raw(b""),
    "cut-body": _raw(response_head(200, length=1000) + b'{"choices":'),
    "401-echo": _answer(401, ECHO),
    "402-echo": _answer(402, ECHO),
    "429-echo": _answer(429, ECHO, {"Retry-After": "1"}),
    "500-echo": _answer(500, ECHO),
    "html-echo": _answer(502, f"<html><title>{KEY}</title></html>".encode()),
    "malformed-200": _answer(200, f"not json {KEY}".encode()),
    "invalid-utf8-200": _answer(200, b'{"x": "\xff\xfe' + KEY.encode() + b'"}'),
    "error-object-200": _answer(200, json.dumps({"error": {"code": 400, "message": KEY}}).encode()),
    "redirect": _answer(302, b"", {"Location": f"https://evil.example/?k={KEY}"}),
    "sse-error-event": _sse(json.dumps({"error": {"code": 500, "message": f"bad {KEY}"}}).encode()),
    "sse-not-json": _sse(b"{" + KEY.encode()),
    "sse-cut": _sse(CHUNK, cut=True),
    "hang": _hang,
}


async def _error(base: str | None, *, stream: bool) -> RouterError:
    url = f"http://127.0.0.1:{closed_port()}" if base is None else base
    gw = Gateway.builtin("oneai", KEY, base_url=url + "/v1")
    graph = ProviderGraph.from_catalogs([gw])
    messages = [{"role": "user", "content": "hi"}]
    async with Router(graph, timeout=Timeouts(total=5, first_token=2, stall=2), deadline=8) as router:
        try:
            if stream:
                async for _ in router.stream("kimi", messages):
                    pass
            else:
                await router.chat("kimi", messages, stream_upstream=False)
        except RouterError as exc:
            return exc
    raise AssertionError("expected the request to fail")


@pytest.mark.parametrize("stream", [False, True], ids=["chat", "stream"])
@pytest.mark.parametrize("scenario", [*SCENARIOS, "refused"])
async def test_no_error_chain_holds_the_key(
    scenario: str, stream: bool, fake_time: asyncio.AbstractEventLoop
) -> None:
    """Every failure kind, walked through causes, contexts, args and attributes, shows no key."""
    if scenario == "refused":
        error = await _error(None, stream=stream)
    else:
        async with serve(SCENARIOS[scenario]) as base:
            error = await _error(base, stream=stream)
    leaks = [text for text in _reachable(error) if KEY in text]
    assert not leaks, leaks[:3]


async def test_the_walk_finds_a_key_where_there_is_one() -> None:
    """The walk reaches a key held deep in a chained cause's attributes (the test can fail)."""
    inner = ValueError("x")
    inner.request_info = {"headers": {"Authorization": f"Bearer {KEY}"}}  # type: ignore[attr-defined]
    outer = RouterError("outer")
    outer.__cause__ = inner
    assert any(KEY in text for text in _reachable(outer))


@pytest.mark.parametrize("scenario", ["not-http", "bad-status-line", "disconnect", "malformed-200"])
async def test_no_listing_error_chain_holds_the_key(scenario: str) -> None:
    """A models listing that fails in any of these ways raises a CatalogError whose chain holds no key."""
    import aiohttp
    from switchyard.providers import CatalogError
    from switchyard.providers._listing import fetch_listing

    async with serve(SCENARIOS[scenario]) as base:
        gw = Gateway.onerouter(KEY, base_url=base + "/v1")
        async with aiohttp.ClientSession() as session:
            with pytest.raises(CatalogError) as info:
                await fetch_listing(session, gw, 5.0)
    leaks = [text for text in _reachable(info.value) if KEY in text]
    assert not leaks, leaks[:3]
