"""The failover loop: each candidate once in order, then the deferred and the retried, inside the deadline.

The loop is the same for complete replies and streams; only the attempt differs
(``_attempt.attempt`` or ``_deliver.open_stream``). What a failure means (retry
here? move on? only to a larger context window?) is the failure table's, read
through the policy (``failover_on``, which may keep a request on its target) and
the error's row (``error.failure``). A retry of the same target waits a
full-jitter backoff whose step grows with each retry of that target, and never
less than its (clamped) Retry-After; every attempt after a request's first draws
on the router's retry budget.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Final, Generic, TypeVar

from ..policies import Deferral
from ..providers import (
    AllCandidatesFailed,
    DeadlineExceeded,
    Failover,
    NoCandidatesError,
    Offer,
    Retry,
    UpstreamError,
)
from ._hedge import race, with_route
from ._plan import Candidate, Plan
from ._run import BudgetSpent, Deferred, Run, Skipped

__all__ = ["failover"]

T = TypeVar("T")
Attempt = Callable[[Run, int, Candidate], Awaitable[T]]
Discard = Callable[[T], Awaitable[None]]

_MIN_WAIT: Final = 0.001  # the least a re-deferred request waits before asking again


class _Revisit:
    """A candidate to come back to: deferred by its account, or failed and due a retry."""

    __slots__ = ("deferral", "error", "index", "ready", "retries", "wait")

    def __init__(
        self,
        index: int,
        ready: float | None,
        deferral: Deferral | None,
        error: UpstreamError | None,
        wait: float = 0.0,
        retries: int = 0,
    ) -> None:
        self.index = index
        self.ready = ready  # None: when a slot frees
        self.deferral = deferral
        self.error = error  # set for a retry: the failure it retries
        self.wait = wait  # for a retry: the backoff before it
        self.retries = retries  # for a retry: how many retries of this target came before it


class _Found(Generic[T]):
    """The loop's answer."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class _Exhausted:
    """The loop ended without an answer, and why."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _retry_of(run: Run, index: int, error: UpstreamError, retries: int = 0) -> _Revisit:
    """The ``retries``-th retry of a failed candidate: full-jitter backoff, never before its Retry-After."""
    rt = run.rt
    wait = rt.backoff.delay(retries, rt.rng, rt.retry_after(error.retry_after))
    return _Revisit(index, run.now() + wait, None, error, wait, retries)


class _Loop(Generic[T]):
    """One request's pass over its plan."""

    __slots__ = ("attempt", "context_floor", "discard", "plan", "revisits", "run", "skipped", "twins")

    def __init__(self, run: Run, plan: Plan, attempt: Attempt[T], discard: Discard[T] | None) -> None:
        self.run = run
        self.plan = plan
        self.attempt = attempt
        self.discard = discard
        self.revisits: list[_Revisit] = []
        self.skipped: list[tuple[Offer, str]] = []
        self.context_floor: int | None = None
        self.twins: set[int] = set()  # candidates already sent as a hedge's twin

    def _fits(self, offer: Offer) -> bool:
        return self.context_floor is None or (offer.context_window or 0) > self.context_floor

    def _larger_context_left(self, index: int) -> bool:
        """After a context-length rejection: whether a later candidate has a known, larger window."""
        run, offer = self.run, self.plan[index].offer
        self.context_floor = offer.context_window or (run.ctx.prompt_tokens + (run.request.max_tokens or 0))
        return any(self._fits(c.offer) for c in self.plan[index + 1 :])

    async def first_pass(self) -> _Found[T] | _Exhausted:
        """Each candidate once, in order; a retryable failure retried in place up to the policy's
        ``retry_same`` times; and before falling back to another model, this model's failed
        targets retried once (quality degrades last)."""
        run = self.run
        failover_on = run.rt.policy.failover_on
        tier = self.plan[0].tier if self.plan else 0
        for index, candidate in enumerate(self.plan):
            if candidate.tier != tier:
                found = await self._retry_tier(tier)
                if found is not None:
                    return found
                tier = candidate.tier
            if index in self.twins or not self._fits(candidate.offer):
                continue
            retries = 0
            while True:
                try:
                    if run.rt.hedging is None:
                        return _Found(await self.attempt(run, index, candidate))
                    return _Found(await self._send(index, candidate))
                except Deferred as deferred:
                    run.deferred[index] = deferred.deferral
                    self.revisits.append(_Revisit(index, deferred.deferral.until, deferred.deferral, None))
                except Skipped as exc:
                    self.skipped.append((candidate.offer, str(exc)))
                except BudgetSpent:
                    self.revisits = []
                    return _Exhausted("the retry budget is spent")
                except UpstreamError as exc:
                    row = exc.failure
                    if row.failover is Failover.LARGER_CONTEXT:
                        # Only a candidate with a known, larger window may help; with none
                        # left, the gateway's own 400 goes to the caller at once.
                        if self._larger_context_left(index):
                            break
                        exc.attempts = tuple(run.attempts)
                        raise
                    if not failover_on(exc):
                        if row.retry is not Retry.NEVER:
                            # The policy keeps the request on this target: retry it here as
                            # the failure table allows, and try no other candidate.
                            self.revisits.append(_retry_of(run, index, exc))
                            return _Exhausted("no candidate is left")
                        exc.attempts = tuple(run.attempts)
                        raise
                    if row.retry is not Retry.NEVER:
                        if retries < run.rt.retry_same:
                            if await self._back_off(candidate, exc, retries):
                                retries += 1
                                continue
                        elif not retries:
                            self.revisits.append(_retry_of(run, index, exc))
                break
        return _Exhausted("no candidate is left")

    async def _send(self, index: int, candidate: Candidate) -> T:
        """One attempt at ``candidate``; hedged, when the router hedges and it is slow to answer."""
        run = self.run
        hedging = run.rt.hedging
        delay = None if hedging is None else hedging.delay(candidate.offer)
        if delay is None or self._partner(index) is None:
            return await self.attempt(run, index, candidate)
        value = await race(
            lambda i, c: self.attempt(run, i, c),
            (index, candidate),
            lambda: self._twin(index),
            delay,
            self.discard,
        )
        return with_route(value, tuple(run.attempts))  # type: ignore[no-any-return]

    def _partner(self, index: int) -> int | None:
        """The candidate a hedge of ``index`` would go to: the next of the same model not yet
        tried, whose expected cost with the first's fits under ``max_cost_usd``."""
        run, plan = self.run, self.plan
        first = plan[index]
        for j in range(index + 1, len(plan)):
            other = plan[j]
            if other.tier != first.tier:
                return None
            if j in self.twins or not self._fits(other.offer) or j in run.deferred:
                continue
            if run.rt.admission.deferral(other.offer, run.ctx) is not None:
                continue  # its account cannot take it now (a plan checks only its front)
            cap = run.request.max_cost_usd
            if cap is not None:
                ctx = run.ctx
                costs = [c.offer.cost_usd(ctx.prompt_tokens, ctx.output_tokens) for c in (first, other)]
                if None in costs or sum(c or 0.0 for c in costs) > cap:
                    continue
            return j
        return None

    def _twin(self, index: int) -> tuple[int, Candidate] | None:
        """Pick the hedge's candidate, drawing on the retry budget and the hedged share."""
        run = self.run
        rt, now = run.rt, run.now()
        j = self._partner(index)
        if j is None or rt.hedging is None or not rt.hedging.allow(now) or not rt.budget.try_withdraw(now):
            return None
        self.twins.add(j)
        if run.hooks is not None:
            run.emit(
                "hedge", self.plan[j].offer, detail=f"{self.plan[index].offer.gateway} is slow to answer"
            )
        return j, self.plan[j]

    async def _back_off(self, candidate: Candidate, error: UpstreamError, retries: int) -> bool:
        """Wait out the backoff before the ``retries``-th retry in place; False when the deadline
        would pass first (the request moves on instead)."""
        run = self.run
        rt = run.rt
        wait = rt.backoff.delay(retries, rt.rng, rt.retry_after(error.retry_after))
        if run.now() + wait >= run.limit:
            return False
        if run.hooks is not None:
            run.emit("retry", candidate.offer, latency=wait, attempt=len(run.attempts) + 1)
        await asyncio.sleep(wait)
        return True

    async def _retry_tier(self, tier: int) -> _Found[T] | _Exhausted | None:
        """Before a fallback model: retry this model's failed targets once each, as they come due."""
        run = self.run
        entries = [
            r
            for r in self.revisits
            if r.error is not None
            and self.plan[r.index].tier == tier
            and self._fits(self.plan[r.index].offer)
        ]
        for entry in sorted(entries, key=lambda r: (r.ready or 0.0, r.index)):
            ready = entry.ready or 0.0
            if ready >= run.limit:
                continue
            wait = ready - run.now()
            if wait > 0:
                await asyncio.sleep(wait)
            result = await self._again(entry)
            if result is not None:
                return result
        return None

    async def _wait(self, revisits: list[_Revisit], now: float) -> None:
        """Until the soonest revisit is due, or a slot frees for one waiting on a slot."""
        run = self.run
        freed = run.rt.capacity.event()
        timed = [r.ready for r in revisits if r.ready is not None]
        soonest = min(timed) if timed else None
        # No wait is shorter than _MIN_WAIT: a float-sized wait would not move a clock.
        wait = max((run.limit if soonest is None else soonest) - now, _MIN_WAIT)
        if any(r.ready is None for r in revisits):
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await freed.wait()
        else:
            await asyncio.sleep(wait)

    async def _again(self, entry: _Revisit) -> _Found[T] | _Exhausted | None:
        """One more attempt at a revisited candidate; None when the loop goes on (the entry
        re-deferred, dropped, or replaced by its next retry)."""
        run = self.run
        revisits = self.revisits
        candidate = self.plan[entry.index]
        if run.hooks is not None and entry.error is not None:
            run.emit("retry", candidate.offer, latency=entry.wait, attempt=len(run.attempts) + 1)
        try:
            return _Found(await self.attempt(run, entry.index, candidate))
        except Deferred as deferred:
            entry.deferral = deferred.deferral
            if entry.error is None:
                run.deferred[entry.index] = deferred.deferral
            until = deferred.deferral.until
            # Always wait a little before asking again: never spin on a time already here.
            entry.ready = None if until is None else max(until, run.now() + _MIN_WAIT)
        except Skipped:
            revisits.remove(entry)
        except BudgetSpent:
            return _Exhausted("the retry budget is spent")
        except UpstreamError as exc:
            row = exc.failure
            if row.failover is Failover.LARGER_CONTEXT or not (
                run.rt.policy.failover_on(exc) or row.retry is not Retry.NEVER
            ):
                exc.attempts = tuple(run.attempts)
                raise
            revisits.remove(entry)
            # One retry per failure, except where the table says "after each
            # Retry-After" (a 429): that goes on while the deadline and budget allow.
            if row.retry is not Retry.NEVER and (entry.error is None or row.retry is Retry.AFTER_RETRY_AFTER):
                retries = 0 if entry.error is None else entry.retries + 1
                revisits.append(_retry_of(run, entry.index, exc, retries))
        return None

    async def revisit(self, reason: str) -> _Found[T] | _Exhausted:
        """Come back to deferred and failed candidates as they free, until none is left or the deadline."""
        run = self.run
        revisits = self.revisits
        while revisits:
            now = run.now()
            if now >= run.limit:
                return _Exhausted(reason)
            revisits[:] = [
                r
                for r in revisits
                if (r.ready is None or r.ready < run.limit) and self._fits(self.plan[r.index].offer)
            ]
            if not revisits:
                return _Exhausted(reason)
            # Times within a nanosecond count as now.
            due = [r for r in revisits if r.ready is not None and r.ready <= now + 1e-9]
            if not due:
                await self._wait(revisits, now)
                now = run.now()
                due = [r for r in revisits if r.ready is None or r.ready <= now + 1e-9]
            for entry in sorted(due, key=lambda r: r.index):
                result = await self._again(entry)
                if result is not None:
                    return result
        return _Exhausted(reason)


async def failover(run: Run, plan: Plan, attempt: Attempt[T], discard: Discard[T] | None = None) -> T:
    """The answer of the first candidate that gives one; else the error that says why none did.

    Raises:
        BadRequest and the like: at once, when the failure table says no other candidate helps.
        SaturatedError: when the request only ever waited for a limit.
        DeadlineExceeded, NoCandidatesError, AllCandidatesFailed: otherwise.
    """
    now = run.start  # the request's start, a moment ago: one clock read fewer
    run.rt.budget.deposit(now)
    if run.rt.hedging is not None:
        run.rt.hedging.started(now)
    loop = _Loop(run, plan, attempt, discard)
    result = await loop.first_pass()
    if type(result) is _Found:  # the usual case first
        return result.value
    if isinstance(result, _Exhausted) and loop.revisits:
        result = await loop.revisit(result.reason)
    if isinstance(result, _Found):
        return result.value
    first = run.errors[0] if run.errors else None
    saturated = run.saturated()
    if saturated is not None:
        raise saturated
    if run.now() >= run.limit:
        raise DeadlineExceeded(run.deadline, run.attempts, run.errors) from first
    if not run.attempts and loop.skipped:
        raise NoCandidatesError(
            run.canonical, [(o.gateway or "", o.gateway_model, why) for o, why in loop.skipped]
        )
    raise AllCandidatesFailed(run.canonical, run.attempts, run.errors, result.reason) from first
