"""What every request of one router shares, built once: one frozen value, passed, never reached into.

The Router builds a :class:`Runtime` in its constructor; planning, the failover
loop, one attempt and streamed delivery read it and nothing of the Router. Its
fields are the router's collaborators (transport, adapters, health, admission,
budget...) and its settings; the collaborators keep their own state, the value
itself never changes.

Time is the event loop's (``loop.time()``): deadlines, waits and timeouts all
run on it, so a test fakes time for all of them at once with looptime. Reply
timestamps and HTTP-date ``Retry-After`` use ``wall``.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import Callable, Mapping

import attrs

from ..policies import Policy, RateLimitAware
from ..providers import ConfigError, Gateway, ProviderGraph, Timeouts, TokenEstimator, Transport
from ..providers.wire import Adapter
from ._admission import Admission
from ._backoff import Backoff
from ._budget import RetryBudget
from ._closures import Closures
from ._events import Hooks
from ._health import Health
from ._hedge import Hedging
from ._outliers import Outliers

__all__ = ["Capacity", "Runtime", "check_deadline", "check_settings"]


def check_settings(
    *,
    deadline: object,
    max_retry_after: object,
    unavailable_for: object,
    default_output_tokens: int,
    slow_start: object,
) -> None:
    """Refuse a Router's numeric settings that make no sense, before anything runs.

    Raises:
        ConfigError: naming the setting and the value.
    """
    for name, value in (("max_retry_after", max_retry_after), ("unavailable_for", unavailable_for)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
            raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
    check_deadline(deadline)
    if slow_start is not None and (
        isinstance(slow_start, bool) or not isinstance(slow_start, int) or slow_start < 1
    ):
        raise ConfigError(
            f"slow_start must be a positive whole number of requests or None, not {slow_start!r}"
        )
    if default_output_tokens <= 0:
        raise ConfigError("default_output_tokens must be positive")


def check_deadline(deadline: object) -> float:
    """``deadline`` as seconds (a router's, or one request's).

    Raises:
        ConfigError: unless it is a positive number (not a bool, not NaN).
    """
    if isinstance(deadline, bool) or not isinstance(deadline, (int, float)) or not deadline > 0:
        raise ConfigError(f"deadline must be a positive number of seconds, not {deadline!r}")
    return float(deadline)


class Capacity:
    """Wakes requests waiting for a slot when one frees (they race; the rest wait again)."""

    __slots__ = ("_freed",)

    def __init__(self) -> None:
        self._freed: asyncio.Event | None = None

    def freed(self) -> None:
        """A slot freed: wake every waiter."""
        event = self._freed
        if event is not None:
            self._freed = None
            event.set()

    def event(self) -> asyncio.Event:
        """The event the next slot to free will set."""
        if self._freed is None:
            self._freed = asyncio.Event()
        return self._freed


@attrs.frozen
class Runtime:
    """One router's shared parts and settings (see the module docstring)."""

    graph: ProviderGraph
    gateways: Mapping[str, Gateway]
    adapters: Mapping[str, Adapter]
    transport: Transport
    policy: Policy
    admission: Admission
    health: Health
    closures: Closures
    budget: RetryBudget
    backoff: Backoff
    rng: random.Random
    estimator: TokenEstimator
    hooks: Hooks
    timeouts: Timeouts
    capacity: Capacity
    wall: Callable[[], float]
    ids: itertools.count[int]
    fallbacks: Mapping[str, tuple[str, ...]]
    default_output: int
    max_retry_after: float
    unavailable_for: float
    learner: Policy | None  # told about attempts: the policy that learns, None when none does
    retry_same: int
    hedging: Hedging | None
    outliers: Outliers | None
    honours_timeouts: bool

    def attempt_timeouts(self, remaining: float) -> Timeouts:
        """The per-attempt limits, clipped to what is left of the deadline."""
        base = self.timeouts
        if remaining >= base.total:
            return base
        first_byte = None if base.first_byte is None else min(base.first_byte, remaining)
        return Timeouts(connect=min(base.connect, remaining), first_byte=first_byte, total=remaining)

    def retry_after(self, seconds: float | None) -> float | None:
        """A gateway's Retry-After, clamped to ``max_retry_after``."""
        return None if seconds is None else min(seconds, self.max_retry_after)


def learner_of(ranking: RateLimitAware) -> Policy | None:
    """The policy to tell about attempts: None when it learns nothing (no Outcome is made per
    attempt); for a plain RateLimitAware, whose ``started`` and ``observe`` only pass them on,
    its inner policy."""
    if not ranking.learns:
        return None
    return ranking.inner if type(ranking) is RateLimitAware else ranking
