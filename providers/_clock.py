"""The clock seam: everything that measures time takes a :class:`Clock`.

Breakers, buckets, latency statistics and catalog caches read ``clock.now()``
(monotonic seconds) and never the wall clock, so tests move time with
:class:`FakeClock` instead of sleeping (the approach of trio's ``MockClock``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol, runtime_checkable

from ._errors import ConfigError

__all__ = ["Clock", "FakeClock", "LoopClock", "MonotonicClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time in seconds."""

    def now(self) -> float:
        """Return the current monotonic time in seconds."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic`."""

    __slots__ = ()

    def now(self) -> float:
        """Return :func:`time.monotonic`."""
        return time.monotonic()

    def __repr__(self) -> str:
        return "MonotonicClock()"


class LoopClock:
    """The running event loop's clock (``loop.time()``).

    In production that is :func:`time.monotonic`; under a fake-time loop (as the
    tests run) it is the fake time, so latencies, backoffs and deadlines measured
    with it agree with the loop's own sleeps and timeouts. Outside a running loop
    it falls back to :func:`time.monotonic`.
    """

    __slots__ = ()

    def now(self) -> float:
        """Return the running loop's time."""
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    def __repr__(self) -> str:
        return "LoopClock()"


class FakeClock:
    """A clock that only moves when told to; for tests and simulations.

    Args:
        start: the initial reading, in seconds.
    """

    __slots__ = ("_now",)

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)

    def now(self) -> float:
        """Return the current fake time."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` (which must not be negative).

        Raises:
            ValueError: when ``seconds`` is negative.
        """
        if seconds < 0:
            raise ConfigError(f"a clock cannot go backwards (advance({seconds!r}))")
        self._now += seconds

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
