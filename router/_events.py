"""Instrumentation: frozen events with dotted names, delivered to hooks.

Names (a tested contract):

- ``request.started``: a request was validated and planned (``detail``: the id asked for).
- ``attempt.started``: an attempt at one target begins (``attempt`` counts from 1).
- ``attempt.finished``: it ended; ``outcome`` is ``ok`` or the error class.
- ``failover``: moving to another target of the same model (``detail``: from where).
- ``fallback``: moving to a fallback model (``detail``: from which model).
- ``retry``: trying a target that failed again, after ``latency`` seconds of backoff.
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
- ``request.finished``: the request ended; ``outcome`` is ``ok`` or the error class.

A hook is any callable taking an :class:`Event`. It runs inline, so keep it cheap;
an exception in a hook is logged and never breaks the request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Final

import attrs

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


Hook = Callable[[Event], None]


class Hooks:
    """The hooks of one router."""

    __slots__ = ("_hooks",)

    def __init__(self, hooks: tuple[Hook, ...] = ()) -> None:
        self._hooks: tuple[Hook, ...] = hooks

    def __bool__(self) -> bool:
        return bool(self._hooks)

    def add(self, hook: Hook) -> Callable[[], None]:
        """Subscribe ``hook``; returns a function that unsubscribes it."""
        self._hooks = (*self._hooks, hook)

        def remove() -> None:
            self._hooks = tuple(h for h in self._hooks if h is not hook)

        return remove

    def emit(self, event: Event) -> None:
        """Deliver ``event`` to every hook; a failing hook is logged and skipped."""
        for hook in self._hooks:
            try:
                hook(event)
            except Exception:
                logger.exception("switchyard hook %r failed on %s", hook, event.name)
