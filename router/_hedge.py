"""Hedged requests: when an attempt is slow to answer, the same request goes to the next candidate
too, and the first complete answer wins (after "The Tail at Scale", Dean and Barroso, 2013).

``Router(hedge=Hedge(...))`` turns it on. An attempt that has not answered after
``after`` seconds (for a stream: has not produced its first chunk) gets a twin at
the next candidate of the plan; with ``after=None`` the delay is the first
candidate's ``quantile`` of its recent latencies (no hedge until it has
:data:`MIN_SAMPLES`). The loser is cancelled: its connection is closed, its
reservation and slot come back, and its breakers are not charged (a cancelled
hedge is no failure). A hedge is a retry: it draws on the retry budget, and on
``max_share`` (at most that fraction of requests hedged over a sliding
:data:`SHARE_WINDOW`, and always one per window, so a quiet service hedges too).
With ``max_cost_usd`` set, a request is hedged only when both attempts' expected
costs together fit under it. The reply's route lists both attempts; its cost is
the winner's. A stream is hedged only until its first chunk reaches the caller.

The two attempts run in an anyio task group; the winner cancels the group's scope.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

import attrs

from ..providers import ConfigError, Offer, Reply
from ._budget import RetryBudget

__all__ = ["MIN_SAMPLES", "SHARE_WINDOW", "Hedge", "Hedging", "race", "with_route"]

T = TypeVar("T")
C = TypeVar("C")  # a plan's candidate

MIN_SAMPLES: Final = 8
"""Latencies a target needs before ``after=None`` hedges it."""
SHARE_WINDOW: Final = 30.0
"""Seconds over which ``max_share`` counts requests and hedges."""
_KEPT: Final = 64  # latencies kept per target (the newest)


def _fraction(name: str, value: float, *, top: bool) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0 < value <= 1
        or (top and value == 1)
    ):
        raise ConfigError(f"Hedge {name} must be in (0, 1{')' if top else ']'}, not {value!r}")


@attrs.frozen
class Hedge:
    """When to send a request's twin to the next candidate.

    Args:
        after: seconds without an answer before the twin goes; None: the candidate's
            ``quantile`` of its recent latencies.
        quantile: which of a candidate's recent latencies counts as slow (``after=None``).
        max_share: the most requests hedged, as a fraction of all, over 30 s.

    Raises:
        ConfigError: on a non-positive ``after``, or a fraction outside its range.
    """

    after: float | None = None
    quantile: float = 0.95
    max_share: float = 0.1

    def __attrs_post_init__(self) -> None:
        after = self.after
        if after is not None and (
            isinstance(after, bool) or not isinstance(after, int | float) or not 0 < after < math.inf
        ):
            raise ConfigError(f"Hedge after must be a positive number of seconds or None, not {after!r}")
        _fraction("quantile", self.quantile, top=True)
        _fraction("max_share", self.max_share, top=False)


class Hedging:
    """One router's hedging: its settings, each target's recent latencies, and the share used."""

    __slots__ = ("_latencies", "_share", "config")

    def __init__(self, config: Hedge) -> None:
        self.config = config
        self._latencies: dict[tuple[str, str], deque[float]] = {}
        # One hedge per window is always allowed, so a quiet service hedges too.
        self._share = RetryBudget(config.max_share, min_per_second=1.0 / SHARE_WINDOW, ttl=SHARE_WINDOW)

    def started(self, now: float) -> None:
        """A request started (it earns ``max_share`` of a hedge)."""
        self._share.deposit(now)

    def observe(self, offer: Offer, seconds: float) -> None:
        """A successful attempt took ``seconds`` (to its first chunk, for a stream)."""
        key = (offer.gateway or "", offer.gateway_model)
        kept = self._latencies.get(key)
        if kept is None:
            kept = self._latencies[key] = deque(maxlen=_KEPT)
        kept.append(seconds)

    def delay(self, offer: Offer) -> float | None:
        """How long to wait for ``offer`` before hedging it; None: do not hedge it."""
        if self.config.after is not None:
            return self.config.after
        kept = self._latencies.get((offer.gateway or "", offer.gateway_model))
        if kept is None or len(kept) < MIN_SAMPLES:
            return None
        ordered = sorted(kept)
        return ordered[min(len(ordered) - 1, math.ceil(self.config.quantile * len(ordered)) - 1)]

    def allow(self, now: float) -> bool:
        """Take one hedge from the share, if ``max_share`` allows it now."""
        return self._share.try_withdraw(now)

    def __len__(self) -> int:
        return sum(len(kept) for kept in self._latencies.values())


async def race(
    attempt: Callable[[int, C], Awaitable[T]],
    first: tuple[int, C],
    twin: Callable[[], tuple[int, C] | None],
    delay: float,
    discard: Callable[[T], Awaitable[None]] | None,
) -> T:
    """The first answer of ``first``'s attempt and, if that has not answered within ``delay``,
    of a twin attempt at the candidate ``twin()`` picks (None: no twin after all).

    The loser is cancelled; an answer that comes after the winner's is discarded. When
    no attempt answers, the first attempt's exception is raised (the twin's failure is
    already in the request's trace).
    """
    import anyio  # only a hedged request needs it: a router without Hedge never loads anyio

    won: list[T] = []
    first_error: list[BaseException] = []
    first_done = anyio.Event()

    async def run(index: int, candidate: C, scope: anyio.CancelScope) -> None:
        try:
            value = await attempt(index, candidate)
        except Exception as exc:  # a typed failure or the loop's signal (deferred, skipped)
            if index == first[0]:
                first_error.append(exc)
            return
        finally:
            if index == first[0]:
                first_done.set()
        if won:
            if discard is not None:
                await discard(value)
            return
        won.append(value)
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(run, *first, group.cancel_scope)
        with anyio.move_on_after(delay):
            await first_done.wait()
        if not first_done.is_set():
            chosen = twin()
            if chosen is not None:
                group.start_soon(run, *chosen, group.cancel_scope)
    if won:
        return won[0]
    raise first_error[0]


def with_route(value: Any, attempts: tuple[Any, ...]) -> Any:
    """A plain reply's route, with the loser's attempt added (a stream's route is made at its end)."""
    if isinstance(value, Reply) and len(attempts) > len(value.route.attempts):
        return attrs.evolve(value, route=attrs.evolve(value.route, attempts=attempts))
    return value
