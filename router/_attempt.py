"""One attempt: what it holds (reservation, both breakers' permission, a retry from the budget),
taken before sending and given back exactly once on every exit, with its outcome recorded.

A :class:`Ticket` is the async context manager a plain attempt runs in
(``async with Ticket(run, candidate) as ticket:``); a stream attempt takes one the
same way and ends it when the stream does (``_deliver.py``). What a failure
closes, and which breaker it counts against, is the failure table's
(``providers/_failures.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import TracebackType

from ..policies import Deferral, Outcome, Reservation
from ..providers import Closes, DeadlineExceeded, Gateway, Reply, Route, UpstreamError
from ..providers.wire import Adapter
from ._health import Permit
from ._plan import Candidate
from ._run import BudgetSpent, Deferred, Run, Skipped

__all__ = ["Ticket", "attempt"]


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

    def __init__(self, run: Run, candidate: Candidate) -> None:
        """Take admission, both breakers' permission and (after a request's first attempt) a retry.

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
        limits = rt.limits
        admission = limits.admit(offer, run.ctx, started)
        if isinstance(admission, Deferral):
            if run.hooks is not None:
                wait = None if admission.until is None else admission.until - started
                run.emit("bucket.deferred", offer, detail=admission.limit, latency=wait)
            raise Deferred(admission)
        permit, reported = rt.health.acquire(offer, started)
        run.transitions(reported)
        if permit is None:
            limits.settle(admission, None, None, started)
            raise Skipped(rt.health.exclusion(offer, started) or "the circuit refused it")
        if run.attempts and not rt.budget.try_withdraw(started):
            rt.health.release(permit, started)
            limits.settle(admission, None, None, started)
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
        self.run = run
        self.offer = offer
        self.tier = candidate.tier
        self.gateway: Gateway = rt.gateways[target[0]]
        self.adapter: Adapter = rt.adapters[target[0]]
        self.reservation: Reservation = admission
        self.permit: Permit = permit
        self.started = started
        self.number = len(run.attempts) + 1
        self.ended = False
        if run.hooks is not None:
            run.emit("attempt.started", offer, attempt=self.number)
        if rt.policy_learns:
            rt.policy.started(offer, started)

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
            self.failed(exc)
        else:
            self.cancelled()

    def ok(
        self, used_tokens: int, headers: Mapping[str, str] | None, ended: float, ttft: float | None
    ) -> None:
        """The attempt produced a complete answer (already in the trace)."""
        self.ended = True
        run, rt = self.run, self.run.rt
        latency = ended - self.started
        run.transitions(rt.health.record(self.permit, self.offer, None, ttft or latency, ended))
        rt.limits.settle(self.reservation, used_tokens, headers, ended)
        if rt.policy_learns:
            rt.policy.observe(Outcome(offer=self.offer, ok=True, latency=latency, now=ended, ttft=ttft))
        if run.hooks is not None:
            run.emit(
                "attempt.finished", self.offer, attempt=self.number, outcome="ok", status=200, latency=latency
            )

    def failed(self, exc: UpstreamError, headers: Mapping[str, str] | None = None) -> None:
        """The attempt failed with ``exc``: trace, breakers, and what the failure table says it closes."""
        if self.ended:
            return
        self.ended = True
        run, rt, offer = self.run, self.run.rt, self.offer
        ended = run.now()
        latency = ended - self.started
        if rt.policy_learns:
            rt.policy.observe(Outcome(offer=offer, ok=False, latency=latency, now=ended, error=exc))
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
        run.transitions(rt.health.record(self.permit, offer, exc, latency, ended))
        self._close(exc, ended)
        rt.limits.settle(self.reservation, None, headers, ended)

    def _close(self, exc: UpstreamError, ended: float) -> None:
        run, rt, offer = self.run, self.run.rt, self.offer
        closes = exc.failure.closes
        target = (offer.gateway or "", offer.gateway_model)
        if closes is Closes.ACCOUNT:
            until = rt.limits.rate_limited(offer, rt.retry_after(exc.retry_after), ended)
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

    def cancelled(self) -> None:
        """The attempt was abandoned (cancelled, or the caller stopped reading)."""
        if self.ended:
            return
        self.ended = True
        run, rt = self.run, self.run.rt
        ended = run.now()
        latency = ended - self.started
        if rt.policy_learns:
            rt.policy.observe(Outcome(offer=self.offer, ok=False, latency=latency, now=ended))
        run.record(self.offer, "cancelled", latency, None, None)
        if run.hooks is not None:
            run.emit(
                "attempt.finished", self.offer, attempt=self.number, outcome="cancelled", latency=latency
            )
        rt.health.release(self.permit, ended)
        rt.limits.settle(self.reservation, None, None, ended)


async def attempt(run: Run, index: int, candidate: Candidate) -> Reply:
    """One plain attempt: send, read the whole answer, and attach the route."""
    async with Ticket(run, candidate) as ticket:
        rt = run.rt
        offer = ticket.offer
        wire = ticket.adapter.build(run.request, offer, ticket.gateway)
        response = await rt.transport.request(wire, rt.attempt_timeouts(run.limit - ticket.started))
        try:
            answer = await ticket.adapter.answer(response, wire, offer, ticket.gateway, wall_now=rt.wall())
        except UpstreamError as exc:
            ticket.failed(exc, response.headers)
            raise
        finally:
            await response.aclose()
        ended = run.now()
        run.record(offer, "ok", ended - ticket.started, response.status, None)
        ticket.ok(answer.usage.total_tokens, response.headers, ended, None)
        route = Route(
            offer.gateway or "",
            offer.gateway_model,
            offer.model,
            tuple(run.attempts),
            output_capped=answer.output_capped,
        )
        return answer.reply(route)
