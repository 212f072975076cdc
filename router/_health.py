"""Health: the router's controller of the circuit breakers, one per gateway and per (gateway, model).

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

A call needs a permission from both breakers, taken with its reservation right
before sending (:meth:`Store.admit`), so a half-open breaker lets only its probes
through. Planning leaves out candidates either breaker would refuse now
(:meth:`Health.exclusion`, which reads the store and does no I/O). The breakers'
state lives in the router's store (``_store.py``).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Final

from ..providers import Breaker, Offer, UpstreamError
from ._breaker import BreakerConfig, BreakerState
from ._store import SUCCEEDED, BreakerView, Permit, Reported, Store, Verdict

__all__ = ["Health"]

_VERDICTS: Final = {
    Breaker.GATEWAY: (Verdict.FAILURE, Verdict.FAILURE),
    Breaker.MODEL: (Verdict.SUCCESS, Verdict.FAILURE),  # it answered: the gateway is reachable
    Breaker.ACCOUNT: (Verdict.REFUSED, Verdict.NEUTRAL),
    Breaker.NONE: (Verdict.NEUTRAL, Verdict.NEUTRAL),
}
_SUCCESS: Final = SUCCEEDED  # the store's fast path knows this tuple
_NEUTRAL: Final = (Verdict.NEUTRAL, Verdict.NEUTRAL)


class Health:
    """The breakers of one router, their state in ``store``.

    Args:
        store: where the breakers' state lives.
        config: thresholds and breaks for every breaker.
    """

    __slots__ = ("config", "store")

    def __init__(self, store: Store, config: BreakerConfig | None = None) -> None:
        self.store = store
        self.config = config if config is not None else BreakerConfig()

    def breaker(self, gateway: str, gateway_model: str | None = None) -> BreakerView:
        """The breaker of a whole gateway, or (with ``gateway_model``) of one model there."""
        return self.store.breaker(gateway, gateway_model, self.config)

    def state(self, gateway: str, gateway_model: str | None = None) -> BreakerState:
        """A breaker's state."""
        return self.breaker(gateway, gateway_model).state

    def exclusion(self, offer: Offer, now: float) -> str | None:
        """Why a breaker would refuse ``offer`` now, or None."""
        gateway = offer.gateway or ""
        g_breaker, m_breaker = self.store.breakers(gateway, offer.gateway_model, self.config)
        if g_breaker.state is BreakerState.CLOSED and m_breaker.state is BreakerState.CLOSED:
            return None
        for breaker, what in ((g_breaker, gateway), (m_breaker, f"{gateway}:{offer.gateway_model}")):
            if not breaker.would_allow(now):
                if breaker.state is BreakerState.OPEN:
                    return f"circuit open for {what} ({breaker.open_until - now:.1f}s more)"
                return f"circuit half-open for {what}, its probe in flight"
        return None

    def record(
        self, permit: Permit, error: BaseException | None, latency: float, now: float
    ) -> Awaitable[list[Reported]]:
        """End ``permit`` with the call's outcome (None: success), as the failure table says
        (the store's operation, for the caller to await)."""
        if error is None:
            return self.store.record(permit, self.config, _SUCCESS, now, latency, "")
        if not isinstance(error, UpstreamError):
            return self.release(permit, now)
        verdicts = _VERDICTS[error.failure.breaker]
        return self.store.record(permit, self.config, verdicts, now, latency, type(error).__name__)

    def release(self, permit: Permit, now: float) -> Awaitable[list[Reported]]:
        """End ``permit`` without a verdict (the call was cancelled or never sent)."""
        return self.store.record(permit, self.config, _NEUTRAL, now, 0.0, "")
