"""A streamed request: fail over until the first chunk reaches the caller, then deliver or restart.

:func:`chunks` is what ``router.stream()`` iterates: the failover loop opens an
upstream (``_deliver.open_stream``), delivery hands it over; when it breaks after
chunks reached the caller it raises :class:`StreamInterrupted` with the real cause,
or, in restart mode, yields a restart marker and starts again on the remaining
candidates (continuing from what was delivered where a target takes a prefill).
:func:`assemble` is ``chat(stream_upstream=True)``: the same, restarting freely,
folded into one complete :class:`Reply`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Callable

import attrs

from ..policies import RequestContext
from ..providers import ChatRequest, Reply, RouterError, StreamChunk, StreamInterrupted, UpstreamError
from ..providers.wire import ToolCallAssembler
from ._deliver import Upstream, finish, open_stream, read_delta
from ._loop import failover
from ._plan import Plan
from ._run import Run
from ._runtime import Runtime

__all__ = ["assemble", "chunks", "run_for"]


def run_for(rt: Runtime, request: ChatRequest, ctx: RequestContext, limit: float) -> Run:
    """A run whose deadline counts from now (a stream's first read, not when it was made)."""
    return Run(rt, request, attrs.evolve(ctx, now=asyncio.get_running_loop().time()), limit)


async def chunks(start: Callable[[], Run], plan: Plan, *, restart: bool) -> AsyncGenerator[StreamChunk, None]:
    """The answer's chunks, the last with the route (see the module docstring).

    ``start`` makes the request's :class:`Run` when the first chunk is asked for.
    """
    run = start()
    run.started_event()
    remaining = plan
    cause: UpstreamError | None = None
    delivered: list[str] = []
    complete = False
    final: StreamChunk | None = None
    ttft: float | None = None  # for the hooks: until the first chunk reached a streaming caller
    timed = run.hooks is not None and run.ctx.stream
    stall = run.rt.timeouts.stall
    try:
        while True:
            try:
                upstream = await failover(run, remaining, open_stream, Upstream.discard)
            except RouterError:
                if cause is None:
                    raise
                # A restart found no answer: the interruption is the real error.
                raise StreamInterrupted(
                    run.canonical, cause, "".join(delivered), run.attempts, run.errors
                ) from cause
            try:
                # The delivery, inline (one generator per event, not two): the attempt ends here
                # and now when the consumer stops reading, not whenever this generator is collected.
                try:
                    if upstream.prefilled:
                        # The continuation of a prefilled answer: give the caller the whole answer again.
                        delivered.append(upstream.prefilled)
                        if timed and ttft is None:
                            ttft = run.now() - run.start
                        yield StreamChunk(text=upstream.prefilled)
                    # The deltas read ahead while waiting for the first content, then the rest (an
                    # upstream comes with its first content, or ended: no first chunk is timed below).
                    for ahead in upstream.pending:
                        if timed and ttft is None:
                            ttft = run.now() - run.start
                        if isinstance(ahead, str):
                            delivered.append(ahead)
                            yield StreamChunk(text=ahead)
                        else:
                            delivered.append(ahead.text)
                            yield StreamChunk(text=ahead.text, tool_calls=ahead.tool_calls)
                    upstream.pending.clear()
                    while not upstream.done:
                        delta = await read_delta(run, upstream, run.read_limit(stall), "stall")
                        if isinstance(delta, str):  # text alone: the usual event
                            if delta:
                                delivered.append(delta)
                                yield StreamChunk(text=delta)
                        elif delta is None:
                            upstream.done = True  # the adapter's deltas end only when the answer is complete
                        elif upstream.take(delta):
                            delivered.append(delta.text)
                            yield StreamChunk(text=delta.text, tool_calls=delta.tool_calls)
                except UpstreamError as exc:
                    await upstream.failed(exc)
                    raise
                except BaseException:
                    await upstream.discard()
                    raise
                final = await finish(run, upstream, "".join(delivered))
                complete = True
                yield final
                break
            except UpstreamError as exc:
                if cause is None:
                    cause = exc
                if not restart:
                    raise StreamInterrupted(
                        run.canonical, cause, "".join(delivered), run.attempts, run.errors
                    ) from cause
                if run.hooks is not None:
                    run.emit("stream.restarted", upstream.ticket.offer, detail=type(exc).__name__)
                yield StreamChunk(restart=True, error=exc)
                failed = upstream.ticket.offer
                remaining = [entry for entry in remaining if entry.offer is not failed]
                run.prefill = "".join(delivered) or None
                delivered = []
    except (asyncio.CancelledError, GeneratorExit):
        # The consumer stopped reading (or was cancelled) before the answer's end.
        if complete:
            run.finish(
                None, answer=final, text="".join(delivered) if run.hooks is not None else None, ttft=ttft
            )
        else:
            run.finish(None, cancelled=True, ttft=ttft)
        raise
    except BaseException as exc:
        run.finish(exc, ttft=ttft)
        raise
    run.finish(None, answer=final, text="".join(delivered) if run.hooks is not None else None, ttft=ttft)


async def assemble(rt: Runtime, run: Run, plan: Plan) -> Reply:
    """chat() over a streaming upstream: restart on interruption, return one complete reply.

    Tool-call pieces are assembled as the OpenAI SDK's stream accumulator does
    (:class:`~switchyard.providers.wire.ToolCallAssembler`).
    """
    parts: list[str] = []
    calls = ToolCallAssembler()
    final: StreamChunk | None = None
    async with contextlib.aclosing(chunks(lambda: run, plan, restart=True)) as answer:
        async for chunk in answer:
            if chunk.restart:
                parts.clear()
                calls.clear()
            elif chunk.done:
                final = chunk
            else:
                parts.append(chunk.text)
                if chunk.tool_calls:
                    calls.add(chunk.tool_calls)
    assert final is not None and final.route is not None and final.usage is not None
    return Reply(
        id=final.id or f"chatcmpl-{final.route.gateway}-{next(rt.ids)}",
        text="".join(parts),
        finish_reason=final.finish_reason or "stop",
        usage=final.usage,
        cost_usd=final.cost_usd,
        route=final.route,
        created=int(rt.wall()),
        tool_calls=calls.calls(),
    )
