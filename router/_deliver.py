"""Streamed delivery: open an upstream until its first content, then hand it to the caller chunk by chunk.

A stream attempt (:func:`open_stream`) opens the upstream and reads until its
first content arrives: everything that can go wrong before then (a status, no
first token in time, a stall, a cut, an error event, a malformed event, a 200
that ends before any content) is a failed attempt like any other, and the loop
moves on. Once the first chunk is handed to the caller, :func:`deliver` streams
the rest; a failure from then on is an interruption, which the router turns into
:class:`StreamInterrupted` or, in restart mode, into a restart marker and a fresh
answer from the next candidate. The gateway's adapter owns the wire: it refuses
with a typed error and turns the body into deltas; nothing here decodes SSE.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import attrs

from ..providers import (
    ChatRequest,
    MalformedReply,
    Message,
    Route,
    StreamChunk,
    StreamCut,
    StreamDelta,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    normalize_finish_reason,
)
from ._attempt import Ticket
from ._plan import Candidate
from ._run import Run

__all__ = ["Upstream", "deliver", "open_stream"]


class Upstream:
    """An upstream answer whose first content has arrived, ready to be delivered.

    It holds the open response (closed by :meth:`aclose`) and the deltas read
    ahead while waiting for the first content.
    """

    __slots__ = (
        "capped",
        "done",
        "events",
        "finish_reason",
        "id",
        "pending",
        "prefilled",
        "stack",
        "ticket",
        "ttft",
        "usage",
    )

    def __init__(self, ticket: Ticket, stack: contextlib.AsyncExitStack) -> None:
        self.ticket = ticket
        self.stack = stack
        self.ttft = 0.0
        self.events: AsyncIterator[StreamDelta] | None = None
        self.pending: list[StreamDelta] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False  # [DONE] seen, or the whole reply known (a gateway that does not stream)
        self.id: str | None = None
        self.prefilled = ""  # text the target was asked to continue from
        self.capped = False  # the gateway lowered max_tokens and the answer stopped there

    async def aclose(self) -> None:
        await self.stack.aclose()

    async def discard(self) -> None:
        """Close it unread and give its attempt back (a hedge's twin that answered second)."""
        await self.stack.aclose()
        await self.ticket.cancelled()

    def take(self, delta: StreamDelta) -> None:
        """Fold one delta into the upstream's state."""
        if delta.done:
            self.done = True
            return
        if delta.response_id and self.id is None:
            self.id = delta.response_id
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.text or delta.tool_calls:
            self.pending.append(delta)


def _fields(request: ChatRequest) -> dict[str, object]:
    """A request's init arguments, for a copy with other messages."""
    return {f.alias or f.name: getattr(request, f.name) for f in attrs.fields(ChatRequest) if f.init}


async def _whole(run: Run, ticket: Ticket, stack: contextlib.AsyncExitStack) -> Upstream:
    """A gateway that does not stream: its whole reply arrives as one chunk."""
    rt = run.rt
    wire = ticket.adapter.build(run.request, ticket.offer, ticket.gateway)
    raw = await rt.transport.send(wire, rt.attempt_timeouts(run.limit - ticket.started))
    reply = ticket.adapter.parse(raw, wire, ticket.offer, ticket.gateway, wall_now=rt.wall())
    upstream = Upstream(ticket, stack)
    upstream.ttft = run.now() - ticket.started
    upstream.pending = [StreamDelta(text=reply.text, tool_calls=reply.tool_calls)]
    upstream.finish_reason = reply.finish_reason
    upstream.usage = reply.usage
    upstream.done = True
    upstream.id = reply.id
    upstream.capped = reply.output_capped
    return upstream


async def open_stream(run: Run, index: int, candidate: Candidate) -> Upstream:
    """One stream attempt: open the upstream and read until its first content (or its end)."""
    ticket = await Ticket.take(run, candidate)
    rt = run.rt
    stack = contextlib.AsyncExitStack()
    try:
        adapter, offer = ticket.adapter, ticket.offer
        if not adapter.streams:
            return await _whole(run, ticket, stack)
        request = run.request
        prefill = run.prefill if offer.capabilities.assistant_prefill is True else None
        if prefill:
            # The target continues a final assistant message: it carries on from
            # what was delivered instead of starting the answer again.
            fields = _fields(run.request)
            fields["messages"] = (*request.messages, Message("assistant", prefill))
            request = ChatRequest(**fields)  # type: ignore[arg-type]
        timeouts = rt.attempt_timeouts(run.limit - ticket.started)
        wire = adapter.build(request, offer, ticket.gateway, stream=True)
        response = await stack.enter_async_context(rt.transport.stream(wire, timeouts))
        if response.status != 200:
            body = await response.read()
            raise adapter.refusal(response.status, response.headers, body, ticket.gateway, wall_now=rt.wall())
        upstream = Upstream(ticket, stack)
        upstream.prefilled = prefill or ""
        upstream.events = adapter.deltas(response, ticket.gateway, wall_now=rt.wall())
        stack.push_async_callback(_close_events, upstream)
        # Before the first content, the time to first token is the limit on each read.
        first_token_by = ticket.started + timeouts.first_token
        while not upstream.pending and not upstream.done:
            limit = first_token_by - run.now()
            if limit <= 0:
                raise UpstreamTimeout(
                    ticket.gateway.name, status=200, detail=f"no first token within {timeouts.first_token:g}s"
                )
            delta = await _next_delta(run, upstream, run.read_limit(limit), "first token")
            if delta is None:
                break
            upstream.take(delta)
        if not upstream.pending and not (upstream.prefilled and upstream.finish_reason is not None):
            raise _empty(ticket.gateway.name, upstream)
        upstream.ttft = run.now() - ticket.started
        return upstream
    except UpstreamError as exc:
        await stack.aclose()
        await ticket.failed(exc)
        raise
    except BaseException:
        await stack.aclose()
        await ticket.cancelled()
        raise


def _empty(gateway: str, upstream: Upstream) -> UpstreamError:
    """The failure of a 200 stream that ended before any content: nothing reached the caller,
    so it fails over like any failure before the first chunk."""
    if upstream.done or upstream.finish_reason is not None:
        return MalformedReply(gateway, status=200, detail="the stream finished without any content")
    return StreamCut(gateway, status=200, detail="the stream ended before any content")


async def _next_delta(run: Run, upstream: Upstream, limit: float, waiting_for: str) -> StreamDelta | None:
    """The next delta within ``limit`` seconds; None when the stream ended."""
    assert upstream.events is not None
    try:
        async with asyncio.timeout(limit):
            return await anext(upstream.events)
    except StopAsyncIteration:
        return None
    except TimeoutError as exc:
        what = "no first token" if waiting_for == "first token" else "the stream stalled"
        raise UpstreamTimeout(
            upstream.ticket.gateway.name, status=200, detail=f"{what} within {limit:.3g}s"
        ) from exc


async def deliver(run: Run, upstream: Upstream) -> AsyncIterator[StreamChunk]:
    """Hand the answer to the caller chunk by chunk, ending with its usage, cost and route.

    A stream that ends without ``[DONE]`` and without a finish reason did not
    finish: that is a :class:`StreamCut`, never a short answer passed off as whole.
    """
    ticket = upstream.ticket
    rt = run.rt
    parts: list[str] = []
    if upstream.prefilled:
        # The continuation of a prefilled answer: give the caller the whole answer again.
        parts.append(upstream.prefilled)
        yield StreamChunk(text=upstream.prefilled)
    try:
        while True:
            while upstream.pending:
                delta = upstream.pending.pop(0)
                parts.append(delta.text)
                yield StreamChunk(text=delta.text, tool_calls=delta.tool_calls)
            if upstream.done or upstream.events is None:
                break
            delta_or_end = await _next_delta(run, upstream, run.read_limit(rt.timeouts.stall), "stall")
            if delta_or_end is None:
                if upstream.finish_reason is None:
                    raise StreamCut(
                        ticket.gateway.name,
                        status=200,
                        detail=f"ended without [DONE] or a finish reason after {len(parts)} chunks",
                    )
                break  # a finish reason then the end, without [DONE]: finished
            upstream.take(delta_or_end)
    except UpstreamError as exc:
        await upstream.aclose()
        await ticket.failed(exc)
        raise
    except BaseException:
        await upstream.aclose()
        await ticket.cancelled()
        raise
    await upstream.aclose()
    ended = run.now()
    text = "".join(parts)
    usage = upstream.usage
    if usage is None:
        # The gateway gave no usage: estimate it, and say so.
        prompt = run.ctx.prompt_tokens
        completion = rt.estimator.text_tokens(text)
        usage = Usage(prompt, completion, prompt + completion, estimated=True)
    offer = ticket.offer
    cost = usage.reported_cost_usd
    if cost is None:
        cost = offer.cost_usd(usage.prompt_tokens, usage.completion_tokens)
    run.record(offer, "ok", ended - ticket.started, 200, None)
    await ticket.ok(usage.total_tokens, None, ended, upstream.ttft)
    yield StreamChunk(
        finish_reason=normalize_finish_reason(upstream.finish_reason),
        usage=usage,
        cost_usd=cost,
        route=Route(
            offer.gateway or "",
            offer.gateway_model,
            offer.model,
            tuple(run.attempts),
            output_capped=upstream.capped,
        ),
        id=upstream.id,
    )


async def _close_events(upstream: Upstream) -> None:
    events = upstream.events
    if isinstance(events, AsyncGenerator):
        with contextlib.suppress(Exception):
            await events.aclose()
