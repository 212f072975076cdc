"""Targets closed for a while: by a Retry-After on a retryable answer, or an "unknown model" answer.

Two rows of the failure table close one target, (gateway, gateway model), rather
than a whole account:

- a retryable status other than 429 that carries ``Retry-After`` (OneAI's 503
  "model overloaded"): the target is not asked again before then, as a 429 closes
  its account; a request that reaches it waits (``Closure.wait``), like any
  deferral, inside its deadline;
- a gateway's "unknown model" answer (:class:`~providers.ModelUnavailable`):
  the shipped snapshot is stale (OneLLM has no listing to refresh it), so the
  offer is left out of plans (``Closure.exclude``) for ``unavailable_for``
  seconds, and other gateways serving the model are tried.

A pure state machine: it takes ``now``. It holds at most one entry per target,
and drops entries that have expired whenever it records a new one, so its size
is bounded by the number of targets that are closed at once.
"""

from __future__ import annotations

import attrs

__all__ = ["Closure", "Closures"]


@attrs.frozen
class Closure:
    """One target closed until ``until`` (router clock), because of ``reason``.

    ``exclude``: leave the target out of plans (it said it does not serve the
    model); otherwise a request waits for it like a deferral.
    """

    until: float
    reason: str
    exclude: bool


class Closures:
    """The closed targets of one router, by (gateway, gateway model)."""

    __slots__ = ("_closed",)

    def __init__(self) -> None:
        self._closed: dict[tuple[str, str], Closure] = {}

    def __len__(self) -> int:
        return len(self._closed)

    def close(self, target: tuple[str, str], until: float, reason: str, *, exclude: bool, now: float) -> None:
        """Close ``target`` until ``until`` (a later closure of the same target wins)."""
        if self._closed:
            self._closed = {k: c for k, c in self._closed.items() if c.until > now}
        current = self._closed.get(target)
        if current is None or until > current.until or (exclude and not current.exclude):
            self._closed[target] = Closure(until, reason, exclude)

    def get(self, target: tuple[str, str], now: float) -> Closure | None:
        """The closure in force for ``target`` now, or None."""
        if not self._closed:
            return None
        closure = self._closed.get(target)
        if closure is None or closure.until <= now:
            return None
        return closure
