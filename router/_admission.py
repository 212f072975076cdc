"""Admission: the router's controller of the gateways' accounts (requests/min, tokens/min, slots).

One account per gateway, limited by its :class:`~providers.Tier` and by the HTTP
client's connections per host (a request over the pool's size would only queue
inside the client, its timeouts running, and a timeout there would be blamed on a
gateway that never saw it). A request reserves its estimated tokens (prompt
estimate + ``max_tokens``, or the expected output when unset), one request and a
slot right before it is sent (:meth:`Store.admit`, together with the breakers'
permission); when the attempt ends the reservation is settled with the real usage
(none on failure or cancellation: the tokens are refunded), and the buckets are
lowered to the ``x-ratelimit-remaining-*`` counts a gateway sent. A 429 closes
the account until its Retry-After (:data:`DEFAULT_RETRY_AFTER` when it gave none).

The state lives in the router's store (``_store.py``); this module decides what to
ask it. Ranking reads it through :meth:`Admission.deferral` (the view
:class:`~policies.RateLimitAware` orders by), which never does I/O.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Final

from ..policies import AccountSnapshot, Deferral, RequestContext, Reservation
from ..providers import Gateway, Offer
from ._breaker import BreakerConfig
from ._store import Account, Admitted, Store

__all__ = ["DEFAULT_RETRY_AFTER", "Admission"]

DEFAULT_RETRY_AFTER: Final = 1.0
"""Seconds an account stays closed after a 429 that gave no Retry-After."""

_REMAINING: Final = (
    ("x-ratelimit-remaining-requests", "requests"),
    ("x-ratelimit-remaining-tokens", "tokens"),
)


def remaining(headers: Mapping[str, str] | None) -> dict[str, float] | None:
    """The ``x-ratelimit-remaining-*`` counts in ``headers`` (None when there are none)."""
    if not headers:
        return None
    counts: dict[str, float] = {}
    for header, which in _REMAINING:
        value = headers.get(header)
        if value is None:
            continue
        try:
            counts[which] = float(value)
        except ValueError:
            continue
    return counts or None


class Admission:
    """The accounts of one router's gateways, their state in ``store``.

    Args:
        gateways: the router's gateways (their tiers).
        store: where the accounts' state lives.
        connections: the HTTP client's connections per host (None: no cap).
        slow_start: the requests in flight an account with no recent success admits
            (None: no slow start); see ``policies/_bucket.py``.
    """

    __slots__ = ("_accounts", "_connections", "_slow_start", "store")

    def __init__(
        self,
        gateways: Mapping[str, Gateway],
        store: Store,
        connections: int | None,
        slow_start: int | None = None,
    ) -> None:
        self.store = store
        self._connections = connections
        self._slow_start = slow_start
        self._accounts = {
            name: Account(name, gw.tier, connections, slow_start) for name, gw in gateways.items()
        }

    def account(self, gateway: str) -> Account:
        """The account of ``gateway``."""
        account = self._accounts.get(gateway)
        if account is None:
            account = self._accounts[gateway] = Account(gateway, None, self._connections, self._slow_start)
        return account

    def deferral(self, offer: Offer, ctx: RequestContext) -> Deferral | None:
        """Why ``offer``'s account cannot take this request now, or None (no I/O)."""
        account = self._accounts.get(offer.gateway or "")
        if account is None:
            account = self.account(offer.gateway or "")
        return self.store.peek(account, ctx.prompt_tokens + ctx.output_tokens, ctx.now)

    def snapshot(self, gateway: str, now: float) -> AccountSnapshot:
        """What ``gateway``'s account holds now (slots, reserved tokens, levels, closure)."""
        return self.store.snapshot(self.account(gateway), now)

    def admit(self, offer: Offer, tokens: int, breakers: BreakerConfig, now: float) -> Awaitable[Admitted]:
        """Reserve for one attempt at ``offer`` and take its breakers' permission, or say why not
        (the store's operation, awaited by the caller: no coroutine of its own on the hot path)."""
        gateway = offer.gateway or ""
        account = self._accounts.get(gateway) or self.account(gateway)  # mostly without account()'s call
        return self.store.admit(account, tokens, offer.gateway_model, breakers, now)

    def settle(
        self, reservation: Reservation, used_tokens: int | None, headers: Mapping[str, str] | None, now: float
    ) -> Awaitable[None]:
        """End ``reservation`` with the real usage (None refunds it), reading the gateway's counts."""
        return self.store.settle(reservation, used_tokens, remaining(headers), now)

    async def rate_limited(self, offer: Offer, retry_after: float | None, now: float) -> float:
        """A 429: close ``offer``'s account until its Retry-After; returns that time."""
        until = now + (DEFAULT_RETRY_AFTER if retry_after is None else retry_after)
        await self.store.close_until(self.account(offer.gateway or ""), until, now)
        return until
