"""The aiohttp transport on loopback: timeouts, broken connections, redirects, sessions, keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aioresponses import aioresponses
from switchyard.providers import (
    AiohttpTransport,
    ConfigError,
    EndpointError,
    MockTransport,
    Response,
    RouterError,
    StreamCut,
    Timeouts,
    TransportFailure,
    UpstreamConnectionError,
    UpstreamTimeout,
    WireRequest,
)
from switchyard.providers._classify import classify
from yarl import URL

from .._loopback import closed_port, read_request, response_head, serve

KEY = "transport-key-77"


def _wire(
    base: str, *, path: str = "/v1/chat/completions", key_origin: str | None = None, stream: bool = False
) -> WireRequest:
    url = URL(base + path)
    return WireRequest(
        gateway="oneai",
        method="POST",
        url=url,
        key_origin=URL(key_origin) if key_origin else url.origin(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        body=b'{"model": "m"}',
        stream=stream,
    )


async def _send(
    transport: AiohttpTransport | MockTransport, wire: WireRequest, timeouts: Timeouts
) -> Response:
    """Send, and read the whole body: the response, with the body as its content."""
    response = await transport.request(wire, timeouts)
    try:
        return Response(response.status, response.headers, await response.read())
    finally:
        await response.aclose()


@pytest.fixture
async def transport() -> AsyncIterator[AiohttpTransport]:
    """A transport with its own session."""
    t = AiohttpTransport()
    yield t
    await t.aclose()


async def test_a_complete_answer_is_read(transport: AiohttpTransport) -> None:
    """Status, headers and the whole body come back; the key went in the Authorization header."""
    seen: list[dict[str, str]] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _, headers, _ = await read_request(reader)
        seen.append(headers)
        body = b'{"ok": true}'
        writer.write(response_head(200, {"X-Test": "1"}, length=len(body)) + body)
        await writer.drain()

    async with serve(script) as base:
        raw = await _send(transport, _wire(base), Timeouts())
    assert (raw.status, raw.headers["X-Test"], json.loads(await raw.read())) == (200, "1", {"ok": True})
    assert seen[0]["authorization"] == f"Bearer {KEY}"


async def test_connection_refused_is_a_connection_error(transport: AiohttpTransport) -> None:
    """Nothing listening: UpstreamConnectionError (retryable), from a key-free stand-in for aiohttp's."""
    with pytest.raises(UpstreamConnectionError, match="could not connect") as info:
        await _send(transport, _wire(f"http://127.0.0.1:{closed_port()}"), Timeouts())
    assert info.value.retryable and isinstance(info.value, ConnectionError)
    cause = info.value.__cause__
    assert isinstance(cause, TransportFailure) and cause.kind.endswith(".ClientConnectorError")


async def test_first_byte_timeout(transport: AiohttpTransport, fake_time: asyncio.AbstractEventLoop) -> None:
    """A server that accepts and never answers hits the first-byte limit (fake loop time)."""
    hang = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await hang.wait()

    async with serve(script) as base:
        start = fake_time.time()
        with pytest.raises(UpstreamTimeout, match="no response within 5s") as info:
            await _send(transport, _wire(base), Timeouts(first_byte=5, total=60))
        assert fake_time.time() - start == pytest.approx(5, abs=0.1)
        assert isinstance(info.value, TimeoutError) and info.value.retryable


async def test_total_timeout_while_reading_the_body(
    transport: AiohttpTransport, fake_time: asyncio.AbstractEventLoop
) -> None:
    """Headers arrive but the body never finishes: the total limit ends it."""
    hang = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, length=100) + b'{"partial":')
        await writer.drain()
        await hang.wait()

    async with serve(script) as base:
        with pytest.raises(UpstreamTimeout, match="did not finish within 30s"):
            await _send(transport, _wire(base), Timeouts(total=30))


async def test_connect_timeout_is_named() -> None:
    """aiohttp's connect timeout says so."""
    transport = AiohttpTransport()
    try:
        with aioresponses() as mocked:
            mocked.post("http://127.0.0.1:9/v1/chat/completions", exception=aiohttp.ConnectionTimeoutError())
            with pytest.raises(UpstreamTimeout, match="could not connect within 10s"):
                await _send(transport, _wire("http://127.0.0.1:9"), Timeouts())
    finally:
        await transport.aclose()


async def test_a_body_cut_short_is_a_connection_error(transport: AiohttpTransport) -> None:
    """Content-Length promises more than arrives before the close: never a truncated body."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, length=100) + b'{"choices": [')
        await writer.drain()

    async with serve(script) as base:
        with pytest.raises(UpstreamConnectionError, match="broke while reading"):
            await _send(transport, _wire(base), Timeouts())


async def test_a_redirect_is_not_followed(transport: AiohttpTransport) -> None:
    """A 302 to another origin is returned, not followed: the key never reaches the other origin."""
    elsewhere: list[str] = []

    async def other(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        _line, headers, _ = await read_request(reader)
        elsewhere.append(headers.get("authorization", ""))
        writer.write(response_head(200, length=0))

    async with serve(other) as other_base:

        async def redirecting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader)
            writer.write(response_head(302, {"Location": other_base + "/steal"}, length=0))
            await writer.drain()

        async with serve(redirecting) as base:
            raw = await _send(transport, _wire(base), Timeouts())
    assert raw.status == 302 and elsewhere == []
    error = classify("oneai", raw.status, raw.headers, await raw.read(), key=None, wall_now=0)
    assert isinstance(error, EndpointError) and "not followed" in str(error)


async def test_a_key_is_never_sent_to_another_origin(transport: AiohttpTransport) -> None:
    """A wire request whose URL is off its key's origin is refused before any connection."""
    with pytest.raises(ConfigError, match="another origin"):
        await _send(transport, _wire("http://127.0.0.1:1", key_origin="https://api.oneai.io"), Timeouts())


async def test_a_borrowed_session_is_used_and_left_open() -> None:
    """A session the user passes in carries the requests and is never closed by us."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(500, length=2) + b"{}")
        await writer.drain()

    async with aiohttp.ClientSession(raise_for_status=True) as session, serve(script) as base:
        transport = AiohttpTransport(session)
        raw = await _send(transport, _wire(base), Timeouts())
        assert raw.status == 500, "a session with raise_for_status still gets the status to classify"
        await transport.aclose()
        assert not session.closed


async def test_own_session_is_made_lazily_and_closed() -> None:
    """The transport makes its session on first use, with per-host limits, and closes it."""
    transport = AiohttpTransport(limit=10, limit_per_host=3)
    session = transport.session
    assert isinstance(session.connector, aiohttp.TCPConnector)
    assert (session.connector.limit, session.connector.limit_per_host) == (10, 3)
    await transport.aclose()
    assert session.closed
    with pytest.raises(RouterError, match="closed"):
        _ = transport.session


@pytest.mark.parametrize("kwargs", [{"connect": 0}, {"total": -1}, {"first_byte": 0}])
def test_timeouts_must_be_positive(kwargs: dict[str, float]) -> None:
    """Timeouts reject zero and negative limits."""
    with pytest.raises(ConfigError):
        Timeouts(**kwargs)


async def test_mock_transport_answers_from_its_handler() -> None:
    """MockTransport records requests and answers from a function; a stream reads the same body."""

    async def handler(wire: WireRequest) -> Response:
        return Response(200, {}, b"data: {}\n\ndata: [DONE]\n\n")

    mock = MockTransport(handler)
    raw = await _send(mock, _wire("http://127.0.0.1:1"), Timeouts())
    streamed = await mock.request(_wire("http://127.0.0.1:1", stream=True), Timeouts())
    pieces = [piece async for piece in streamed.aiter_bytes()]
    await streamed.aclose()
    assert raw.status == 200 and b"".join(pieces) == await raw.read() and len(mock.requests) == 2
    await mock.aclose()
    with pytest.raises(RouterError):
        await _send(mock, _wire("http://127.0.0.1:1"), Timeouts())


async def test_a_stream_arrives_in_pieces_and_its_break_is_a_cut(transport: AiohttpTransport) -> None:
    """A streamed body is read as it arrives; a connection that breaks mid-body is a StreamCut."""
    release = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(response_head(200, length=100) + b"data: first\n\n")
        await writer.drain()
        await release.wait()

    async with serve(script) as base:
        response = await transport.request(_wire(base, stream=True), Timeouts())
        pieces = response.aiter_bytes()
        assert await anext(pieces) == b"data: first\n\n"
        release.set()
        with pytest.raises(StreamCut, match="mid-transfer") as info:
            await anext(pieces)
        await response.aclose()
    assert isinstance(info.value.__cause__, TransportFailure)


async def test_a_streams_headers_are_due_within_first_token(
    transport: AiohttpTransport, fake_time: asyncio.AbstractEventLoop
) -> None:
    """A stream is not held to total, but its headers come within first_token (fake loop time)."""
    hang = asyncio.Event()

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await hang.wait()

    async with serve(script) as base:
        with pytest.raises(UpstreamTimeout, match="no response within 7s"):
            await transport.request(_wire(base, stream=True), Timeouts(first_token=7, total=60))
