"""Instrumentation: frozen events with dotted names, delivered to hooks.

Names (a tested contract):

- ``request.started``: a request was validated and planned (``detail``: the id asked for).
- ``attempt.started``: an attempt at one target begins (``attempt`` counts from 1).
- ``attempt.finished``: it ended; ``outcome`` is ``ok`` or the error class.
- ``failover``: moving to another target of the same model (``detail``: from where).
- ``fallback``: moving to a fallback model (``detail``: from which model).
- ``retry``: trying a target that failed again, after ``latency`` seconds of backoff.
- ``hedge``: a slow attempt's twin sent to this target (``detail``: which was slow).
- ``budget.exhausted``: the retry budget stopped a further attempt.
- ``breaker.opened``, ``breaker.half_opened``, ``breaker.closed``: a circuit breaker
  changed state (``gateway_model`` None: the gateway's own; ``latency``: the break).
- ``bucket.deferred``: an account could not take the request now (``detail``: the
  limit; ``latency``: seconds until it frees, None when a slot must free).
- ``bucket.closed``: a 429 closed an account for ``latency`` seconds.
- ``stream.restarted``: in restart mode, a stream broke after delivering and starts again.
- ``store.fallback``: the shared store (Redis) stopped answering; limits and breakers are
  this process's own until it is back (``detail``: why). Emitted once per outage, by
  the first request to ask the store after it.
- ``store.recovered``: the shared store answers again (emitted likewise).
- ``request.finished``: the request ended; ``outcome`` is ``ok``, ``cancelled`` or the
  error class; ``detail``: the id asked for; ``attempt``: how many attempts were made.
  When ``ok``, the target that answered (``gateway``, ``gateway_model``, ``model``)
  and the answer's ``usage``, ``cost_usd``, ``finish_reason`` and ``text``.

A request refused while planning (every candidate excluded: ``NoCandidatesError``,
``PromptTooLong``, ``UnsupportedFeature``) still has ``request.started`` and
``request.finished`` (with no attempt); input that fails validation, or names no
known model, raises before any event.

Every event of a request carries that ``request`` (the validated
:class:`~providers.ChatRequest`, left out of the repr: it holds the messages), and
every event naming a target carries its gateway's ``server`` (scheme, host, port).

A hook is any callable taking an :class:`Event`. It runs inline, so keep it cheap;
an exception in a hook is logged and never breaks the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import attrs
from yarl import URL

from ..providers import ChatRequest, Usage

__all__ = ["Event", "Hook", "Hooks"]

logger: Final = logging.getLogger("switchyard.hooks")


@attrs.frozen
class Event:
    """One thing that happened while routing a request."""

    name: str
    request_id: int
    model: str | None = None
    gateway: str | None = None
    gateway_model: str | None = None
    attempt: int | None = None
    outcome: str | None = None
    status: int | None = None
    latency: float | None = None
    detail: str | None = None
    request: ChatRequest | None = attrs.field(default=None, repr=False)
    """The request this event belongs to (its messages are content: record them only when asked)."""
    server: URL | None = None
    """Where the target's gateway is served: its origin (scheme, host and port)."""
    stream: bool | None = None
    """``request.started``: whether the caller streams the answer (``router.stream()``)."""
    usage: Usage | None = None
    """``request.finished`` when ok: the answer's tokens (``usage.estimated`` when the gateway gave none)."""
    cost_usd: float | None = None
    """``request.finished`` when ok: what the answer cost (None when the price is unknown)."""
    finish_reason: str | None = None
    """``request.finished`` when ok: why the answer ended (``stop``, ``length``...)."""
    text: str | None = attrs.field(default=None, repr=False)
    """``request.finished`` when ok: the answer's text (content: record it only when asked)."""
    ttft: float | None = None
    """``request.finished`` of a stream: seconds from its start until its first chunk reached the caller."""
    retry_budget: float | None = None
    """``request.finished``: the retries left in the router's budget."""


Hook = Callable[[Event], None]


class Hooks:
    """The hooks of one router."""

    __slots__ = ("attached",)

    def __init__(self, hooks: tuple[Hook, ...] = ()) -> None:
        self.attached: tuple[Hook, ...] = hooks
        """The hooks subscribed now (read it; change it with :meth:`add`)."""

    def __bool__(self) -> bool:
        return bool(self.attached)

    def add(self, hook: Hook) -> Callable[[], None]:
        """Subscribe ``hook``; returns a function that unsubscribes it."""
        self.attached = (*self.attached, hook)

        def remove() -> None:
            self.attached = tuple(h for h in self.attached if h is not hook)

        return remove

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every hook; a failing hook is logged and skipped."""
        for hook in self.attached:
            try:
                hook(event)
            except Exception:
                logger.exception("switchyard hook %r failed on %s", hook, event.name)
