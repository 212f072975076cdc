"""Failover on 5xx: an explicit gateway order, moving on only for server-side failures."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Final

from ..providers import (
    AccountError,
    ConfigError,
    MalformedReply,
    Offer,
    RateLimited,
    ServerError,
    StreamCut,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from ._policy import OrderingPolicy, RequestContext, retries

__all__ = ["DEFAULT_FAILOVER_ON", "FailoverOn5xx"]

DEFAULT_FAILOVER_ON: Final[tuple[type[UpstreamError], ...]] = (
    ServerError,
    UpstreamTimeout,
    UpstreamConnectionError,
    MalformedReply,
    StreamCut,
    RateLimited,
    AccountError,
)
"""5xx, timeouts, connection failures, malformed replies, cut streams, and the account-level
outcomes the failure-class table moves on from: a 429 and a refused account (401/402/403)."""


class FailoverOn5xx(OrderingPolicy):
    """Try gateways in an explicit order, moving to the next only on server-side failures.

    Args:
        order: gateway names, primary first. Gateways not named come after them,
            in catalog order.
        on: the error classes that move on to the next candidate; by default 5xx,
            timeouts, connection failures, malformed replies, cut streams, 429s and
            refused accounts (401/402/403). A 400/422 never moves on, whatever is
            listed. An outcome left out keeps the request on its gateway: if the
            same target may be tried again, the router retries it there as the
            failure table allows (a 5xx or timeout once; a 429 after each
            ``Retry-After``) inside the deadline and retry budget, and the caller
            gets the error, with every attempt, only when that fails. Other
            requests are still planned around a saturated account
            (``RateLimitAware``) and an open circuit.
        retry_same: before moving on from a retryable failure (a 5xx, a timeout, a
            429 whose Retry-After falls inside the deadline), retry the same target
            up to this many times, with backoff.

    Raises:
        ConfigError: when ``order`` is empty or names a gateway twice; the router
            also refuses an order naming a gateway its graph does not have.
    """

    name = "failover-on-5xx"

    def __init__(
        self,
        order: Sequence[str],
        *,
        on: Iterable[type[UpstreamError]] = DEFAULT_FAILOVER_ON,
        retry_same: int = 0,
    ) -> None:
        if isinstance(order, str) or not order:
            raise ConfigError("FailoverOn5xx needs a non-empty list of gateway names, primary first")
        if not all(isinstance(name, str) for name in order):
            raise ConfigError(f"FailoverOn5xx order takes gateway names, not {list(order)!r}")
        if len(set(order)) != len(order):
            raise ConfigError(f"FailoverOn5xx order names a gateway twice: {list(order)}")
        self.order = tuple(order)
        self._index = {name: i for i, name in enumerate(self.order)}
        self.on = tuple(on)
        self.retry_same = retries(retry_same)

    def key(self, offer: Offer, ctx: RequestContext) -> int:
        """The gateway's place in the order (unnamed gateways after all named ones)."""
        return self._index.get(offer.gateway or "", len(self.order))

    def reason(self, offer: Offer, ctx: RequestContext) -> str:
        """The gateway's place in the configured order."""
        place = self._index.get(offer.gateway or "")
        if place is None:
            return f"{offer.gateway} is not in the failover order; after {', '.join(self.order)}"
        return "primary" if place == 0 else f"failover #{place} in the configured order"

    def failover_on(self, error: UpstreamError) -> bool:
        """Only the listed failures move on, and never a rejected request (400/422)."""
        return error.failover and isinstance(error, self.on)

    def check(self, gateways: Collection[str]) -> None:
        """Every gateway in the order must be one of the router's (names are case-sensitive)."""
        known = {name.lower(): name for name in gateways}
        for name in self.order:
            if name in gateways:
                continue
            hint = known.get(name.lower())
            did_you_mean = f"; did you mean {hint!r}?" if hint else ""
            raise ConfigError(
                f"FailoverOn5xx order names {name!r}, which is not a gateway of this graph "
                f"(it has {', '.join(sorted(gateways))}){did_you_mean}"
            )

    def __repr__(self) -> str:
        same = f", retry_same={self.retry_same}" if self.retry_same else ""
        return f"FailoverOn5xx({list(self.order)!r}{same})"
