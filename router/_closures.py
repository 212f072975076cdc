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

    __slots__ = ("entries",)

    def __init__(self) -> None:
        self.entries: dict[tuple[str, str], Closure] = {}
        """Target -> its closure (expired ones linger until the next close); empty: none closed."""

    def __len__(self) -> int:
        return len(self.entries)

    def close(self, target: tuple[str, str], until: float, reason: str, *, exclude: bool, now: float) -> None:
        """Close ``target`` until ``until`` (a later closure of the same target wins)."""
        if self.entries:
            self.entries = {k: c for k, c in self.entries.items() if c.until > now}
        current = self.entries.get(target)
        if current is None or until > current.until or (exclude and not current.exclude):
            self.entries[target] = Closure(until, reason, exclude)

    def get(self, target: tuple[str, str], now: float) -> Closure | None:
        """The closure in force for ``target`` now, or None."""
        if not self.entries:
            return None
        closure = self.entries.get(target)
        if closure is None or closure.until <= now:
            return None
        return closure
