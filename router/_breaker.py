"""A circuit breaker as a pure state machine (after resilience4j and Polly).

States and transitions::

    CLOSED --(failure ratio >= threshold over the window, with >= min_calls;
              or consecutive failures >= N; or force_open)--> OPEN
    OPEN   --(the break has passed; checked when asked)------> HALF_OPEN
    HALF_OPEN --(a probe succeeds)---------------------------> CLOSED
    HALF_OPEN --(a probe fails)------------------------------> OPEN (longer break)

The window slides in time: one-second buckets with running totals, so a call is
O(1). How long a break lasts depends on what a failed probe would cost a user
request. When the failures that tripped it were fast (a refused connection, a
5xx: under ``slow_failure`` seconds), every break is ``base_break`` (jittered by
+/- ``jitter``): a probe that fails costs little, so a recovered gateway is back
within one short break whatever the outage's length. When they were slow (a
timeout), the break grows with each slow trip in a row (``base * multiplier**
(n-1)``, capped at ``max_break``): a failed probe there holds a request for the
whole timeout. The count starts over once the breaker closes.

In HALF_OPEN at most ``probes`` calls are let through at once, however many
callers ask. Every :class:`Permission` from :meth:`CircuitBreaker.acquire`
ends in exactly one :meth:`~CircuitBreaker.success`, :meth:`~CircuitBreaker.failure`
or :meth:`~CircuitBreaker.release` (for an outcome that says nothing about health,
such as a 400 or a cancellation). A permission remembers whether it was a probe and
in which period (epoch) it was granted, so a call granted while closed that ends
after the breaker tripped is never taken for a probe, and a probe of an earlier
half-open period decides nothing now.

Nothing here reads a clock, sleeps or does I/O: every method takes ``now``, and
state changes come back as :class:`Transition` values for the caller to report.
"""

from __future__ import annotations

import enum
import random
from collections import deque
from typing import Any

import attrs

from ..providers import ConfigError

__all__ = ["BreakerConfig", "BreakerState", "CircuitBreaker", "Permission", "Tally", "Transition"]


class BreakerState(enum.StrEnum):
    """Where a breaker is."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ConfigError(f"BreakerConfig.{attribute.name} must be positive, not {value!r}")


@attrs.frozen
class BreakerConfig:
    """How a breaker decides.

    Args:
        window: seconds of history the failure ratio looks at.
        failure_ratio: the share of failed calls in the window that opens it.
        min_calls: calls the window must hold before the ratio counts.
        consecutive_failures: failures in a row that open it whatever the ratio.
        base_break: the first break, in seconds.
        break_multiplier: each trip in a row multiplies the break by this.
        max_break: the longest break.
        jitter: a break is jittered by up to this fraction either way.
        probes: calls let through at once while half-open.
        slow_call: a successful call slower than this many seconds counts as a
            failure (None: never).
        slow_failure: a failure that took at least this many seconds is slow: trips
            on slow failures grow the break; trips on fast ones keep ``base_break``.
        account_break: the break when the account itself is refused (401/402/403).
    """

    window: float = attrs.field(default=30.0, validator=_positive)
    failure_ratio: float = attrs.field(default=0.5, validator=_positive)
    min_calls: int = attrs.field(default=20, validator=_positive)
    consecutive_failures: int = attrs.field(default=5, validator=_positive)
    base_break: float = attrs.field(default=5.0, validator=_positive)
    break_multiplier: float = attrs.field(default=2.0, validator=_positive)
    max_break: float = attrs.field(default=120.0, validator=_positive)
    jitter: float = 0.2
    probes: int = attrs.field(default=1, validator=_positive)
    slow_call: float | None = None
    slow_failure: float = attrs.field(default=1.0, validator=_positive)
    account_break: float = attrs.field(default=300.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.jitter < 1:
            raise ConfigError(f"BreakerConfig.jitter must be in [0, 1), not {self.jitter!r}")
        if self.failure_ratio > 1:
            raise ConfigError(f"BreakerConfig.failure_ratio must be at most 1, not {self.failure_ratio!r}")


@attrs.frozen
class Transition:
    """A state change: from, to, and (for OPEN) until when."""

    before: BreakerState
    after: BreakerState
    until: float | None = None
    reason: str = ""


class Permission:
    """Leave to make one call: whether it is a half-open probe, and the period it was granted in."""

    __slots__ = ("epoch", "probe")

    def __init__(self, probe: bool, epoch: int) -> None:
        self.probe = probe
        self.epoch = epoch


class Tally:
    """How many of a store's breakers are not closed (kept by the breakers as they move), so a
    plan can tell with one read that every breaker is closed."""

    __slots__ = ("not_closed",)

    def __init__(self) -> None:
        self.not_closed = 0


class CircuitBreaker:
    """One breaker's state. See the module docstring for the rules.

    Args:
        config: the thresholds and breaks.
        rng: for break jitter (seed it in tests).
        tally: counts this breaker while it is not closed (its store's).
    """

    __slots__ = (
        "_buckets",
        "_calls",
        "_closed_permission",
        "_consecutive",
        "_epoch",
        "_failures",
        "_probes",
        "_rng",
        "_tally",
        "_trips",
        "config",
        "open_until",
        "state",
    )

    def __init__(
        self,
        config: BreakerConfig | None = None,
        rng: random.Random | None = None,
        tally: Tally | None = None,
    ) -> None:
        self.config = config if config is not None else BreakerConfig()
        self._rng = rng if rng is not None else random.Random()
        self._tally = tally if tally is not None else Tally()
        self.state = BreakerState.CLOSED
        self.open_until = 0.0
        self._buckets: deque[list[int]] = deque()  # [second, calls, failures]
        self._calls = 0
        self._failures = 0
        self._consecutive = 0
        self._trips = 0
        self._probes = 0
        self._epoch = 0
        self._closed_permission = Permission(False, 0)

    # -- reading ---------------------------------------------------------------------------

    def would_allow(self, now: float) -> bool:
        """Whether :meth:`acquire` would grant a call now (changes nothing)."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now >= self.open_until
        return self._probes < self.config.probes

    @property
    def probes_in_flight(self) -> int:
        """Half-open probes granted and not yet ended."""
        return self._probes

    def window_counts(self, now: float) -> tuple[int, int]:
        """(calls, failures) in the window as of ``now``."""
        self._expire(now)
        return self._calls, self._failures

    # -- the state machine -----------------------------------------------------------------

    def acquire(self, now: float) -> tuple[Permission | None, Transition | None]:
        """Ask to make one call: (a permission or None, the transition asking caused, if any).

        Asking an OPEN breaker whose break has passed moves it to HALF_OPEN.
        """
        transition = None
        if self.state is BreakerState.CLOSED:
            return self._closed_permission, None
        if self.state is BreakerState.OPEN:
            if now < self.open_until:
                return None, None
            transition = self._move(BreakerState.HALF_OPEN, "the break has passed")
            self._probes = 0
        if self._probes >= self.config.probes:
            return None, transition
        self._probes += 1
        return Permission(True, self._epoch), transition

    def _current_probe(self, permission: Permission) -> bool:
        """Whether ``permission`` is a probe of the half-open period now."""
        return permission.probe and permission.epoch == self._epoch and self.state is BreakerState.HALF_OPEN

    def success(self, permission: Permission, now: float, latency: float = 0.0) -> Transition | None:
        """A permitted call succeeded (a slow one may count as a failure)."""
        slow = self.config.slow_call
        if slow is not None and latency > slow:
            return self.failure(
                permission, now, f"a call took {latency:.3g}s, over the slow-call limit {slow:g}s", latency
            )
        if self.state is BreakerState.CLOSED and not permission.probe:  # the common case
            self._record(now, failed=False)
            self._consecutive = 0
            return None
        if self._current_probe(permission):
            self._probes -= 1
            self._reset()
            return self._move(BreakerState.CLOSED, "a probe succeeded")
        if self.state is BreakerState.CLOSED and not permission.probe:
            self._record(now, failed=False)
            self._consecutive = 0
        # Otherwise a call from an earlier period ended late: it decides nothing now.
        return None

    def failure(
        self, permission: Permission, now: float, reason: str = "a call failed", latency: float = 0.0
    ) -> Transition | None:
        """A permitted call failed in a way that counts against health, after ``latency`` seconds."""
        slow = latency >= self.config.slow_failure
        if self._current_probe(permission):
            self._probes -= 1
            return self._trip(now, f"a probe failed: {reason}", slow)
        if self.state is not BreakerState.CLOSED or permission.probe:
            return None  # a call from an earlier period, ending late: already accounted for
        self._record(now, failed=True)
        self._consecutive += 1
        if self._consecutive >= self.config.consecutive_failures:
            return self._trip(now, f"{self._consecutive} failures in a row: {reason}", slow)
        calls, failures = self._calls, self._failures
        if calls >= self.config.min_calls and failures / calls >= self.config.failure_ratio:
            return self._trip(
                now, f"{failures} of {calls} calls failed in {self.config.window:g}s: {reason}", slow
            )
        return None

    def release(self, permission: Permission, now: float) -> None:
        """A permitted call ended with an outcome that says nothing about health (400, 429, cancelled)."""
        if self._current_probe(permission):
            self._probes -= 1

    def force_open(self, now: float, duration: float, reason: str) -> Transition | None:
        """Open for ``duration`` seconds whatever the counts (a refused account)."""
        until = now + duration
        if self.state is BreakerState.OPEN and self.open_until >= until:
            return None
        self.open_until = until
        self._probes = 0
        return self._move(BreakerState.OPEN, reason, until)

    def _move(self, after: BreakerState, reason: str, until: float | None = None) -> Transition:
        """Change state, starting a new period (epoch)."""
        before = self.state
        transition = Transition(before, after, until=until, reason=reason)
        self.state = after
        if (before is BreakerState.CLOSED) is not (after is BreakerState.CLOSED):
            self._tally.not_closed += 1 if before is BreakerState.CLOSED else -1
        self._epoch += 1
        if after is BreakerState.CLOSED:
            self._closed_permission = Permission(False, self._epoch)
        return transition

    # -- internals -------------------------------------------------------------------------

    def _trip(self, now: float, reason: str, slow: bool) -> Transition:
        config = self.config
        duration = config.base_break
        if slow:
            self._trips += 1  # slow trips in a row
            duration = min(config.max_break, duration * config.break_multiplier ** (self._trips - 1))
        if config.jitter:
            duration *= 1.0 + self._rng.uniform(-config.jitter, config.jitter)
        self.open_until = now + duration
        self._probes = 0
        return self._move(BreakerState.OPEN, reason, self.open_until)

    def _reset(self) -> None:
        self._buckets.clear()
        self._calls = self._failures = self._consecutive = self._trips = 0

    def _expire(self, now: float) -> None:
        horizon = int(now) - int(self.config.window)
        buckets = self._buckets
        while buckets and buckets[0][0] <= horizon:
            _, calls, failures = buckets.popleft()
            self._calls -= calls
            self._failures -= failures

    def _record(self, now: float, *, failed: bool) -> None:
        second = int(now)
        buckets = self._buckets
        if buckets and buckets[-1][0] == second:
            bucket = buckets[-1]
        else:
            self._expire(now)  # only when a new second starts: older buckets can only age then
            bucket = [second, 0, 0]
            buckets.append(bucket)
        bucket[1] += 1
        self._calls += 1
        if failed:
            bucket[2] += 1
            self._failures += 1
