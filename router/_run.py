"""One request's state while it runs: its trace, its failures, its deferrals, and its events.

A :class:`Run` is made per request and read by the failover loop
(``_loop.py``), one attempt (``_attempt.py``) and streamed delivery
(``_deliver.py``); the router's shared parts come from its :class:`Runtime`.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Any

from ..policies import Deferral, RequestContext
from ..providers import (
    Attempt,
    ChatRequest,
    Offer,
    Reply,
    RouterError,
    SaturatedError,
    StreamChunk,
    UpstreamError,
)
from ._breaker import BreakerState
from ._events import Event, Hooks
from ._runtime import Runtime
from ._store import Reported

__all__ = ["BudgetSpent", "Deferred", "Run", "Skipped", "rejected"]


class Deferred(Exception):
    """Internal: the candidate's account (or target) cannot take the request now."""

    def __init__(self, deferral: Deferral) -> None:
        self.deferral = deferral


class Skipped(Exception):
    """Internal: the candidate is refused at the last moment (a probe already in flight, closed)."""


class BudgetSpent(Exception):
    """Internal: the retry budget refused one more attempt."""


_TRANSITIONS = {
    BreakerState.OPEN: "breaker.opened",
    BreakerState.HALF_OPEN: "breaker.half_opened",
    BreakerState.CLOSED: "breaker.closed",
}


class Run:
    """The state of one request: attempts, errors, deferrals, and where it reports them."""

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
        "rt",
        "start",
    )

    def __init__(
        self,
        rt: Runtime,
        request: ChatRequest,
        ctx: RequestContext,
        deadline: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.rt = rt
        self.request = request
        self.ctx = ctx
        self.deadline = deadline
        # The running loop's time (its ``time``, when the caller has the loop at hand): deadlines,
        # waits, latencies.
        self.now = clock if clock is not None else asyncio.get_running_loop().time
        self.start = ctx.now
        self.limit = self.start + deadline
        self.attempts: list[Attempt] = []
        self.errors: list[UpstreamError] = []
        self.deferred: dict[int, Deferral] = {}  # the latest deferral of each candidate, by plan index
        self.id = next(rt.ids)
        self.hooks: Hooks | None = rt.hooks if rt.hooks.attached else None  # (no __bool__ call)
        self.last_tried: tuple[int, Offer] | None = None
        self.prefill: str | None = None  # after an interruption: the text to continue from, where taken

    @property
    def canonical(self) -> str:
        """The canonical model asked for."""
        return self.ctx.request.model

    # -- reporting ---------------------------------------------------------------------------

    def emit(self, name: str, offer: Offer | None = None, **fields: Any) -> None:
        """Send one event to the hooks (only called when there are hooks)."""
        assert self.hooks is not None
        if offer is not None:
            fields.setdefault("gateway", offer.gateway)
            fields.setdefault("gateway_model", offer.gateway_model)
            fields.setdefault("model", offer.model)
        gateway = fields.get("gateway")
        if gateway is not None and "server" not in fields:
            known = self.rt.gateways.get(gateway)
            fields["server"] = None if known is None else known.origin
        self.hooks.emit(Event(name=name, request_id=self.id, request=self.request, **fields))

    def transitions(self, reported: list[Reported]) -> None:
        """Report breaker transitions as events."""
        if self.hooks is None or not reported:
            return
        for r in reported:
            latency = None if r.transition.until is None else r.transition.until - self.now()
            self.emit(
                _TRANSITIONS[r.transition.after],
                gateway=r.gateway,
                gateway_model=r.gateway_model,
                detail=r.transition.reason,
                latency=latency,
            )

    def started_event(self) -> None:
        """Emit ``request.started``."""
        if self.hooks is not None:
            self.emit("request.started", detail=self.request.model, stream=self.ctx.stream)

    def finish(
        self,
        error: BaseException | None,
        *,
        cancelled: bool = False,
        answer: Reply | StreamChunk | None = None,
        text: str | None = None,
        ttft: float | None = None,
    ) -> None:
        """Emit ``request.finished``: outcome ``ok``, ``cancelled``, or the error's class.

        ``answer`` (the reply, or a stream's last chunk) and ``text`` describe a
        successful answer; ``ttft`` is a stream's time to its first chunk.
        """
        if self.hooks is None:
            return
        now = self.now()
        fields: dict[str, Any] = {}
        if answer is not None and answer.route is not None and error is None and not cancelled:
            route = answer.route
            fields.update(
                gateway=route.gateway,
                gateway_model=route.gateway_model,
                model=route.model,
                usage=answer.usage,
                cost_usd=answer.cost_usd,
                finish_reason=answer.finish_reason,
                text=text,
            )
        self.emit(
            "request.finished",
            outcome="cancelled" if cancelled else "ok" if error is None else type(error).__name__,
            attempt=len(self.attempts),
            latency=now - self.start,
            detail=self.request.model,
            ttft=ttft,
            retry_budget=self.rt.budget.balance(now),
            **fields,
        )

    def record(
        self, offer: Offer, outcome: str, latency: float, status: int | None, error: str | None
    ) -> None:
        """Add an attempt to the trace."""
        self.attempts.append(  # positional, in Attempt's field order (one per attempt)
            Attempt(offer.gateway or "", offer.gateway_model, offer.model, outcome, latency, status, error)
        )

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

    def read_limit(self, limit: float) -> float:
        """``limit`` seconds, or what is left of the deadline when that is less (at least a moment)."""
        return max(min(limit, self.limit - self.now()), 0.001)


def rejected(rt: Runtime, request: ChatRequest, error: RouterError, *, stream: bool) -> None:
    """Report a request refused while planning (nothing was sent): ``request.started``, then
    ``request.finished`` with the error's class and no attempt."""
    if not rt.hooks:
        return
    request_id = next(rt.ids)
    model = request.model
    rt.hooks.emit(Event("request.started", request_id, detail=model, request=request, stream=stream))
    rt.hooks.emit(
        Event(
            "request.finished",
            request_id,
            outcome=type(error).__name__,
            attempt=0,
            latency=0.0,
            detail=model,
            request=request,
        )
    )
