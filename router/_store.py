"""Where admission and health keep their state: a store of atomic operations.

The router's two controllers decide (``_admission.py``: which account a request
reserves on, what a 429 closes; ``_health.py``: which breaker a failure counts
against, by the failure table); a store holds the state and applies one operation
at a time, atomically:

=====================  ===============================================================
``admit``              reserve on an account (requests, tokens, a slot) *and* take both
                       breakers' permission (a half-open breaker's probe), or neither
``settle``             end a reservation with the real usage; lower the buckets to a
                       gateway's ``x-ratelimit-remaining-*`` counts
``close_until``        a 429: close the account until its Retry-After
``record``             end both permissions with a verdict each (success, failure,
                       neutral, refused account); a success widens the account's
                       slow-start window, a breaker opening starts it over
=====================  ===============================================================

plus reads that never do I/O, for planning and ranking (``peek``, ``breaker``) and
for dashboards (``snapshot``). A store shared by many processes answers the reads
from what it last learned, and the operations from the shared state. A store may
report what happened to itself (its shared state became unreachable, or came
back) as :class:`Notice` values on the next :class:`Admitted`, for the router to
emit as events; ``aclose`` lets go of its connections when the router closes (a
store shared by several routers connects again when next used).

:class:`MemoryStore` is the reference: one process's state, the pure state
machines of ``policies._bucket`` (token buckets) and ``_breaker`` (circuit
breakers). Its operations never suspend, so an ending operation completes even
when the task calling it is being cancelled; a store doing I/O must keep that
promise itself (its ending operations must not be lost to a cancellation).
Its ``tally`` counts its breakers not closed: at 0, planning passes a tier whole
instead of asking each offer's breakers (a store without one is asked offer by offer).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable, Mapping
from typing import Final, NamedTuple, Protocol

import attrs

from ..policies import AccountLimits, AccountSnapshot, Deferral, Reservation
from ..providers import Tier
from ._breaker import BreakerConfig, BreakerState, CircuitBreaker, Permission, Tally, Transition

__all__ = [
    "SUCCEEDED",
    "Account",
    "Admitted",
    "BreakerView",
    "MemoryStore",
    "Notice",
    "Permit",
    "Store",
    "Verdict",
]


@attrs.frozen
class Account:
    """What one gateway account is limited by: its tier, its HTTP connection pool's size, and the
    slow-start window it starts from when it has no recent success (None: no slow start)."""

    gateway: str
    tier: Tier | None
    connections: int | None
    slow_start: int | None = None


class Verdict(enum.Enum):
    """What an attempt's outcome means to one breaker."""

    SUCCESS = "success"
    FAILURE = "failure"
    NEUTRAL = "neutral"  # says nothing about health (400, 429, cancelled): the permission is given back
    REFUSED = "refused"  # the account was refused (401/402/403): open for the long account break


class Permit:
    """Both breakers' permission for one call to (gateway, gateway model); ended exactly once."""

    __slots__ = ("ended", "gateway", "gateway_model", "gateway_permission", "model_permission")

    def __init__(
        self, gateway: str, gateway_model: str, gateway_permission: Permission, model_permission: Permission
    ) -> None:
        self.gateway = gateway
        self.gateway_model = gateway_model
        self.gateway_permission = gateway_permission
        self.model_permission = model_permission
        self.ended = False


class Reported(NamedTuple):
    """A breaker's transition, with whose breaker it is (``gateway_model`` None: the gateway's)."""

    gateway: str
    gateway_model: str | None
    transition: Transition


@attrs.frozen
class Notice:
    """Something that happened to the store itself, emitted as an event named ``name``
    (``store.fallback``: its shared state is unreachable, it answers from local state;
    ``store.recovered``: shared again)."""

    name: str
    detail: str


class Admitted(NamedTuple):
    """The answer to :meth:`Store.admit`: a reservation and a permit, or why not, with any
    breaker transitions the asking caused (a break that passed turns half-open), and what
    happened to the store since it last said (``notices``)."""

    reservation: Reservation | None
    permit: Permit | None
    deferral: Deferral | None
    reported: list[Reported]
    notices: tuple[Notice, ...] = ()


class BreakerView(Protocol):
    """A breaker as planning reads it."""

    @property
    def state(self) -> BreakerState: ...

    @property
    def open_until(self) -> float: ...

    @property
    def probes_in_flight(self) -> int: ...

    def would_allow(self, now: float) -> bool: ...

    def window_counts(self, now: float) -> tuple[int, int]:
        """(calls, failures) in the breaker's window as of ``now``."""
        ...


class Store(Protocol):
    """The state of admission and health, changed only by the atomic operations above."""

    def peek(self, account: Account, tokens: int, now: float) -> Deferral | None:
        """Why ``account`` could not take ``tokens`` now, as last known; no I/O, changes nothing."""
        ...

    def snapshot(self, account: Account, now: float) -> AccountSnapshot:
        """What ``account`` holds, as last known."""
        ...

    def breaker(self, gateway: str, gateway_model: str | None, config: BreakerConfig) -> BreakerView:
        """A breaker (``gateway_model`` None: the gateway's), as last known; no I/O."""
        ...

    def breakers(
        self, gateway: str, gateway_model: str, config: BreakerConfig
    ) -> tuple[BreakerView, BreakerView]:
        """The gateway's breaker and the model's there, as last known; no I/O."""
        ...

    async def admit(
        self, account: Account, tokens: int, gateway_model: str, config: BreakerConfig, now: float
    ) -> Admitted:
        """Reserve on ``account`` and take both breakers' permission for ``gateway_model``, or neither."""
        ...

    async def settle(
        self,
        reservation: Reservation,
        used_tokens: int | None,
        remaining: Mapping[str, float] | None,
        now: float,
    ) -> None:
        """End ``reservation`` (idempotent): free its slot, correct its tokens to ``used_tokens``
        (None refunds them), and lower the buckets to ``remaining`` ("requests", "tokens")."""
        ...

    async def close_until(self, account: Account, until: float, now: float) -> None:
        """Send nothing on ``account`` before ``until``."""
        ...

    async def record(
        self,
        permit: Permit,
        config: BreakerConfig,
        verdicts: tuple[Verdict, Verdict],
        now: float,
        latency: float,
        reason: str,
    ) -> list[Reported]:
        """End ``permit`` (idempotent) with a verdict for the gateway's and the model's breaker."""
        ...

    def on_release(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` when a slot frees; returns the function that stops it."""
        ...

    async def aclose(self) -> None:
        """Let go of connections and background work (the router calls it when it closes);
        the store stays usable and connects again when next used."""
        ...


_NONE: list[Reported] = []  # shared and never appended to: "no transitions"
SUCCEEDED: Final = (Verdict.SUCCESS, Verdict.SUCCESS)  # Health passes this very tuple


class MemoryStore:
    """Admission and health state in this process's memory (the reference store).

    Args:
        seed: seeds the breakers' break jitter.
    """

    def __init__(self, *, seed: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._accounts: dict[str, AccountLimits] = {}
        self._breakers: dict[tuple[str, str | None], CircuitBreaker] = {}
        self._pairs: dict[tuple[str, str], tuple[CircuitBreaker, CircuitBreaker]] = {}
        self._listeners: list[Callable[[], None]] = []
        self.tally = Tally()  # how many breakers are not closed (0: planning checks none)

    def __repr__(self) -> str:
        return f"MemoryStore(accounts={len(self._accounts)}, breakers={len(self._breakers)})"

    # -- accounts ----------------------------------------------------------------------------

    def _account(self, account: Account, now: float) -> AccountLimits:
        state = self._accounts.get(account.gateway)
        if state is None:
            state = AccountLimits(
                account.gateway,
                account.tier,
                now,
                connections=account.connections,
                slow_start=account.slow_start,
            )
            self._accounts[account.gateway] = state
        return state

    def peek(self, account: Account, tokens: int, now: float) -> Deferral | None:
        """Why ``account`` cannot take ``tokens`` now."""
        state = self._accounts.get(account.gateway) or self._account(account, now)  # mostly no call
        return state.check(tokens, now)

    def snapshot(self, account: Account, now: float) -> AccountSnapshot:
        """What ``account`` holds now."""
        return self._account(account, now).snapshot(now)

    async def settle(
        self,
        reservation: Reservation,
        used_tokens: int | None,
        remaining: Mapping[str, float] | None,
        now: float,
    ) -> None:
        """End ``reservation``; wake slot waiters when this frees its slot."""
        state = self._accounts[reservation.gateway]
        freed = not reservation.settled
        state.settle(reservation, used_tokens, now)
        if remaining:
            state.correct(remaining, now)
        if freed:
            for listener in self._listeners:
                listener()

    async def close_until(self, account: Account, until: float, now: float) -> None:
        """Close ``account`` until ``until``."""
        self._account(account, now).close_until(until)

    def on_release(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever a slot frees."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    async def aclose(self) -> None:
        """Nothing to let go of."""

    # -- breakers ----------------------------------------------------------------------------

    def breaker(self, gateway: str, gateway_model: str | None, config: BreakerConfig) -> CircuitBreaker:
        """The breaker of ``gateway`` (``gateway_model`` None) or of one model there."""
        key = (gateway, gateway_model)
        breaker = self._breakers.get(key)
        if breaker is None:
            breaker = self._breakers[key] = CircuitBreaker(config, self._rng, self.tally)
        return breaker

    def breakers(
        self, gateway: str, gateway_model: str, config: BreakerConfig
    ) -> tuple[CircuitBreaker, CircuitBreaker]:
        """The gateway's breaker and the model's there, found together (the hot path's one lookup)."""
        pair = self._pairs.get((gateway, gateway_model))
        if pair is None:
            pair = self._pairs[(gateway, gateway_model)] = (
                self.breaker(gateway, None, config),
                self.breaker(gateway, gateway_model, config),
            )
        return pair

    async def admit(
        self, account: Account, tokens: int, gateway_model: str, config: BreakerConfig, now: float
    ) -> Admitted:
        """Reserve, then take both permissions; give the reservation back when a breaker refuses."""
        state = self._accounts.get(account.gateway) or self._account(account, now)  # mostly no call
        held = state.reserve(tokens, now)
        if isinstance(held, Deferral):
            return Admitted(None, None, held, _NONE)
        gateway = account.gateway
        g_breaker, m_breaker = self.breakers(gateway, gateway_model, config)
        g_permission, g_transition = g_breaker.acquire(now)
        m_permission = m_transition = None
        if g_permission is not None:
            m_permission, m_transition = m_breaker.acquire(now)
            if m_permission is None:
                g_breaker.release(g_permission, now)
        reported = (
            _NONE
            if g_transition is None and m_transition is None
            else _reports(gateway, gateway_model, g_transition, m_transition)
        )
        if g_permission is None or m_permission is None:
            # The reservation goes back as any settled one does, waking the requests that
            # wait for a slot: they look again (in a new order), as they always have.
            state.settle(held, None, now)
            for listener in self._listeners:
                listener()
            return Admitted(None, None, None, reported)
        return Admitted(held, Permit(gateway, gateway_model, g_permission, m_permission), None, reported)

    async def record(
        self,
        permit: Permit,
        config: BreakerConfig,
        verdicts: tuple[Verdict, Verdict],
        now: float,
        latency: float,
        reason: str,
    ) -> list[Reported]:
        """End ``permit`` with a verdict for each breaker; feed the account's slow start."""
        if permit.ended:
            return _NONE
        permit.ended = True
        account = self._accounts.get(permit.gateway)
        g_breaker, m_breaker = self.breakers(permit.gateway, permit.gateway_model, config)
        if verdicts is SUCCEEDED:  # the usual case, without _apply's dispatch
            g = g_breaker.success(permit.gateway_permission, now, latency)
            m = m_breaker.success(permit.model_permission, now, latency)
        else:
            g = _apply(g_breaker, permit.gateway_permission, verdicts[0], config, now, latency, reason)
            m = _apply(m_breaker, permit.model_permission, verdicts[1], config, now, latency, reason)
        if account is not None:
            if verdicts[0] is Verdict.SUCCESS and account.ramp is not None:
                account.succeeded()
            if (g is not None and g.after is BreakerState.OPEN) or (
                m is not None and m.after is BreakerState.OPEN
            ):
                account.restart()
        if g is None and m is None:
            return _NONE
        return _reports(permit.gateway, permit.gateway_model, g, m)

    def __len__(self) -> int:
        return len(self._accounts) + len(self._breakers)


def _apply(
    breaker: CircuitBreaker,
    permission: Permission,
    verdict: Verdict,
    config: BreakerConfig,
    now: float,
    latency: float,
    reason: str,
) -> Transition | None:
    if verdict is Verdict.SUCCESS:
        return breaker.success(permission, now, latency)
    if verdict is Verdict.FAILURE:
        return breaker.failure(permission, now, reason, latency)
    breaker.release(permission, now)
    if verdict is Verdict.REFUSED:
        return breaker.force_open(now, config.account_break, f"the account was refused: {reason}")
    return None


def _reports(gateway: str, gateway_model: str, g: Transition | None, m: Transition | None) -> list[Reported]:
    if g is None and m is None:
        return _NONE
    return [Reported(gateway, model, t) for model, t in ((None, g), (gateway_model, m)) if t is not None]
