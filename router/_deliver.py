"""Streamed delivery: open an upstream until its first content, then hand it to the caller chunk by chunk.

A stream attempt (:func:`open_stream`) opens the upstream and reads until its
first content arrives: everything that can go wrong before then (a status, no
first token in time, a stall, a cut, an error event, a malformed event, a 200
that ends before any content) is a failed attempt like any other, and the loop
moves on. Once the first chunk is handed to the caller, the router's stream
(``_streamed.chunks``) reads the rest with :func:`read_delta` and ends with
:func:`finish`; a failure from then on is an interruption, which it turns into
:class:`StreamInterrupted` or, in restart mode, into a restart marker and a fresh
answer from the next candidate. The gateway's adapter owns the wire: it turns the
response into deltas (a gateway that does not stream gives one), refuses with a
typed error, and ends the deltas only when the answer is complete; nothing here
decodes SSE, reads a status or knows a wire format.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

from ..providers import Route, StreamChunk, UpstreamError, UpstreamTimeout, Usage
from ..providers.wire import Delta
from ._attempt import Ticket
from ._plan import Candidate
from ._run import Run
from ._watchdog import Watchdog

__all__ = ["Upstream", "finish", "open_stream", "read_delta"]


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
        "status",
        "ticket",
        "ttft",
        "usage",
        "watchdog",
    )

    def __init__(self, ticket: Ticket, stack: contextlib.AsyncExitStack) -> None:
        self.ticket = ticket
        self.stack = stack
        self.ttft = 0.0
        self.events: AsyncIterator[Delta | str] | None = None
        self.pending: list[Delta | str] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False  # the adapter's deltas ended: the answer is complete
        self.id: str | None = None
        self.prefilled = ""  # text the target was asked to continue from
        self.capped = False  # the gateway lowered max_tokens and the answer stopped there
        self.status = 200  # the response's, for a timeout's report
        self.watchdog: Watchdog | None = None  # times the reads, once there is a limit

    async def aclose(self) -> None:
        if self.watchdog is not None:
            self.watchdog.close()
        await self.stack.aclose()

    async def discard(self) -> None:
        """Close it and give its attempt back: unread (a hedge's twin that answered second), or
        when the caller stopped reading."""
        await self.aclose()
        await self.ticket.cancelled()

    async def failed(self, exc: UpstreamError) -> None:
        """Close it and end its attempt with ``exc`` (it broke while being delivered)."""
        await self.aclose()
        await self.ticket.failed(exc)

    def take(self, delta: Delta | str) -> bool:
        """Fold one delta's accounts into the upstream's state; whether it carries content."""
        if isinstance(delta, str):
            return bool(delta)  # text alone (see Adapter.deltas)
        if delta.response_id and self.id is None:
            self.id = delta.response_id
        if delta.usage is not None:
            self.usage = delta.usage
        if delta.finish_reason is not None:
            self.finish_reason = delta.finish_reason
        if delta.output_capped:
            self.capped = True
        return bool(delta.text or delta.tool_calls)


async def open_stream(run: Run, index: int, candidate: Candidate) -> Upstream:
    """One stream attempt: open the upstream and read until its first content (or its end)."""
    ticket = await Ticket.take(run, candidate)
    rt = run.rt
    stack = contextlib.AsyncExitStack()
    try:
        adapter, offer = ticket.adapter, ticket.offer
        # After an interruption, a target that takes it continues what was delivered.
        prefill = run.prefill if offer.capabilities.assistant_prefill is True else None
        timeouts = rt.attempt_timeouts(run.limit - ticket.started)
        wire = adapter.build(run.request, offer, ticket.gateway, stream=True, prefill=prefill)
        response = await rt.transport.request(wire, timeouts)
        stack.push_async_callback(response.aclose)
        upstream = Upstream(ticket, stack)
        upstream.status = response.status
        upstream.prefilled = wire.prefilled
        upstream.events = adapter.deltas(response, wire, offer, ticket.gateway, wall_now=rt.wall())
        stack.push_async_callback(_close_events, upstream)
        # Before the first content of a stream, the time to first token is the limit on each read;
        # a complete answer (a gateway that does not stream) is held to the transport's limits.
        first_token_by = ticket.started + timeouts.first_token
        while not upstream.pending and not upstream.done:
            limit = None
            if wire.stream:
                left = first_token_by - run.now()
                if left <= 0:
                    raise UpstreamTimeout(
                        ticket.gateway.name,
                        status=upstream.status,
                        detail=f"no first token within {timeouts.first_token:g}s",
                    )
                limit = run.read_limit(left)
            delta = await read_delta(run, upstream, limit, "first token")
            if delta is None:
                upstream.done = True
            elif upstream.take(delta):
                upstream.pending.append(delta)
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


async def read_delta(
    run: Run, upstream: Upstream, limit: float | None, waiting_for: str
) -> Delta | str | None:
    """The next delta within ``limit`` seconds (None: no limit of its own); None when the deltas ended."""
    events = upstream.events
    assert events is not None
    if limit is None:
        return await anext(events, None)
    watchdog = upstream.watchdog
    if watchdog is None:
        watchdog = upstream.watchdog = Watchdog()
    cancelling = watchdog.arm(limit)
    try:
        return await events.__anext__()
    except StopAsyncIteration:
        return None
    except asyncio.CancelledError:
        if not watchdog.stalled(cancelling):
            raise
        what = "no first token" if waiting_for == "first token" else "the stream stalled"
        raise UpstreamTimeout(
            upstream.ticket.gateway.name, status=upstream.status, detail=f"{what} within {limit:.3g}s"
        ) from None
    finally:
        watchdog.disarm()


async def finish(run: Run, upstream: Upstream, text: str) -> StreamChunk:
    """The delivered answer's last chunk, with its usage, cost and route; the attempt ends ``ok``.

    ``text`` is what was delivered (for the usage estimate when the gateway gave none).
    """
    ticket = upstream.ticket
    rt = run.rt
    await upstream.aclose()
    ended = run.now()
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
    return StreamChunk(
        finish_reason=upstream.finish_reason or "stop",  # a complete answer that gave no reason
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
