"""An account's limits as token buckets: requests/min, tokens/min, and requests in flight.

Requests per minute and tokens per minute are token buckets (capacity = the
per-minute limit, refilled continuously at limit/60 per second). A request
reserves one request and its estimated tokens (prompt estimate + ``max_tokens``)
and a concurrency slot before it is sent; when it ends, the reservation is
settled: the tokens are corrected to the real usage (refunded when it used less,
taken when it used more) and the slot is freed. Settling is idempotent, so every
exit path (success, error, cancellation, end of stream) may call it.

The router also caps each gateway's requests in flight at its connection pool's
size (``connections``): a request over it would only queue inside the HTTP client
for a connection, its timeouts running, and a timeout there would be blamed on a
gateway that never saw the request. Over the cap, the gateway is saturated like
any account, so the request goes to the next candidate or waits for a slot.

Slow start (after Envoy's and Finagle's ramps): an account with no recent success
(new, or one of its gateway's breakers just opened) admits only ``slow_start``
requests in flight; each success widens that by one, so the window doubles with
every round of answers, until it reaches the account's cap (64 when it has none),
where slow start ends. A dead gateway on a fresh router so costs a few requests,
not a connection pool's worth, and a recovered one gets a ramp, not a cliff.

A 429's Retry-After closes the account until then. ``x-ratelimit-remaining-*``
headers, where a gateway sends them, lower the buckets to what the gateway says
is left (never raise them: the client stays the more careful of the two).

A pure state machine: every method takes ``now``; nothing sleeps or reads a clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import attrs

from ..providers import Tier

__all__ = ["RAMP_CEILING", "AccountLimits", "AccountSnapshot", "Deferral", "Reservation", "TokenBucket"]

RAMP_CEILING = 64
"""Where slow start ends for an account with no cap of its own (aiohttp's default pool size)."""


class TokenBucket:
    """Capacity ``per_minute``, refilled at ``per_minute / 60`` per second; may go below zero."""

    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what has dripped in since the last look."""
        if now > self.updated:
            level = self.level + (now - self.updated) * self.rate
            self.level = level if level < self.capacity else self.capacity  # min() without its call
            self.updated = now

    def wait(self, amount: float, now: float) -> float:
        """Seconds until ``amount`` is there (0 if it is; inf if it never fits)."""
        self.refill(now)
        if amount > self.capacity:
            return math.inf
        shortfall = amount - self.level
        # A float-sized shortfall is none: a wait of 1e-15 s would vanish when added to
        # a clock reading and leave a waiter spinning on a time that never comes.
        return 0.0 if shortfall <= 1e-9 else shortfall / self.rate

    def take(self, amount: float, now: float) -> None:
        """Take ``amount`` (the level may go negative)."""
        self.refill(now)
        self.level -= amount

    def give(self, amount: float, now: float) -> None:
        """Give ``amount`` back, up to capacity."""
        self.refill(now)
        level = self.level + amount
        self.level = level if level < self.capacity else self.capacity

    def lower_to(self, level: float, now: float) -> None:
        """Lower the level to ``level`` if it is above it."""
        self.refill(now)
        if level < self.level:
            self.level = level


@attrs.frozen
class Deferral:
    """Not now: ``limit`` is exhausted until ``until`` (None: until a request in flight ends)."""

    gateway: str
    limit: str
    until: float | None

    def describe(self, now: float) -> str:
        """The limit and when it frees, in words."""
        if self.until is None:
            return f"{self.gateway} {self.limit}: frees when a request in flight ends"
        if math.isinf(self.until):
            return f"{self.gateway} {self.limit}: the request alone is more than the limit"
        return f"{self.gateway} {self.limit}: frees in {max(0.0, self.until - now):.1f}s"


@attrs.define
class Reservation:
    """What one admitted request holds until it is settled."""

    gateway: str
    tokens: int
    settled: bool = False


@attrs.frozen
class AccountSnapshot:
    """An account's state, for tests and dashboards."""

    in_flight: int
    reserved_tokens: int
    requests_left: float | None
    tokens_left: float | None
    closed_until: float
    slow_start: int | None = None


class AccountLimits:
    """One gateway account's buckets, slots and Retry-After closure."""

    __slots__ = (
        "_cap",
        "_cap_name",
        "_ramp_start",
        "closed_until",
        "concurrency",
        "connections",
        "gateway",
        "in_flight",
        "ramp",
        "requests",
        "reserved_tokens",
        "tokens",
    )

    def __init__(
        self,
        gateway: str,
        tier: Tier | None,
        now: float,
        *,
        connections: int | None = None,
        slow_start: int | None = None,
    ) -> None:
        self.gateway = gateway
        self.requests = None if tier is None or tier.rpm is None else TokenBucket(tier.rpm, now)
        self.tokens = None if tier is None or tier.tpm is None else TokenBucket(tier.tpm, now)
        self.concurrency = None if tier is None else tier.concurrency
        self.connections = connections
        # The tighter of the tier's concurrency and the connection pool, named for deferrals.
        caps = [
            (c, name) for c, name in ((self.concurrency, "concurrency"), (connections, "connections")) if c
        ]
        self._cap: int | None = min(caps)[0] if caps else None
        self._cap_name = min(caps)[1] if caps else ""
        self._ramp_start = slow_start
        self.ramp: int | None = None  # the slow-start window; None: not ramping
        self.restart()
        self.in_flight = 0
        self.reserved_tokens = 0
        self.closed_until = 0.0

    @property
    def unlimited(self) -> bool:
        """Nothing to check (no tier limits, no connection cap): only a 429 can close it."""
        return self.requests is None and self.tokens is None and self._cap is None and self.ramp is None

    def restart(self) -> None:
        """Start slow start over (the gateway failed): a small window that grows with successes."""
        start = self._ramp_start
        self.ramp = start if start is not None and start < (self._cap or RAMP_CEILING) else None

    def succeeded(self) -> None:
        """An answer came back: widen the slow-start window by one (ending it at the cap)."""
        if self.ramp is not None:
            self.ramp += 1
            if self.ramp >= (self._cap or RAMP_CEILING):
                self.ramp = None

    def check(self, tokens: int, now: float) -> Deferral | None:
        """Why a request of ``tokens`` cannot go now, or None when it can (changes nothing)."""
        if now < self.closed_until:
            return Deferral(self.gateway, "Retry-After", self.closed_until)
        if self.requests is not None or self.tokens is not None:
            requests_wait = 0.0 if self.requests is None else self.requests.wait(1, now)
            tokens_wait = 0.0 if self.tokens is None else self.tokens.wait(tokens, now)
            if requests_wait > 0 or tokens_wait > 0:  # the longer wait; at a tie, tokens/min
                if requests_wait > tokens_wait:
                    return Deferral(self.gateway, "requests/min", now + requests_wait)
                return Deferral(self.gateway, "tokens/min", now + tokens_wait)
        if self._cap is not None and self.in_flight >= self._cap:
            return Deferral(self.gateway, self._cap_name, None)
        if self.ramp is not None and self.in_flight >= self.ramp:
            return Deferral(self.gateway, "slow start", None)
        return None

    def reserve(self, tokens: int, now: float) -> Reservation | Deferral:
        """Take a request, ``tokens`` and a slot; or say what is exhausted and until when."""
        if now >= self.closed_until and self.unlimited:
            self.in_flight += 1
            self.reserved_tokens += tokens
            return Reservation(self.gateway, tokens)
        deferral = self.check(tokens, now)
        if deferral is not None:
            return deferral
        # check() refilled both buckets to ``now``: take without take()'s refill.
        if self.requests is not None:
            self.requests.level -= 1
        if self.tokens is not None:
            self.tokens.level -= tokens
        self.in_flight += 1
        self.reserved_tokens += tokens
        return Reservation(self.gateway, tokens)

    def settle(self, reservation: Reservation, used_tokens: int | None, now: float) -> None:
        """End a reservation: free its slot, correct its tokens to ``used_tokens`` (None: refund all)."""
        if reservation.settled:
            return
        reservation.settled = True
        self.in_flight -= 1
        self.reserved_tokens -= reservation.tokens
        if self.tokens is not None:
            used = 0 if used_tokens is None else used_tokens
            difference = reservation.tokens - used
            if difference > 0:
                self.tokens.give(difference, now)
            elif difference < 0:
                self.tokens.take(-difference, now)

    def close_until(self, until: float) -> None:
        """Send nothing before ``until`` (a 429's Retry-After)."""
        self.closed_until = max(self.closed_until, until)

    def correct(self, remaining: Mapping[str, float], now: float) -> None:
        """Lower the buckets to what a gateway says is left (``"requests"``, ``"tokens"``)."""
        for which, bucket in (("requests", self.requests), ("tokens", self.tokens)):
            value = remaining.get(which)
            if value is not None and bucket is not None:
                bucket.lower_to(value, now)

    def snapshot(self, now: float) -> AccountSnapshot:
        """The account's state now."""
        if self.requests is not None:
            self.requests.refill(now)
        if self.tokens is not None:
            self.tokens.refill(now)
        return AccountSnapshot(
            in_flight=self.in_flight,
            reserved_tokens=self.reserved_tokens,
            requests_left=None if self.requests is None else self.requests.level,
            tokens_left=None if self.tokens is None else self.tokens.level,
            closed_until=self.closed_until,
            slow_start=self.ramp,
        )
