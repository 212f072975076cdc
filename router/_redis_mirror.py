"""What a :class:`~._redis.RedisStore` last learned from Redis: its answers to the reads that never do I/O.

Every script answers with the state it left behind (``_redis_lua``), relative to
the server's clock; this module turns those answers into this process's loop
time and keeps them, one :class:`AccountMirror` per account and one
:class:`BreakerMirror` per breaker, for ``peek``, ``breaker`` and ``snapshot``.
They are "as last known": another process may have moved the shared state since.
It also turns a script's transition codes into :class:`Transition` values with
the reasons :class:`CircuitBreaker` gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..policies import AccountSnapshot, Deferral
from ..providers import Tier
from ._breaker import BreakerConfig, BreakerState, Transition

__all__ = ["AccountMirror", "BreakerMirror", "Mirrors", "Reply", "seconds", "transition"]

Reply = Sequence[bytes]
"""A script's answer: its fields (``b"-"`` for none)."""

_STATES = {b"c": BreakerState.CLOSED, b"o": BreakerState.OPEN, b"h": BreakerState.HALF_OPEN}


def seconds(value: bytes) -> float:
    """A time a script gave relative to its now ("inf": never)."""
    return float(value)


class BreakerMirror:
    """A breaker as this process last learned it (a ``BreakerView``)."""

    __slots__ = (
        "_calls",
        "_counted",
        "_failures",
        "epoch",
        "open_until",
        "probes",
        "probes_in_flight",
        "seen",
        "state",
        "window",
    )

    def __init__(self, probes: int, window: float) -> None:
        self.probes = probes
        self.window = window
        self.state = BreakerState.CLOSED
        self.open_until = 0.0
        self.probes_in_flight = 0
        self.epoch = 0
        self.seen = -math.inf  # loop time of the last answer that told its state
        self._calls = self._failures = 0
        self._counted = -math.inf

    def window_counts(self, now: float) -> tuple[int, int]:
        """(calls, failures) in the fleet's window as the last record told them (none once a
        window's length has passed since)."""
        if now - self._counted > self.window:
            return 0, 0
        return self._calls, self._failures

    def count(self, calls: bytes, failures: bytes, now: float) -> None:
        """Take a record's window counts."""
        self._calls, self._failures, self._counted = int(calls), int(failures), now

    def would_allow(self, now: float) -> bool:
        """Whether Redis would grant a call now, as last known."""
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.OPEN:
            return now >= self.open_until
        return self.probes_in_flight < self.probes

    def learn(self, fields: Reply, now: float) -> bool:
        """Take a script's four fields (state, until, probes, epoch); True when it has just opened."""
        state = _STATES.get(fields[0], BreakerState.CLOSED)
        epoch = int(fields[3])  # answers come in the order the scripts ran: the last is the newest
        opened = state is BreakerState.OPEN and (self.state is not BreakerState.OPEN or epoch != self.epoch)
        self.state = state
        self.open_until = now + seconds(fields[1])
        self.probes_in_flight = int(fields[2])
        self.epoch = epoch
        self.seen = now
        return opened


def _wait(tat: float, amount: float, limit: int, now: float) -> float:
    """GCRA: seconds until ``amount`` fits a limit of ``limit`` a minute (see ``_redis_lua``)."""
    if amount > limit:
        return math.inf
    wait = max(tat, now) + amount * 60.0 / limit - (now + 60.0)
    return 0.0 if wait <= 1e-9 else wait


def _level(tat: float, limit: int, now: float) -> float:
    return limit - max(0.0, tat - now) * limit / 60.0


class AccountMirror:
    """An account's shared state as this process last learned it."""

    __slots__ = ("closed_until", "earliest", "requests_at", "seen", "slots", "tokens_at")

    def __init__(self) -> None:
        self.closed_until = 0.0
        self.requests_at = -math.inf  # GCRA theoretical arrival times, in loop time
        self.tokens_at = -math.inf
        self.slots = 0  # leases held across the fleet
        self.earliest = math.inf  # the soonest lease to expire
        self.seen = -math.inf

    def learn(self, fields: Reply, now: float) -> None:
        """Take a script's five account fields (closed, rt, tt, slots, earliest lease)."""
        self.closed_until = max(0.0, now + seconds(fields[0]))
        self.requests_at = now + seconds(fields[1])
        self.tokens_at = now + seconds(fields[2])
        self.slots = int(fields[3])
        self.earliest = now + seconds(fields[4])
        self.seen = now

    def check(self, gateway: str, tier: Tier | None, tokens: int, now: float, poll: float) -> Deferral | None:
        """Why the account could not take ``tokens`` now, as last known."""
        if now < self.closed_until:
            return Deferral(gateway, "Retry-After", self.closed_until)
        if tier is None:
            return None
        waits: list[tuple[float, str]] = []
        if tier.rpm is not None:
            waits.append((_wait(self.requests_at, 1, tier.rpm, now), "requests/min"))
        if tier.tpm is not None:
            waits.append((_wait(self.tokens_at, tokens, tier.tpm, now), "tokens/min"))
        blocked = [w for w in waits if w[0] > 0]
        if blocked:
            wait, limit = max(blocked)
            return Deferral(gateway, limit, now + wait)
        # Other processes free slots without a word to this one: a full account, as last known,
        # is believed for one poll interval, then asked again.
        if tier.concurrency is not None and self.slots >= tier.concurrency and now < self.seen + poll:
            return Deferral(gateway, "concurrency", min(self.earliest, self.seen + poll))
        return None

    def snapshot(self, tier: Tier | None, in_flight: int, reserved: int, now: float) -> AccountSnapshot:
        """The account as last known: the fleet's slots where it has a concurrency limit (else this
        process's requests in flight), this process's reserved tokens, the buckets' levels."""
        rpm = None if tier is None else tier.rpm
        tpm = None if tier is None else tier.tpm
        fleet = tier is not None and tier.concurrency is not None
        return AccountSnapshot(
            in_flight=self.slots if fleet else in_flight,
            reserved_tokens=reserved,
            requests_left=None if rpm is None else _level(self.requests_at, rpm, now),
            tokens_left=None if tpm is None else _level(self.tokens_at, tpm, now),
            closed_until=self.closed_until,
        )


_AFTER = {
    b"half": (BreakerState.HALF_OPEN, "the break has passed"),
    b"probe_ok": (BreakerState.CLOSED, "a probe succeeded"),
    b"probe_failed": (BreakerState.OPEN, "a probe failed: {reason}"),
    b"consecutive": (BreakerState.OPEN, "{n1} failures in a row: {reason}"),
    b"ratio": (BreakerState.OPEN, "{n1} of {n2} calls failed in {window:g}s: {reason}"),
    b"refused": (BreakerState.OPEN, "the account was refused: {reason}"),
}


def transition(
    code: bytes, before: bytes, until: float, n1: int, n2: int, reason: str, config: BreakerConfig
) -> Transition | None:
    """The :class:`Transition` a script reported (``code`` ``-``: none), worded as the breaker words it."""
    if code not in _AFTER:
        return None
    after, words = _AFTER[code]
    first = _STATES.get(before, BreakerState.CLOSED)
    if code == b"half":
        first = BreakerState.OPEN
    text = words.format(reason=reason, n1=n1, n2=n2, window=config.window)
    return Transition(first, after, until=until if after is BreakerState.OPEN else None, reason=text)


class Mirrors:
    """Every account and breaker this process has heard of, as last known.

    Args:
        opened: called with a gateway when one of its breakers is learned to have opened.
    """

    __slots__ = ("_opened", "accounts", "breakers")

    def __init__(self, opened: Callable[[str], None]) -> None:
        self._opened = opened
        self.accounts: dict[str, AccountMirror] = {}
        self.breakers: dict[tuple[str, str | None], BreakerMirror] = {}

    def account(self, gateway: str) -> AccountMirror:
        """The account of ``gateway``."""
        mirror = self.accounts.get(gateway)
        if mirror is None:
            mirror = self.accounts[gateway] = AccountMirror()
        return mirror

    def breaker(self, gateway: str, gateway_model: str | None, config: BreakerConfig) -> BreakerMirror:
        """A breaker (``gateway_model`` None: the gateway's)."""
        view = self.breakers.get((gateway, gateway_model))
        if view is None:
            view = self.breakers[(gateway, gateway_model)] = BreakerMirror(config.probes, config.window)
        view.probes, view.window = config.probes, config.window
        return view

    def pair(
        self, gateway: str, gateway_model: str, config: BreakerConfig
    ) -> tuple[BreakerMirror, BreakerMirror]:
        """The gateway's breaker and the model's there."""
        return self.breaker(gateway, None, config), self.breaker(gateway, gateway_model, config)

    def learn(self, gateway: str, model: str, config: BreakerConfig, g: Reply, m: Reply, at: float) -> None:
        """Take both breakers' fields from a script's answer."""
        opened = self.breaker(gateway, None, config).learn(g, at)
        opened = self.breaker(gateway, model, config).learn(m, at) or opened
        if opened:
            self._opened(gateway)
