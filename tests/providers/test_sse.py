"""Server-sent events: the decoder, and OpenAI-style streams read over loopback in pieces."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from switchyard.providers import (
    AiohttpTransport,
    Gateway,
    MalformedReply,
    ProviderGraph,
    ServerError,
    Timeouts,
    UpstreamError,
    WireRequest,
)
from switchyard.providers._sse import LineSplitter, LineTooLong, SSEDecoder, SSEEvent, split_lines
from switchyard.providers.wire import Delta, adapter_for
from yarl import URL

from .._loopback import read_request, response_head, serve
from ._deltas import read_deltas


def _decode(*lines: str) -> tuple[list[SSEEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events = [e for line in lines if (e := decoder.feed(line)) is not None]
    decoder.close()
    return events, decoder


def test_comments_are_counted_and_skipped() -> None:
    """OneRouter's ': OPENROUTER PROCESSING' lines are comments: counted, never events."""
    events, decoder = _decode(": OPENROUTER PROCESSING", "", ": OPENROUTER PROCESSING", "data: {}", "")
    assert events == [SSEEvent(data="{}")]
    assert decoder.comments == 2


def test_multi_line_data_joins_with_newlines() -> None:
    """Several data lines of one event join with '\\n'; one leading space is dropped."""
    events, _ = _decode("data: line one", "data:line two", "data:  indented", "")
    assert events == [SSEEvent(data="line one\nline two\n indented")]


def test_fields_and_line_endings() -> None:
    """event, id and retry are kept; CRLF endings work; unknown fields are ignored."""
    events, _ = _decode(
        "event: update\r\n", "id: 7\r\n", "retry: 1500\r\n", "foo: bar\r\n", "data: x\r\n", "\r\n"
    )
    assert events == [SSEEvent(data="x", event="update", id="7", retry=1500)]


def test_blank_lines_without_data_dispatch_nothing() -> None:
    """A blank line with no data pending is not an event."""
    events, decoder = _decode("", "", "event: ping", "", "data: y", "")
    assert [e.data for e in events] == ["y"] and decoder.events == 1


def test_an_event_open_at_the_end_is_discarded() -> None:
    """A stream that ends mid-event does not dispatch it: a cut is never mistaken for a finish."""
    events, decoder = _decode("data: [DONE]", "")
    assert [e.data for e in events] == ["[DONE]"] and decoder.discarded == 0
    events, decoder = _decode('data: {"choices": [{"delta": {"content": "par')
    assert events == [] and decoder.discarded == 1


async def _split(pieces: list[bytes], limit: int = 16) -> list[bytes]:
    async def chunks() -> AsyncIterator[bytes]:
        for piece in pieces:
            yield piece

    return [line async for line in split_lines(chunks(), limit)]


async def test_lines_are_cut_from_pieces_as_they_arrive() -> None:
    """Lines keep their ending, join across pieces, and the last may end without one."""
    assert await _split([b"ab", b"c\nd", b"\n\n", b"e"]) == [b"abc\n", b"d\n", b"\n", b"e"]
    assert await _split([]) == [] and await _split([b"x\n"]) == [b"x\n"]


@pytest.mark.parametrize("pieces", [[b"x" * 17 + b"\n"], [b"x" * 9, b"x" * 9], [b"x" * 10, b"x" * 7 + b"\n"]])
async def test_a_line_over_the_limit_is_refused(pieces: list[bytes]) -> None:
    """A line longer than the limit is refused, whole or while it is still arriving."""
    with pytest.raises(LineTooLong):
        await _split(pieces)


def _split_both(pieces: list[bytes], limit: int) -> tuple[list[bytes] | None, list[bytes] | None]:
    """The lines feed() and split() cut from ``pieces`` (None where it refused a line)."""
    results: list[list[bytes] | None] = []
    for split in (False, True):
        splitter = LineSplitter(limit)
        lines: list[bytes] | None = []
        try:
            for piece in pieces:
                lines += splitter.split(piece) if split else splitter.feed(piece)
        except LineTooLong:
            lines = None
        results.append(lines)
    return results[0], results[1]


@pytest.mark.parametrize(
    "pieces",
    [
        [b"ab", b"c\nd", b"\n\n", b"e"],
        [b"data: x\r\n\r\n", b"data: y\n", b"\n"],
        [b"x" * 15 + b"\n", b"x" * 16 + b"\n"],
        [b"x" * 9, b"x" * 6, b"\nab\n"],
        [b"x" * 9, b"x" * 7, b"\nab\n"],
        [b"x" * 17],
        [b"a\n" * 20],
    ],
)
def test_split_gives_the_lines_feed_gives_without_their_endings(pieces: list[bytes]) -> None:
    """split() cuts the lines feed() cuts, minus their '\\n', and refuses the same lines."""
    fed, split = _split_both(pieces, 16)
    assert split == (None if fed is None else [line.removesuffix(b"\n") for line in fed])


@pytest.mark.parametrize(
    "lines",
    [
        [": OPENROUTER PROCESSING", "", "data: {}", ""],
        ["data: line one", "data:line two", "data:  indented", ""],
        ["event: update\r\n", "id: 7\r\n", "retry: 1500\r\n", "data: x\r\n", "\r\n", "data: y\r", "\r"],
        ["", "", "event: ping", "", "data: y", "", "data", "", "data:", "\n"],
        ["data: [DONE]", "", 'data: {"par'],
    ],
)
@pytest.mark.parametrize("ending", ["", "\n"])
def test_collect_gives_the_data_of_the_events_feed_gives(lines: list[str], ending: str) -> None:
    """collect() appends the data of exactly the events feed() dispatches, and counts them alike."""
    raw = [(line + ending).encode() for line in lines]
    fed, collected = SSEDecoder(), SSEDecoder()
    events = [e.data for line in raw if (e := fed.feed(line)) is not None]
    data: list[str] = []
    collected.collect(raw, data)
    fed.close()
    collected.close()
    assert data == events
    assert (collected.events, collected.comments, collected.discarded) == (
        fed.events,
        fed.comments,
        fed.discarded,
    )


def test_collect_refuses_a_line_that_is_not_utf8_and_keeps_the_events_before() -> None:
    """A data line that is not UTF-8 raises as feed() does; the events before it are kept."""
    data: list[str] = []
    with pytest.raises(UnicodeDecodeError):
        SSEDecoder().collect([b"data: a\n", b"\n", b"data: \xff\n", b"\n"], data)
    assert data == ["a"]


# -- OpenAI-style streams over loopback ---------------------------------------------------

GATEWAY = Gateway.onerouter("sse-key-000111")


def _chunk(text: str | None = None, finish: str | None = None, usage: dict[str, Any] | None = None) -> str:
    body: dict[str, Any] = {"id": "gen-1", "object": "chat.completion.chunk"}
    body["choices"] = (
        []
        if usage and text is None
        else [{"index": 0, "delta": {} if text is None else {"content": text}, "finish_reason": finish}]
    )
    if usage:
        body["usage"] = usage
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


STREAM = (
    ": OPENROUTER PROCESSING\n\n"
    + _chunk("Hél")
    + _chunk("lo, ")
    + _chunk("wörld")
    + _chunk(None, "stop")
    + _chunk(usage={"prompt_tokens": 4, "completion_tokens": 3, "total_tokens": 7, "cost": 0.00002})
    + "data: [DONE]\n\n"
)


def _pieces(data: bytes, sizes: list[int]) -> list[bytes]:
    out, i = [], 0
    for size in sizes:
        out.append(data[i : i + size])
        i += size
    out.append(data[i:])
    return [p for p in out if p]


async def _deltas(pieces: list[bytes]) -> list[Delta]:
    """Serve one chunked SSE response written in ``pieces``; the deltas the adapter reads from it."""
    transport = AiohttpTransport()
    adapter = adapter_for(GATEWAY)
    offer = ProviderGraph.from_catalogs([GATEWAY]).offer("onerouter", "claude-3-5-sonnet@20240620")

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            response_head(200, {"Content-Type": "text/event-stream", "Transfer-Encoding": "chunked"})
        )
        for piece in pieces:
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
            await asyncio.sleep(
                0.001
            )  # every caller runs on fake_time: lets the client read each piece alone
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    try:
        async with serve(script) as base:
            url = URL(base + "/v1/chat/completions")
            wire = WireRequest(
                gateway="onerouter",
                method="POST",
                url=url,
                key_origin=url.origin(),
                headers={},
                body=b"{}",
                stream=True,
            )
            response = await transport.request(wire, Timeouts())
            try:
                return await read_deltas(adapter.deltas(response, wire, offer, GATEWAY, wall_now=0))
            finally:
                await response.aclose()
    finally:
        await transport.aclose()


@pytest.mark.parametrize(
    "sizes",
    [
        [],
        [1] * 40,
        [7, 3, 50, 2, 1, 90],
        [len(': OPENROUTER PROCESSING\n\ndata: {"id": "gen-1", "ob')],
        [21, 1, 1, 1, 1],
    ],
    ids=["whole", "byte-by-byte-head", "ragged", "mid-field", "mid-comment"],
)
async def test_events_split_across_reads_arrive_whole(
    sizes: list[int], fake_time: asyncio.AbstractEventLoop
) -> None:
    """However the bytes are split (mid-line, mid-field, mid-character), the deltas are the same."""
    data = STREAM.encode()
    deltas = await _deltas(_pieces(data, sizes))
    assert "".join(d.text for d in deltas) == "Héllo, wörld"
    assert [d.finish_reason for d in deltas if d.finish_reason] == ["stop"]
    (usage,) = [d.usage for d in deltas if d.usage]
    assert usage.total_tokens == 7 and usage.reported_cost_usd == 0.00002
    assert len(deltas) == 5, "one delta per chunk: the comment is none, and [DONE] ends them"


async def test_a_multibyte_character_split_between_reads(fake_time: asyncio.AbstractEventLoop) -> None:
    """A UTF-8 character split over two network reads is decoded whole."""
    data = STREAM.encode()
    cut = data.index("ö".encode()) + 1  # between the two bytes of 'ö'
    deltas = await _deltas([data[:cut], data[cut:]])
    assert "".join(d.text for d in deltas) == "Héllo, wörld"


@pytest.mark.parametrize(
    ("event", "cls", "match"),
    [
        (
            'data: {"error": {"code": 502, "message": "Provider returned error"}}\n\n',
            ServerError,
            "Provider returned error",
        ),
        ("data: <html>oops</html>\n\n", MalformedReply, "not JSON"),
    ],
)
async def test_errors_inside_a_200_stream(
    event: str, cls: type[UpstreamError], match: str, fake_time: asyncio.AbstractEventLoop
) -> None:
    """An error event, or a non-JSON event, after good chunks raises its typed error."""
    data = (_chunk("Hel") + event + "data: [DONE]\n\n").encode()
    with pytest.raises(cls, match=match):
        await _deltas([data])


async def test_a_line_over_the_read_buffer_is_malformed(fake_time: asyncio.AbstractEventLoop) -> None:
    """A single SSE line over aiohttp's read limit is a malformed reply, not a crash or a hang."""
    huge = b"data: " + b"x" * (3 * 2**20) + b"\n\n"
    with pytest.raises(MalformedReply, match="2 MiB read limit"):
        await _deltas([huge])
