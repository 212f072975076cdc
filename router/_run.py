"""One request's run: the failover loop, each attempt's bookkeeping, and streamed delivery.

The loop (:meth:`_Run.go`) is the same for complete replies and streams; only the
attempt differs. A plain attempt (:meth:`_Run.attempt`) sends and parses. A stream
attempt (:meth:`_Run.open_stream`) opens the upstream and reads until its first
content arrives: everything that can go wrong before then (a status, no first
token in time, a stall, a cut, an error event, a malformed event) is a failed
attempt like any other, and the loop moves on. Once the first chunk is handed to
the caller, :meth:`_Run.deliver` streams the rest; a failure from then on is an
interruption, which the router turns into :class:`StreamInterrupted` or, in
restart mode, into a restart marker and a fresh answer from the next candidate.

Every attempt takes its account's reservation, both breakers' permission and (after
a request's first) a retry from the budget, and gives all of them back on every
exit path: success, failure, cancellation, or the end of a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from ..policies import Deferral, Outcome, RequestContext, Reservation
from ..providers import (
    AllCandidatesFailed,
    Attempt,
    ChatRequest,
    ContextLengthExceeded,
    DeadlineExceeded,
    Gateway,
    LoopClock,
    MalformedReply,
    Message,
    ModelUnavailable,
    NoCandidatesError,
    Offer,
    OpenAIAdapter,
    RateLimited,
    Reply,
    Route,
    RouterError,
    SaturatedError,
    SSEDecoder,
    StreamChunk,
    StreamCut,
    StreamDelta,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    Wire,
    classify,
    normalize_finish_reason,
    sse_events,
)
from ._breaker import BreakerState
from ._events import Event, Hooks
from ._health import Permit, Reported

if TYPE_CHECKING:
    from ._router import Router

__all__ = ["Plan", "_Run"]

Plan = list[tuple[int, Offer]]
T = TypeVar("T")

_MIN_WAIT: Final = 0.001  # the least a re-deferred request waits before asking again


class _Deferred(Exception):
    """Internal: the candidate's account cannot take the request now."""

    def __init__(self, deferral: Deferral) -> None:
        self.deferral = deferral


class _Skipped(Exception):
    """Internal: a breaker refused the candidate at the last moment (a probe already in flight)."""


class _BudgetSpent(Exception):
    """Internal: the retry budget refused one more attempt."""


class _Revisit:
    """A candidate to come back to: deferred by its account, or failed and due a retry."""

    __slots__ = ("deferral", "error", "index", "offer", "ready", "retries", "wait")

    def __init__(
        self,
        index: int,
        offer: Offer,
        ready: float | None,
        deferral: Deferral | None,
        error: UpstreamError | None,
        wait: float = 0.0,
        retries: int = 0,
    ) -> None:
        self.index = index
        self.offer = offer
        self.ready = ready  # None: when a slot frees
        self.deferral = deferral
        self.error = error  # set for a retry: the failure it retries
        self.wait = wait  # for a retry: the backoff before it
        self.retries = retries  # for a retry: how many retries of this target came before it


class _Ticket:
    """What one attempt holds: its reservation, its breakers' permission, its place in the trace."""

    __slots__ = ("adapter", "ended", "gateway", "number", "offer", "permit", "reservation", "started", "tier")

    def __init__(
        self,
        offer: Offer,
        tier: int,
        gateway: Gateway,
        adapter: Any,
        reservation: Reservation,
        permit: Permit,
        started: float,
        number: int,
    ) -> None:
        self.offer = offer
        self.tier = tier
        self.gateway = gateway
        self.adapter = adapter
        self.reservation = reservation
        self.permit = permit
        self.started = started
        self.number = number
        self.ended = False


class _Upstream:
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

    def __init__(self, ticket: _Ticket, stack: contextlib.AsyncExitStack, ttft: float) -> None:
        self.ticket = ticket
        self.stack = stack
        self.ttft = ttft
        self.events: AsyncIterator[Any] | None = None
        self.pending: list[StreamDelta] = []
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.done = False  # [DONE] seen, or the whole reply known (OneLLM)
        self.id: str | None = None
        self.prefilled = ""  # text the target was asked to continue from
        self.capped = False  # the gateway lowered max_tokens and the answer stopped there

    async def aclose(self) -> None:
        await self.stack.aclose()


class _Run:
    """The state of one request's failover loop."""

    __slots__ = (
        "attempts",
        "ctx",
        "deadline",
        "deferred",
        "errors",
        "hooks",
        "id",
        "last_tried",
        "limit",
        "now",
        "prefill",
        "request",
        "router",
        "start",
    )

    def __init__(self, router: Router, request: ChatRequest, ctx: RequestContext, deadline: float) -> None:
        self.router = router
        self.request = request
        self.ctx = ctx
        self.deadline = deadline
        # With the default loop clock, read the loop's time directly for this request.
        self.now: Callable[[], float] = (
            asyncio.get_running_loop().time if type(router._clock) is LoopClock else router._clock.now
        )
        self.start = ctx.now
        self.limit = self.start + deadline
        self.attempts: list[Attempt] = []
        self.errors: list[UpstreamError] = []
        self.deferred: dict[int, Deferral] = {}  # the latest deferral of each candidate, by plan index
        self.id = next(router._ids)
        self.hooks: Hooks | None = router._hooks if router._hooks else None
        self.last_tried: tuple[int, Offer] | None = None
        self.prefill: str | None = None  # after an interruption: the text to continue from, where taken

    # -- reporting ---------------------------------------------------------------------------

    def emit(self, name: str, offer: Offer | None = None, **fields: Any) -> None:
        assert self.hooks is not None
        if offer is not None:
            fields.setdefault("gateway", offer.gateway)
            fields.setdefault("gateway_model", offer.gateway_model)
            fields.setdefault("model", offer.model)
        self.hooks.emit(Event(name=name, request_id=self.id, **fields))

    def transitions(self, reported: list[Reported]) -> None:
        if self.hooks is None or not reported:
            return
        for r in reported:
            name = {
                BreakerState.OPEN: "breaker.opened",
                BreakerState.HALF_OPEN: "breaker.half_opened",
                BreakerState.CLOSED: "breaker.closed",
            }[r.transition.after]
            latency = None if r.transition.until is None else r.transition.until - self.now()
            self.emit(
                name,
                gateway=r.gateway,
                gateway_model=r.gateway_model,
                detail=r.transition.reason,
                latency=latency,
            )

    def started_event(self) -> None:
        if self.hooks is not None:
            self.emit("request.started", detail=self.request.model)

    def finish(self, error: BaseException | None, *, cancelled: bool = False) -> None:
        """Emit ``request.finished``: outcome ``ok``, ``cancelled``, or the error's class."""
        if self.hooks is not None:
            self.emit(
                "request.finished",
                outcome="cancelled" if cancelled else "ok" if error is None else type(error).__name__,
                attempt=len(self.attempts),
                latency=self.now() - self.start,
            )

    def fail(self, error: RouterError) -> RouterError:
        """Report ``error`` as the request's end and return it, chained to the first failure."""
        self.finish(error)
        error.__cause__ = self.errors[0] if self.errors else None
        return error

    @property
    def canonical(self) -> str:
        return self.ctx.request.model

    # -- the loop ----------------------------------------------------------------------------

    async def go(self, plan: Plan, attempt: Callable[[int, int, Offer], Awaitable[T]]) -> T:
        """Each candidate once in order, then the deferred and the retried, inside the deadline."""
        router = self.router
        router._budget.deposit(self.now())
        revisits: list[_Revisit] = []
        skipped: list[tuple[Offer, str]] = []
        context_floor: int | None = None
        stop_reason = "no candidate is left"
        failover_on = router._policy.failover_on
        for index, (_, offer) in enumerate(plan):
            if context_floor is not None and (offer.context_window or 0) <= context_floor:
                continue
            try:
                return await attempt(index, plan[index][0], offer)
            except _Deferred as deferred:
                self.deferred[index] = deferred.deferral
                revisits.append(_Revisit(index, offer, deferred.deferral.until, deferred.deferral, None))
            except _Skipped as exc:
                skipped.append((offer, str(exc)))
            except _BudgetSpent:
                stop_reason = "the retry budget is spent"
                revisits = []
                break
            except ContextLengthExceeded as exc:
                # Only a candidate with a known, larger window may help; with none left,
                # the gateway's own 400 goes to the caller at once.
                context_floor = offer.context_window or (
                    self.ctx.prompt_tokens + (self.request.max_tokens or 0)
                )
                if not any((o.context_window or 0) > context_floor for _, o in plan[index + 1 :]):
                    exc.attempts = tuple(self.attempts)
                    raise
            except UpstreamError as exc:
                if not failover_on(exc):
                    if exc.retryable:
                        # The policy keeps the request on this target: retry it here as
                        # the failure table allows, and try no other candidate.
                        revisits.append(self._retry_of(index, offer, exc))
                        break
                    exc.attempts = tuple(self.attempts)
                    raise
                if exc.retryable:
                    revisits.append(self._retry_of(index, offer, exc))
        if revisits:
            found, result, stop_reason = await self._revisit(
                plan, revisits, context_floor, stop_reason, attempt
            )
            if found:
                return result  # type: ignore[return-value]
        first = self.errors[0] if self.errors else None
        saturated = self.saturated()
        if saturated is not None:
            raise saturated
        if self.now() >= self.limit:
            raise DeadlineExceeded(self.deadline, self.attempts, self.errors) from first
        if not self.attempts and skipped:
            raise NoCandidatesError(
                self.canonical, [(o.gateway or "", o.gateway_model, why) for o, why in skipped]
            )
        raise AllCandidatesFailed(self.canonical, self.attempts, self.errors, stop_reason) from first

    def saturated(self) -> SaturatedError | None:
        """When the request only ever waited (deferred, no attempt failed): the limits it waited on."""
        if not self.deferred or self.errors:
            return None
        now = self.now()
        pending = list(self.deferred.values())
        frees = [d.until for d in pending if d.until is not None and d.until != math.inf]
        return SaturatedError(
            self.canonical,
            [d.describe(now) for d in pending],
            None if not frees else max(0.0, min(frees) - now),
            self.deadline,
        )

    def retry_after(self, error: UpstreamError) -> float | None:
        """The error's Retry-After, clamped to the router's ``max_retry_after``."""
        after = error.retry_after
        return None if after is None else min(after, self.router._max_retry_after)

    def _retry_of(self, index: int, offer: Offer, error: UpstreamError, retries: int = 0) -> _Revisit:
        """The ``retries``-th retry of a failed candidate: after full-jitter exponential backoff
        (the step grows with each retry of the same target), never before its Retry-After."""
        router = self.router
        wait = router._backoff.delay(retries, router._rng, self.retry_after(error))
        return _Revisit(index, offer, self.now() + wait, None, error, wait, retries)

    async def _revisit(
        self,
        plan: Plan,
        revisits: list[_Revisit],
        context_floor: int | None,
        stop_reason: str,
        attempt: Callable[[int, int, Offer], Awaitable[T]],
    ) -> tuple[bool, T | None, str]:
        """Come back to deferred and failed candidates as they free, until none is left or the deadline."""
        router = self.router
        failover_on = router._policy.failover_on
        while revisits:
            now = self.now()
            if now >= self.limit:
                return False, None, stop_reason
            revisits[:] = [
                r
                for r in revisits
                if (r.ready is None or r.ready < self.limit)
                and not (context_floor is not None and (r.offer.context_window or 0) <= context_floor)
            ]
            if not revisits:
                return False, None, stop_reason
            freed = router._capacity_event()
            timed = [r.ready for r in revisits if r.ready is not None]
            soonest = min(timed) if timed else None
            # Times within a nanosecond count as now, and no wait is shorter than _MIN_WAIT:
            # a float-sized wait would not move a clock, and the loop would spin.
            due = [r for r in revisits if r.ready is not None and r.ready <= now + 1e-9]
            if not due:
                slot_bound = any(r.ready is None for r in revisits)
                wait = max((self.limit if soonest is None else soonest) - now, _MIN_WAIT)
                if slot_bound:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await freed.wait()
                else:
                    await asyncio.sleep(wait)
                now = self.now()
                due = [r for r in revisits if r.ready is None or r.ready <= now + 1e-9]
            for entry in sorted(due, key=lambda r: r.index):
                if self.hooks is not None and entry.error is not None:
                    self.emit("retry", entry.offer, latency=entry.wait, attempt=len(self.attempts) + 1)
                try:
                    return True, await attempt(entry.index, plan[entry.index][0], entry.offer), stop_reason
                except _Deferred as deferred:
                    entry.deferral = deferred.deferral
                    if entry.error is None:
                        self.deferred[entry.index] = deferred.deferral
                    until = deferred.deferral.until
                    # Always wait a little before asking again: never spin on a time already here.
                    entry.ready = None if until is None else max(until, self.now() + _MIN_WAIT)
                    continue
                except _Skipped:
                    revisits.remove(entry)
                except _BudgetSpent:
                    return False, None, "the retry budget is spent"
                except UpstreamError as exc:
                    if isinstance(exc, ContextLengthExceeded) or not (failover_on(exc) or exc.retryable):
                        exc.attempts = tuple(self.attempts)
                        raise
                    revisits.remove(entry)
                    # One retry per failure, except a 429: that says "come back after
                    # Retry-After", which is done as long as the deadline and budget allow.
                    if exc.retryable and (entry.error is None or isinstance(exc, RateLimited)):
                        retries = 0 if entry.error is None else entry.retries + 1
                        revisits.append(self._retry_of(entry.index, entry.offer, exc, retries))
        return False, None, stop_reason

    # -- one attempt's bookkeeping -------------------------------------------------------------

    def _begin(self, tier: int, offer: Offer) -> _Ticket:
        """Admission, both breakers' permission and the budget, or why not (raised)."""
        router = self.router
        started = self.now()
        if started >= self.limit:
            raise DeadlineExceeded(self.deadline, self.attempts, self.errors)
        if router._closures:
            closure = router._closures.get((offer.gateway or "", offer.gateway_model), started)
            if closure is not None:
                if closure.exclude:
                    raise _Skipped(closure.reason)
                deferral = Deferral(offer.gateway or "", closure.reason, closure.until)
                if self.hooks is not None:
                    self.emit(
                        "bucket.deferred", offer, detail=closure.reason, latency=closure.until - started
                    )
                raise _Deferred(deferral)
        limits = router._limits
        admission = limits.admit(offer, self.ctx, started)
        if isinstance(admission, Deferral):
            if self.hooks is not None:
                wait = None if admission.until is None else admission.until - started
                self.emit("bucket.deferred", offer, detail=admission.limit, latency=wait)
            raise _Deferred(admission)
        permit, reported = router._health.acquire(offer, started)
        self.transitions(reported)
        if permit is None:
            limits.settle(admission, None, None, started)
            raise _Skipped(router._health.exclusion(offer, started) or "the circuit refused it")
        if self.attempts and not router._budget.try_withdraw(started):
            router._health.release(permit, started)
            limits.settle(admission, None, None, started)
            if self.hooks is not None:
                self.emit("budget.exhausted", offer)
            raise _BudgetSpent
        if self.hooks is not None and self.last_tried is not None:
            previous_tier, previous = self.last_tried
            if tier != previous_tier:
                self.emit("fallback", offer, detail=f"from {previous.model}")
            elif previous is not offer:
                self.emit("failover", offer, detail=f"from {previous.gateway}:{previous.gateway_model}")
        self.last_tried = (tier, offer)
        gateway = router._graph.gateways[offer.gateway or ""]
        number = len(self.attempts) + 1
        if self.hooks is not None:
            self.emit("attempt.started", offer, attempt=number)
        if router._policy_learns:
            router._policy.started(offer, started)
        return _Ticket(
            offer, tier, gateway, router._adapters[gateway.name], admission, permit, started, number
        )

    def _record(
        self, ticket: _Ticket, outcome: str, latency: float, status: int | None, error: str | None
    ) -> None:
        offer = ticket.offer
        self.attempts.append(
            Attempt(
                gateway=offer.gateway or "",
                gateway_model=offer.gateway_model,
                model=offer.model,
                outcome=outcome,
                latency=latency,
                status=status,
                error=error,
            )
        )

    def _ended_ok(
        self, ticket: _Ticket, used_tokens: int, headers: Any, ended: float, ttft: float | None
    ) -> None:
        """The attempt produced a complete answer (its attempt is already in the trace)."""
        ticket.ended = True
        router = self.router
        latency = ended - ticket.started
        self.transitions(router._health.record(ticket.permit, ticket.offer, None, ttft or latency, ended))
        router._limits.settle(ticket.reservation, used_tokens, headers, ended)
        if router._policy_learns:
            router._policy.observe(
                Outcome(offer=ticket.offer, ok=True, latency=latency, now=ended, ttft=ttft)
            )
        if self.hooks is not None:
            self.emit(
                "attempt.finished",
                ticket.offer,
                attempt=ticket.number,
                outcome="ok",
                status=200,
                latency=latency,
            )

    def _ended_error(self, ticket: _Ticket, exc: UpstreamError, headers: Any) -> None:
        """The attempt failed with ``exc``."""
        if ticket.ended:
            return
        ticket.ended = True
        router = self.router
        ended = self.now()
        latency = ended - ticket.started
        if router._policy_learns:
            router._policy.observe(
                Outcome(offer=ticket.offer, ok=False, latency=latency, now=ended, error=exc)
            )
        self._record(ticket, type(exc).__name__, latency, exc.status, str(exc))
        self.errors.append(exc)
        if self.hooks is not None:
            self.emit(
                "attempt.finished",
                ticket.offer,
                attempt=ticket.number,
                outcome=type(exc).__name__,
                status=exc.status,
                latency=latency,
            )
        self.transitions(router._health.record(ticket.permit, ticket.offer, exc, latency, ended))
        offer = ticket.offer
        if isinstance(exc, RateLimited):
            until = router._limits.rate_limited(offer, self.retry_after(exc), ended)
            if self.hooks is not None:
                self.emit("bucket.closed", offer, detail="Retry-After", latency=until - ended)
        elif isinstance(exc, ModelUnavailable):
            until = ended + router._unavailable_for
            router._closures.close(
                (offer.gateway or "", offer.gateway_model),
                until,
                f"{offer.gateway} said it does not serve {offer.gateway_model!r}; left out for a while",
                exclude=True,
                now=ended,
            )
            if self.hooks is not None:
                self.emit("offer.unavailable", offer, detail=str(exc), latency=until - ended)
        elif exc.retryable and exc.retry_after is not None:
            # A 503 "model overloaded" (or any retryable answer) with Retry-After closes
            # this target until then, as a 429 closes its account.
            wait = self.retry_after(exc)
            assert wait is not None
            router._closures.close(
                (offer.gateway or "", offer.gateway_model),
                ended + wait,
                f"Retry-After from HTTP {exc.status} at {offer.gateway_model}",
                exclude=False,
                now=ended,
            )
            if self.hooks is not None:
                self.emit("bucket.closed", offer, detail="Retry-After", latency=wait)
        router._limits.settle(ticket.reservation, None, headers, ended)

    def _ended_cancelled(self, ticket: _Ticket) -> None:
        """The attempt was abandoned (cancelled, or the caller stopped reading)."""
        if ticket.ended:
            return
        ticket.ended = True
        router = self.router
        ended = self.now()
        latency = ended - ticket.started
        if router._policy_learns:
            router._policy.observe(Outcome(offer=ticket.offer, ok=False, latency=latency, now=ended))
        self._record(ticket, "cancelled", latency, None, None)
        if self.hooks is not None:
            self.emit(
                "attempt.finished", ticket.offer, attempt=ticket.number, outcome="cancelled", latency=latency
            )
        router._health.release(ticket.permit, ended)
        router._limits.settle(ticket.reservation, None, None, ended)

    # -- a complete reply ----------------------------------------------------------------------

    async def attempt(self, index: int, tier: int, offer: Offer) -> Reply:
        """One plain attempt: send, read the whole reply, parse."""
        ticket = self._begin(tier, offer)
        router = self.router
        adapter = ticket.adapter
        raw = None
        try:
            wire = adapter.build(self.request, offer, ticket.gateway)
            raw = await router._transport.send(wire, router._attempt_timeouts(self.limit - ticket.started))
            ended = self.now()
            # The attempt is recorded before parsing so the reply's route can include it;
            # a reply that does not parse replaces it with the failure below.
            self._record(ticket, "ok", ended - ticket.started, raw.status, None)
            try:
                reply: Reply = adapter.parse(
                    raw, wire, offer, ticket.gateway, wall_now=router._wall(), attempts=tuple(self.attempts)
                )
            except UpstreamError:
                self.attempts.pop()
                raise
        except UpstreamError as exc:
            self._ended_error(ticket, exc, None if raw is None else raw.headers)
            raise
        except BaseException:
            self._ended_cancelled(ticket)
            raise
        self._ended_ok(ticket, reply.usage.total_tokens, raw.headers, ended, None)
        return reply

    # -- a stream ------------------------------------------------------------------------------

    def _read_limit(self, limit: float) -> float:
        """``limit`` seconds, or what is left of the deadline when that is less (at least a moment)."""
        return max(min(limit, self.limit - self.now()), _MIN_WAIT)

    async def open_stream(self, index: int, tier: int, offer: Offer) -> _Upstream:
        """One stream attempt: open the upstream and read until its first content (or its end)."""
        ticket = self._begin(tier, offer)
        router = self.router
        timeouts = router._attempt_timeouts(self.limit - ticket.started)
        stack = contextlib.AsyncExitStack()
        try:
            adapter = ticket.adapter
            if ticket.gateway.wire is Wire.ONELLM or not isinstance(adapter, OpenAIAdapter):
                # OneLLM does not stream: its whole reply arrives as one chunk.
                wire = adapter.build(self.request, offer, ticket.gateway)
                raw = await router._transport.send(wire, timeouts)
                reply = adapter.parse(raw, wire, offer, ticket.gateway, wall_now=router._wall())
                upstream = _Upstream(ticket, stack, self.now() - ticket.started)
                upstream.pending = [StreamDelta(text=reply.text, tool_calls=reply.tool_calls)]
                upstream.finish_reason = reply.finish_reason
                upstream.usage = reply.usage
                upstream.done = True
                upstream.id = reply.id
                upstream.capped = reply.output_capped
                return upstream
            request = self.request
            prefill = self.prefill if offer.capabilities.assistant_prefill is True else None
            if prefill:
                # The target continues a final assistant message: it carries on from
                # what was delivered instead of starting the answer again.
                request = ChatRequest(
                    **{
                        **_fields(self.request),
                        "messages": (*request.messages, Message("assistant", prefill)),
                    }
                )
            wire = adapter.build(request, offer, ticket.gateway, stream=True)
            response = await stack.enter_async_context(router._transport.stream(wire, timeouts))
            if response.status != 200:
                body = await response.read()
                raise classify(
                    ticket.gateway.name,
                    response.status,
                    response.headers,
                    body,
                    key=ticket.gateway.api_key,
                    wall_now=router._wall(),
                )
            upstream = _Upstream(ticket, stack, 0.0)
            upstream.prefilled = prefill or ""
            decoder = SSEDecoder()
            upstream.events = sse_events(response.lines(), decoder).__aiter__()
            stack.push_async_callback(_close_events, upstream)
            # Before the first content, the time to first token is the limit on each read.
            first_token_by = ticket.started + timeouts.first_token
            while not upstream.pending and not upstream.done:
                limit = first_token_by - self.now()
                if limit <= 0:
                    raise UpstreamTimeout(
                        ticket.gateway.name,
                        status=200,
                        detail=f"no first token within {timeouts.first_token:g}s",
                    )
                delta = await self._next_delta(upstream, self._read_limit(limit), "first token")
                if delta is None:
                    break
                self._take(upstream, delta)
            if not upstream.pending and not (upstream.prefilled and upstream.finish_reason is not None):
                raise _empty(ticket.gateway.name, upstream, decoder)
            upstream.ttft = self.now() - ticket.started
            return upstream
        except UpstreamError as exc:
            await stack.aclose()
            self._ended_error(ticket, exc, None)
            raise
        except BaseException:
            await stack.aclose()
            self._ended_cancelled(ticket)
            raise

    async def _next_delta(self, upstream: _Upstream, limit: float, waiting_for: str) -> StreamDelta | None:
        """The next parsed event within ``limit`` seconds; None when the stream ended."""
        ticket = upstream.ticket
        assert upstream.events is not None
        adapter = ticket.adapter
        assert isinstance(adapter, OpenAIAdapter)
        try:
            async with asyncio.timeout(limit):
                event = await anext(upstream.events)
        except StopAsyncIteration:
            return None
        except TimeoutError as exc:
            what = "no first token" if waiting_for == "first token" else "the stream stalled"
            raise UpstreamTimeout(
                ticket.gateway.name, status=200, detail=f"{what} within {limit:.3g}s"
            ) from exc
        except UnicodeDecodeError:
            event = None
        if event is None:
            # Raised here, outside the handler: the decode error holds the raw line.
            raise MalformedReply(ticket.gateway.name, status=200, detail="a stream event that is not UTF-8")
        return adapter.parse_event(event.data, ticket.gateway, wall_now=self.router._wall())

    @staticmethod
    def _take(upstream: _Upstream, delta: StreamDelta) -> None:
        """Fold one event into the upstream's state."""
        if delta.done:
            upstream.done = True
            return
        if delta.response_id and upstream.id is None:
            upstream.id = delta.response_id
        if delta.usage is not None:
            upstream.usage = delta.usage
        if delta.finish_reason is not None:
            upstream.finish_reason = delta.finish_reason
        if delta.text or delta.tool_calls:
            upstream.pending.append(delta)

    async def deliver(self, upstream: _Upstream) -> AsyncIterator[StreamChunk]:
        """Hand the answer to the caller chunk by chunk, ending with its usage, cost and route.

        A stream that ends without ``[DONE]`` and without a finish reason did not
        finish: that is a :class:`StreamCut`, never a short answer passed off as whole.
        """
        ticket = upstream.ticket
        router = self.router
        timeouts = router._timeouts
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
                delta_or_end = await self._next_delta(upstream, self._read_limit(timeouts.stall), "stall")
                if delta_or_end is None:
                    if upstream.finish_reason is None:
                        raise StreamCut(
                            ticket.gateway.name,
                            status=200,
                            detail=f"ended without [DONE] or a finish reason after {len(parts)} chunks",
                        )
                    break  # a finish reason then the end, without [DONE]: finished
                self._take(upstream, delta_or_end)
        except UpstreamError as exc:
            await upstream.aclose()
            self._ended_error(ticket, exc, None)
            raise
        except BaseException:
            await upstream.aclose()
            self._ended_cancelled(ticket)
            raise
        await upstream.aclose()
        ended = self.now()
        text = "".join(parts)
        usage = upstream.usage
        if usage is None:
            # The gateway gave no usage: estimate it, and say so.
            prompt = self.ctx.prompt_tokens
            completion = router._estimator.text_tokens(text)
            usage = Usage(prompt, completion, prompt + completion, estimated=True)
        offer = ticket.offer
        cost = usage.reported_cost_usd
        if cost is None:
            cost = offer.cost_usd(usage.prompt_tokens, usage.completion_tokens)
        self._record(ticket, "ok", ended - ticket.started, 200, None)
        self._ended_ok(ticket, usage.total_tokens, None, ended, upstream.ttft)
        yield StreamChunk(
            finish_reason=normalize_finish_reason(upstream.finish_reason),
            usage=usage,
            cost_usd=cost,
            route=Route(
                offer.gateway or "",
                offer.gateway_model,
                offer.model,
                tuple(self.attempts),
                output_capped=upstream.capped,
            ),
            id=upstream.id,
        )


def _empty(gateway: str, upstream: _Upstream, decoder: SSEDecoder) -> UpstreamError:
    """The failure of a 200 stream that ended before any content: nothing reached the caller,
    so it fails over like any failure before the first chunk."""
    if decoder.events == 0:
        comments = f" ({decoder.comments} comment lines)" if decoder.comments else ""
        return MalformedReply(
            gateway, status=200, detail=f"the 200 stream held no server-sent events{comments}"
        )
    if upstream.done or upstream.finish_reason is not None:
        return MalformedReply(gateway, status=200, detail="the stream finished without any content")
    return StreamCut(gateway, status=200, detail="the stream ended before any content")


async def _close_events(upstream: _Upstream) -> None:
    events = upstream.events
    if events is not None and hasattr(events, "aclose"):
        with contextlib.suppress(Exception):
            await events.aclose()


def _fields(request: ChatRequest) -> dict[str, Any]:
    """A request's init arguments, for a copy with other messages."""
    return {f.alias or f.name: getattr(request, f.name) for f in attrs.fields(ChatRequest) if f.init}
