"""A retry budget shared by all requests of a router (Finagle's ``RetryBudget``).

Each request deposits ``ratio`` of a retry; every attempt after a request's first
(a failover to another target, or a retry of the same one) withdraws a whole
retry. Deposits and withdrawals count for ``ttl`` seconds, and ``min_per_second``
retries per second are always allowed. With ``ratio=0.5`` a total outage can add
at most half a request's worth of extra attempts per request (plus the floor),
where four gateways tried in turn would otherwise quadruple the traffic; the
breakers then take the dead gateways out of the candidates altogether.

A pure state machine: it takes ``now`` and never reads a clock.
"""

from __future__ import annotations

from collections import deque

__all__ = ["RetryBudget"]


class RetryBudget:
    """How many extra attempts the router may make, across requests.

    Args:
        ratio: retries earned per request (0.5: up to one extra attempt per two requests).
        min_per_second: retries always allowed per second, however few requests there are.
        ttl: seconds a deposit or a withdrawal counts.

    Raises:
        ValueError: on a negative ratio or floor, or a non-positive ttl.
    """

    __slots__ = ("_deposits", "_withdrawals", "min_per_second", "ratio", "ttl")

    def __init__(self, ratio: float = 0.5, *, min_per_second: float = 10.0, ttl: float = 10.0) -> None:
        if ratio < 0 or min_per_second < 0 or ttl <= 0:
            raise ValueError("ratio and min_per_second must not be negative, ttl must be positive")
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.ttl = ttl
        self._deposits: deque[float] = deque()
        self._withdrawals: deque[float] = deque()

    def _expire(self, now: float) -> None:
        horizon = now - self.ttl
        while self._deposits and self._deposits[0] <= horizon:
            self._deposits.popleft()
        while self._withdrawals and self._withdrawals[0] <= horizon:
            self._withdrawals.popleft()

    def balance(self, now: float) -> float:
        """Retries available now."""
        self._expire(now)
        return self.min_per_second * self.ttl + self.ratio * len(self._deposits) - len(self._withdrawals)

    def deposit(self, now: float) -> None:
        """A request started."""
        self._deposits.append(now)

    def try_withdraw(self, now: float) -> bool:
        """Take one retry if one is available; False when the budget is spent."""
        if self.balance(now) < 1:
            return False
        self._withdrawals.append(now)
        return True
