"""One attempt: what it holds (reservation, both breakers' permission, a retry from the budget),
taken before sending and given back exactly once on every exit, with its outcome recorded.

A :class:`Ticket` is the async context manager a plain attempt runs in
(``async with await Ticket.take(run, candidate) as ticket:``); a stream attempt
takes one the same way and ends it when the stream does (``_deliver.py``). What a failure
closes, and which breaker it counts against, is the failure table's
(``providers/_failures.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from types import TracebackType

from ..policies import Deferral, Outcome, Reservation
from ..providers import Closes, DeadlineExceeded, Gateway, Reply, Route, RouterError, UpstreamError
from ..providers.wire import Adapter
from ._loop import failover
from ._plan import Candidate, Plan
from ._run import BudgetSpent, Deferred, Run, Skipped
from ._store import Permit

__all__ = ["Ticket", "attempt", "complete"]


class Ticket:
    """What one attempt holds, and its place in the trace; ended exactly once."""

    __slots__ = (
        "adapter",
        "ended",
        "gateway",
        "number",
        "offer",
        "permit",
        "reservation",
        "run",
        "started",
        "tier",
    )

    def __init__(
        self, run: Run, candidate: Candidate, reservation: Reservation, permit: Permit, started: float
    ) -> None:
        """What :meth:`take` took (use that)."""
        self.run = run
        self.offer = candidate.offer
        self.tier = candidate.tier
        gateway = candidate.offer.gateway or ""
        self.gateway: Gateway = run.rt.gateways[gateway]
        self.adapter: Adapter = run.rt.adapters[gateway]
        self.reservation = reservation
        self.permit = permit
        self.started = started
        self.number = len(run.attempts) + 1
        self.ended = False

    @classmethod
    async def take(cls, run: Run, candidate: Candidate) -> Ticket:
        """Take admission and both breakers' permission (one store operation) and, after a
        request's first attempt, a retry from the budget.

        Raises:
            Deferred: the account, or the target, cannot take the request now.
            Skipped: a breaker refused at the last moment, or the offer is closed.
            BudgetSpent: the retry budget refused one more attempt.
            DeadlineExceeded: the deadline has passed.
        """
        rt = run.rt
        offer = candidate.offer
        started = run.now()
        if started >= run.limit:
            raise DeadlineExceeded(run.deadline, run.attempts, run.errors)
        target = (offer.gateway or "", offer.gateway_model)
        if rt.closures.entries:
            closure = rt.closures.get(target, started)
            if closure is not None:
                if closure.exclude:
                    raise Skipped(closure.reason)
                if run.hooks is not None:
                    run.emit("bucket.deferred", offer, detail=closure.reason, latency=closure.until - started)
                raise Deferred(Deferral(target[0], closure.reason, closure.until))
        admitted = await rt.admission.admit(offer, run.ctx.tokens, rt.health.config, started)
        if admitted.reported:
            run.transitions(admitted.reported)
        if admitted.notices and run.hooks is not None:
            for notice in admitted.notices:  # the store's own news (Redis lost or back)
                run.emit(notice.name, offer, detail=notice.detail)
        reservation, permit = admitted.reservation, admitted.permit
        if admitted.deferral is not None:
            if run.hooks is not None:
                until = admitted.deferral.until
                run.emit(
                    "bucket.deferred",
                    offer,
                    detail=admitted.deferral.limit,
                    latency=None if until is None else until - started,
                )
            raise Deferred(admitted.deferral)
        if reservation is None or permit is None:
            raise Skipped(rt.health.exclusion(offer, started) or "the circuit refused it")
        if run.attempts and not rt.budget.try_withdraw(started):
            await rt.health.release(permit, started)
            await rt.admission.settle(reservation, None, None, started)
            if run.hooks is not None:
                run.emit("budget.exhausted", offer)
            raise BudgetSpent
        if run.hooks is not None and run.last_tried is not None:
            previous_tier, previous = run.last_tried
            if candidate.tier != previous_tier:
                run.emit("fallback", offer, detail=f"from {previous.model}")
            elif previous is not offer:
                run.emit("failover", offer, detail=f"from {previous.gateway}:{previous.gateway_model}")
        run.last_tried = (candidate.tier, offer)
        ticket = cls(run, candidate, reservation, permit, started)
        if run.hooks is not None:
            run.emit("attempt.started", offer, attempt=ticket.number)
        if rt.learner is not None:
            rt.learner.started(offer, started)
        return ticket

    async def __aenter__(self) -> Ticket:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Leaving the block ends the attempt: a switchyard error as a failure, anything else
        (a cancellation, or a body that ended it neither way) as abandoned."""
        if self.ended:
            return
        if isinstance(exc, UpstreamError):
            await self.failed(exc)
        else:
            await self.cancelled()

    async def ok(
        self, used_tokens: int, headers: Mapping[str, str] | None, ended: float, ttft: float | None
    ) -> None:
        """The attempt produced a complete answer (already in the trace)."""
        self.ended = True
        run, rt = self.run, self.run.rt
        latency = ended - self.started
        reported = await rt.health.record(self.permit, None, ttft or latency, ended)
        if reported:
            run.transitions(reported)
        if rt.hedging is not None:
            rt.hedging.observe(self.offer, ttft or latency)
        await rt.admission.settle(self.reservation, used_tokens, headers, ended)
        if rt.learner is not None:
            rt.learner.observe(Outcome(self.offer, True, latency, ended, ttft))
        if run.hooks is not None:
            run.emit(
                "attempt.finished", self.offer, attempt=self.number, outcome="ok", status=200, latency=latency
            )

    async def failed(self, exc: UpstreamError, headers: Mapping[str, str] | None = None) -> None:
        """The attempt failed with ``exc``: trace, breakers, and what the failure table says it closes."""
        if self.ended:
            return
        self.ended = True
        run, rt, offer = self.run, self.run.rt, self.offer
        ended = run.now()
        latency = ended - self.started
        if rt.learner is not None:
            rt.learner.observe(Outcome(offer, False, latency, ended, None, exc))
        run.record(offer, type(exc).__name__, latency, exc.status, str(exc))
        run.errors.append(exc)
        if run.hooks is not None:
            run.emit(
                "attempt.finished",
                offer,
                attempt=self.number,
                outcome=type(exc).__name__,
                status=exc.status,
                latency=latency,
            )
        run.transitions(await rt.health.record(self.permit, exc, latency, ended))
        await self._close(exc, ended)
        await rt.admission.settle(self.reservation, None, headers, ended)

    async def _close(self, exc: UpstreamError, ended: float) -> None:
        run, rt, offer = self.run, self.run.rt, self.offer
        closes = exc.failure.closes
        target = (offer.gateway or "", offer.gateway_model)
        if closes is Closes.ACCOUNT:
            until = await rt.admission.rate_limited(offer, rt.retry_after(exc.retry_after), ended)
            if run.hooks is not None:
                run.emit("bucket.closed", offer, detail="Retry-After", latency=until - ended)
        elif closes is Closes.OFFER:
            until = ended + rt.unavailable_for
            reason = f"{offer.gateway} said it does not serve {offer.gateway_model!r}; left out for a while"
            rt.closures.close(target, until, reason, exclude=True, now=ended)
            if run.hooks is not None:
                run.emit("offer.unavailable", offer, detail=str(exc), latency=until - ended)
        elif closes is Closes.TARGET and exc.retry_after is not None:
            # A 503 "model overloaded" (or any retryable answer) with Retry-After closes
            # this target until then, as a 429 closes its account.
            wait = rt.retry_after(exc.retry_after) or 0.0
            reason = f"Retry-After from HTTP {exc.status} at {offer.gateway_model}"
            rt.closures.close(target, ended + wait, reason, exclude=False, now=ended)
            if run.hooks is not None:
                run.emit("bucket.closed", offer, detail="Retry-After", latency=wait)

    async def cancelled(self) -> None:
        """The attempt was abandoned (cancelled, or the caller stopped reading)."""
        if self.ended:
            return
        self.ended = True
        run, rt = self.run, self.run.rt
        ended = run.now()
        latency = ended - self.started
        if rt.learner is not None:
            rt.learner.observe(Outcome(self.offer, False, latency, ended))
        run.record(self.offer, "cancelled", latency, None, None)
        if run.hooks is not None:
            run.emit(
                "attempt.finished", self.offer, attempt=self.number, outcome="cancelled", latency=latency
            )
        await rt.health.release(self.permit, ended)
        await rt.admission.settle(self.reservation, None, None, ended)


async def attempt(run: Run, index: int, candidate: Candidate) -> Reply:
    """One plain attempt: send, read the whole answer, and attach the route.

    The ticket ends as its ``async with`` block would end it (written out: two coroutines
    fewer on every request).
    """
    ticket = await Ticket.take(run, candidate)
    try:
        rt = run.rt
        offer = ticket.offer
        wire = ticket.adapter.build(run.request, offer, ticket.gateway)
        response = await rt.transport.request(wire, rt.attempt_timeouts(run.limit - ticket.started))
        try:
            answer = await ticket.adapter.answer(response, wire, offer, ticket.gateway, wall_now=rt.wall())
        except UpstreamError as exc:
            await ticket.failed(exc, response.headers)
            raise
        finally:
            await response.stream.aclose()  # Response.aclose(), one coroutine fewer
        ended = run.now()
        run.record(offer, "ok", ended - ticket.started, response.status, None)
        await ticket.ok(answer.usage.total_tokens, response.headers, ended, None)
    except BaseException as exc:
        await ticket.__aexit__(type(exc), exc, exc.__traceback__)
        raise
    # Positional, in Route's field order (gateway, gateway_model, model, attempts, output_capped).
    return answer.reply(
        Route(
            offer.gateway or "", offer.gateway_model, offer.model, tuple(run.attempts), answer.output_capped
        )
    )


async def complete(run: Run, plan: Plan) -> Reply:
    """A plain request from start to finish: the failover loop over ``plan`` inside the deadline,
    reported as it starts and as it ends (cancelled, failed or answered)."""
    if run.hooks is not None:
        run.started_event()
    try:
        if run.rt.honours_timeouts:
            # The transport needs no timer here: every attempt's timeouts are clipped to
            # what is left of the deadline and every backoff is checked against it.
            reply = await failover(run, plan, attempt)
        else:
            try:
                async with asyncio.timeout(run.deadline):
                    reply = await failover(run, plan, attempt)
            except TimeoutError as exc:
                if isinstance(exc, RouterError):
                    raise
                saturated = run.saturated()
                if saturated is not None:
                    raise saturated from None
                raise DeadlineExceeded(run.deadline, run.attempts, run.errors) from (
                    run.errors[0] if run.errors else None
                )
    except asyncio.CancelledError:
        run.finish(None, cancelled=True)
        raise
    except BaseException as exc:
        run.finish(exc)
        raise
    if run.hooks is not None:
        run.finish(None, answer=reply, text=reply.text)
    return reply
