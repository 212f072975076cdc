"""Health: a circuit breaker per gateway and per (gateway, model), fed by each attempt's outcome.

Which breaker a failure counts against is the failure table's ``breaker`` column
(``providers/_failures.py``), read here and nowhere else:

- ``gateway`` (a refused connection, a timeout): a failure of the gateway and of
  the model there;
- ``model`` (a 5xx, a malformed reply, a cut stream, a 404/405): a failure of that
  model there; the gateway answered, so it counts as reachable;
- ``account`` (401, 402, 403): the gateway's breaker opens for ``account_break``
  whatever the counts;
- ``none`` (a 400/422, a 429, an unknown model) and a cancellation: says nothing
  about health (the permission is given back).

A call needs a permission from both breakers. Planning leaves out candidates
either breaker would refuse now; :meth:`Health.acquire` takes the permissions
right before sending, so a half-open breaker lets only its probes through.
"""

from __future__ import annotations

import random

import attrs

from ..policies import MemoryStore, StateStore
from ..providers import Breaker, Offer, UpstreamError
from ._breaker import BreakerConfig, BreakerState, CircuitBreaker, Permission, Transition

__all__ = ["Health", "Permit", "Reported"]

_NONE: list[Reported] = []  # shared and never appended to: "no transitions"


@attrs.frozen
class Reported:
    """A breaker's transition, with whose breaker it is (``gateway_model`` None: the gateway's)."""

    gateway: str
    gateway_model: str | None
    transition: Transition


class Permit:
    """Both breakers' permission for one call; ended exactly once."""

    __slots__ = ("ended", "gateway", "gateway_permission", "model", "model_permission")

    def __init__(
        self,
        gateway: CircuitBreaker,
        model: CircuitBreaker,
        gateway_permission: Permission,
        model_permission: Permission,
    ) -> None:
        self.gateway = gateway
        self.model = model
        self.gateway_permission = gateway_permission
        self.model_permission = model_permission
        self.ended = False


class Health:
    """The breakers of one router.

    Args:
        config: thresholds and breaks for every breaker.
        store: where breakers live.
        rng: for break jitter.
    """

    def __init__(
        self,
        config: BreakerConfig | None = None,
        store: StateStore | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config if config is not None else BreakerConfig()
        self._store: StateStore = store if store is not None else MemoryStore()
        self._rng = rng if rng is not None else random.Random()
        # Breakers fetched from the store once per target, then kept (the hot path).
        self._pairs: dict[tuple[str, str], tuple[CircuitBreaker, CircuitBreaker]] = {}

    def _new(self) -> CircuitBreaker:
        return CircuitBreaker(self.config, self._rng)

    def gateway_breaker(self, gateway: str) -> CircuitBreaker:
        """The breaker of a whole gateway."""
        return self._store.get("breaker", (gateway,), self._new)

    def model_breaker(self, gateway: str, gateway_model: str) -> CircuitBreaker:
        """The breaker of one model at one gateway."""
        return self._store.get("breaker", (gateway, gateway_model), self._new)

    def state(self, gateway: str, gateway_model: str | None = None) -> BreakerState:
        """A breaker's state."""
        if gateway_model is None:
            return self.gateway_breaker(gateway).state
        return self.model_breaker(gateway, gateway_model).state

    def _pair(self, offer: Offer) -> tuple[CircuitBreaker, CircuitBreaker]:
        key = (offer.gateway or "", offer.gateway_model)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = (self.gateway_breaker(key[0]), self.model_breaker(*key))
        return pair

    def exclusion(self, offer: Offer, now: float) -> str | None:
        """Why a breaker would refuse ``offer`` now, or None."""
        g_breaker, m_breaker = self._pair(offer)
        if g_breaker.state is BreakerState.CLOSED and m_breaker.state is BreakerState.CLOSED:
            return None
        gateway = offer.gateway or ""
        for breaker, what in (
            (g_breaker, gateway),
            (m_breaker, f"{gateway}:{offer.gateway_model}"),
        ):
            if not breaker.would_allow(now):
                if breaker.state is BreakerState.OPEN:
                    return f"circuit open for {what} ({breaker.open_until - now:.1f}s more)"
                return f"circuit half-open for {what}, its probe in flight"
        return None

    def acquire(self, offer: Offer, now: float) -> tuple[Permit | None, list[Reported]]:
        """Take both permissions for one call, or neither; with any transitions the asking caused."""
        g_breaker, m_breaker = self._pair(offer)
        g_permission, g_transition = g_breaker.acquire(now)
        m_permission = None
        m_transition = None
        if g_permission is not None:
            m_permission, m_transition = m_breaker.acquire(now)
            if m_permission is None:
                g_breaker.release(g_permission, now)
        reported = _NONE
        if g_transition is not None or m_transition is not None:
            gateway = offer.gateway or ""
            reported = [
                Reported(gateway, model, t)
                for model, t in ((None, g_transition), (offer.gateway_model, m_transition))
                if t is not None
            ]
        if g_permission is None or m_permission is None:
            return None, reported
        return Permit(g_breaker, m_breaker, g_permission, m_permission), reported

    def record(
        self, permit: Permit, offer: Offer, error: BaseException | None, latency: float, now: float
    ) -> list[Reported]:
        """End ``permit`` with the call's outcome (None: success)."""
        if permit.ended:
            return _NONE
        permit.ended = True
        g, m = permit.gateway, permit.model
        gp, mp = permit.gateway_permission, permit.model_permission
        breaker = Breaker.NONE if not isinstance(error, UpstreamError) else error.failure.breaker
        if error is None:
            g_transition = g.success(gp, now, latency)
            m_transition = m.success(mp, now, latency)
        elif breaker is Breaker.ACCOUNT:
            m.release(mp, now)
            g.release(gp, now)
            m_transition = None
            g_transition = g.force_open(
                now, self.config.account_break, f"the account was refused: {type(error).__name__}"
            )
        elif breaker is Breaker.NONE:
            g.release(gp, now)
            m.release(mp, now)
            return _NONE
        else:
            reason = type(error).__name__
            if breaker is Breaker.GATEWAY:
                g_transition = g.failure(gp, now, reason)
            else:
                g_transition = g.success(gp, now, latency)  # it answered: the gateway is reachable
            m_transition = m.failure(mp, now, reason)
        if g_transition is None and m_transition is None:
            return _NONE
        gateway = offer.gateway or ""
        return [
            Reported(gateway, model, t)
            for model, t in ((None, g_transition), (offer.gateway_model, m_transition))
            if t is not None
        ]

    def release(self, permit: Permit, now: float) -> None:
        """End ``permit`` without a verdict (the call was cancelled or never sent)."""
        if permit.ended:
            return
        permit.ended = True
        permit.gateway.release(permit.gateway_permission, now)
        permit.model.release(permit.model_permission, now)
