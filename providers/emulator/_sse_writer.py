"""The faulted SSE writer: an answer streamed as OpenAI's ``chat.completion.chunk`` events.

The first delta carries the role (and, for tool calls, call 0's header), then one
content delta per token or one argument fragment per delta (see ``_tools``), a
finishing chunk, the usage chunk when the request asks for usage, and
``data: [DONE]``. The stream faults count content deltas: ``cut_after`` drops the
connection after that many (0: right after the headers), ``stall_after`` stops
sending until the emulator closes, ``error_event_after`` sends an error event
inside the 200 and ends the stream; a malformed stream sends an event that is
not JSON (or nothing, for ``empty``); ``inter_chunk`` paces the deltas.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
from aiohttp import web

from ._answer import Answer
from ._faults import Faults, Malformed
from ._openai_dialect import wants_usage
from ._state import GatewayState

__all__ = ["Served", "SseWriter", "Streamed", "chunk"]

_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"
_DONE: Final = b"data: [DONE]\n\n"
_BROKEN_EVENT: Final = b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content\n\n'
_ERROR_EVENT: Final = {"error": {"code": 502, "message": "Provider returned error"}}


@attrs.frozen
class Streamed:
    """What a streamed answer needs besides the gateway and the connection."""

    ident: str
    body: Mapping[str, Any]
    faults: Faults
    prompt_tokens: int
    answer: Answer
    prices: tuple[float, float]


@attrs.define
class Served:
    """The tokens (prompt and completion) actually served, for the account's reconciliation."""

    tokens: int = 0


def chunk(
    ident: str,
    created: int,
    model: str,
    delta: Mapping[str, Any] | None,
    finish: str | None = None,
    usage: Mapping[str, Any] | None = None,
) -> bytes:
    """One SSE event of a ``chat.completion.chunk``; ``delta=None`` is the usage chunk (no choices)."""
    payload: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
    }
    if usage is not None:
        payload["usage"] = dict(usage)
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


class SseWriter:
    """Streams answers with their faults.

    Args:
        closing: set when the emulator stops; stalled streams end then.
    """

    def __init__(self, closing: asyncio.Event) -> None:
        self._closing = closing

    async def write(
        self,
        state: GatewayState,
        request: web.Request,
        streamed: Streamed,
        ttft: float,
        served: Served,
    ) -> web.StreamResponse:
        """Stream ``streamed`` as ``state``'s gateway, the first token ``ttft`` seconds after the headers.

        ``served.tokens`` is set once the answer is charged (after its last delta).
        """
        rng = state.rng
        faults = streamed.faults
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                **state.account.headers(loop.time()),
            },
        )
        await response.prepare(request)
        stats = state.stats
        stats.streams += 1
        stats.answered(200)
        if faults.cut_after == 0:
            return _cut(state, request, response)
        if state.dialect.keepalive_comments:
            await response.write(_COMMENT)
        await asyncio.sleep(ttft)
        broken = faults.draw_malformed(rng)
        if broken is not None:
            stats.malformed += 1
            if broken is not Malformed.EMPTY:
                await response.write(_BROKEN_EVENT)
            await response.write_eof()
            return response
        answer = streamed.answer
        ident, model, created = streamed.ident, streamed.body["model"], int(time.time())
        first, *rest = answer.deltas
        await response.write(chunk(ident, created, model, first))
        for i, delta in enumerate(rest):
            if i == faults.cut_after:
                return _cut(state, request, response)
            if i == faults.stall_after:
                stats.stalled += 1
                await self._closing.wait()
                return _cut(state, request, response)
            if i == faults.error_event_after:
                stats.error_events += 1
                await response.write(b"data: " + json.dumps(_ERROR_EVENT).encode() + b"\n\n")
                await response.write_eof()
                return response
            if i and faults.inter_chunk:
                await asyncio.sleep(faults.inter_chunk)
            await response.write(chunk(ident, created, model, delta))
        cost = state.charge(streamed.prompt_tokens, answer, streamed.prices)
        served.tokens = streamed.prompt_tokens + answer.tokens
        await response.write(chunk(ident, created, model, {}, answer.finish_reason))
        if wants_usage(streamed.body):
            usage = state.dialect.usage(streamed.body, streamed.prompt_tokens, answer.tokens, cost)
            await response.write(chunk(ident, created, model, None, usage=usage))
        await response.write(_DONE)
        await response.write_eof()
        return response


def _cut(state: GatewayState, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
    """Drop the connection mid-stream, with no terminating chunk."""
    state.stats.cut += 1
    if request.transport is not None:
        request.transport.abort()
    return response
