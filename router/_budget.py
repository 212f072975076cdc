"""A retry budget shared by all requests of a router (Finagle's ``RetryBudget``).

Each request deposits ``ratio`` of a retry; every attempt after a request's first
(a failover to another target, or a retry of the same one) withdraws a whole
retry. Deposits and withdrawals count for ``ttl`` seconds, and ``min_per_second``
retries per second are always allowed. With ``ratio=0.5`` a total outage can add
at most half a request's worth of extra attempts per request (plus the floor),
where four gateways tried in turn would otherwise quadruple the traffic; the
breakers then take the dead gateways out of the candidates altogether.

The window is kept as bucketed counters, as Finagle's ``TokenRetryBudget`` keeps
it in a ``WindowedAdder``: a fixed ring of ``buckets`` slices of ``ttl / buckets``
seconds, each holding how many deposits and withdrawals fell in it, plus running
totals. A deposit or a check is O(1) (advancing the ring clears at most
``buckets`` slices), and the state is ``2 * buckets`` integers however many
requests pass. The price is granularity: an event leaves the window when its
slice does, so it counts for at least ``ttl - ttl / buckets`` and at most
``ttl`` seconds (with the default 10 slices of a 10 s ttl, between 9 and 10 s).
More slices make the edge sharper and cost a little more memory and a little
more work when the ring advances after a quiet spell.

A pure state machine: it takes ``now`` and never reads a clock. ``now`` is
expected not to go backwards; an earlier ``now`` counts in the current slice.
"""

from __future__ import annotations

import math

from ..providers import ConfigError

__all__ = ["RetryBudget"]


class RetryBudget:
    """How many extra attempts the router may make, across requests.

    Args:
        ratio: retries earned per request (0.5: up to one extra attempt per two requests).
        min_per_second: retries always allowed per second, however few requests there are.
        ttl: seconds a deposit or a withdrawal counts.
        buckets: slices of the ttl window the counts are kept in (see the module docstring).

    Raises:
        ConfigError: (a ``ValueError``) on a negative ratio or floor, a non-positive ttl, or
            fewer than one bucket.
    """

    __slots__ = (
        "_deposited",
        "_deposits",
        "_n",
        "_slot",
        "_slots_per_second",
        "_withdrawals",
        "_withdrawn",
        "min_per_second",
        "ratio",
        "ttl",
    )

    def __init__(
        self, ratio: float = 0.5, *, min_per_second: float = 10.0, ttl: float = 10.0, buckets: int = 10
    ) -> None:
        if ratio < 0 or min_per_second < 0 or ttl <= 0:
            raise ConfigError("ratio and min_per_second must not be negative, ttl must be positive")
        if isinstance(buckets, bool) or not isinstance(buckets, int) or buckets < 1:
            raise ConfigError(f"buckets must be a whole number of at least 1, not {buckets!r}")
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.ttl = ttl
        self._n = buckets
        self._slots_per_second = buckets / ttl
        self._deposits = [0] * buckets
        self._withdrawals = [0] * buckets
        self._deposited = 0
        self._withdrawn = 0
        self._slot: int | None = None  # the absolute slice number of ``now`` last seen

    def _advance(self, now: float) -> int:
        """Move the ring to ``now``'s slice, clearing the slices that left the window; its index."""
        slot = math.floor(now * self._slots_per_second)
        current = self._slot
        n = self._n
        if current is None or slot - current >= n:
            if self._deposited or self._withdrawn:
                self._deposits = [0] * n
                self._withdrawals = [0] * n
                self._deposited = self._withdrawn = 0
            self._slot = slot
        elif slot > current:
            deposits, withdrawals = self._deposits, self._withdrawals
            for s in range(current + 1, slot + 1):
                i = s % n
                self._deposited -= deposits[i]
                self._withdrawn -= withdrawals[i]
                deposits[i] = withdrawals[i] = 0
            self._slot = slot
        else:
            slot = current  # same slice, or ``now`` went backwards: count it in the current one
        return slot % n

    def _available(self) -> float:
        return self.min_per_second * self.ttl + self.ratio * self._deposited - self._withdrawn

    def balance(self, now: float) -> float:
        """Retries available now."""
        self._advance(now)
        return self._available()

    def deposit(self, now: float) -> None:
        """A request started."""
        self._deposits[self._advance(now)] += 1
        self._deposited += 1

    def try_withdraw(self, now: float) -> bool:
        """Take one retry if one is available; False when the budget is spent."""
        i = self._advance(now)
        if self._available() < 1:
            return False
        self._withdrawals[i] += 1
        self._withdrawn += 1
        return True

    def _size(self) -> int:
        """How many counters the budget holds (constant: ``2 * buckets``)."""
        return len(self._deposits) + len(self._withdrawals)
