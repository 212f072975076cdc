"""Rate-limit awareness: candidates whose account can take the request now go first.

``RateLimitAware(inner)`` ranks with ``inner``, then moves the candidates the
router's admission defers now (in a plan, those ahead of the first that can go:
the router checks each again as it tries it) (an account at its requests/min, tokens/min or
concurrency limit, or closed by a 429's Retry-After) after those that can go,
the deferred ones ordered by when they free; so a saturated cheapest gateway is
passed over rather than waited for. It reads the deferrals through the request's
context (:attr:`RequestContext.admission`) and holds no state: the accounts are
the router's (``router/_admission.py``), which reserves right before sending and
settles when the attempt ends. When every candidate is deferred the router waits
for the earliest to free, inside the deadline.

The router always ranks through one (wrapping the policy you give it), so a tier
or a Retry-After is never ignored whatever the ordering.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from ..providers import ConfigError, Offer, UpstreamError
from ._cheapest import CheapestPerToken
from ._policy import Deferrals, OrderingPolicy, Outcome, Policy, RequestContext

__all__ = ["RateLimitAware"]


class RateLimitAware:
    """Wraps a policy: what the router's admission defers goes after what can go now.

    Args:
        inner: the ordering among candidates that can go now; default :class:`CheapestPerToken`.
    """

    def __init__(self, inner: Policy | None = None) -> None:
        if isinstance(inner, RateLimitAware):
            raise ConfigError(
                f"RateLimitAware({inner!r}) wraps a RateLimitAware; wrap the ordering policy once"
            )
        if inner is not None and not isinstance(inner, Policy):
            raise ConfigError(
                f"RateLimitAware wraps a policy object such as CheapestPerToken(), not {inner!r}"
            )
        self.inner: Policy = inner if inner is not None else CheapestPerToken()
        self.name = f"rate-limit-aware {self.inner.name}"

    def __repr__(self) -> str:
        return f"RateLimitAware({self.inner!r})"

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """The inner order, with candidates that cannot go now moved after those that can.

        Only the front is checked: the candidates ahead of the first that can go now move
        back, ordered by when they free; those behind it keep the inner order unchecked,
        since the router checks each candidate's account again as it tries it, and defers
        it then (a request sends to the same targets in the same order either way, with
        one check instead of one per candidate). :meth:`explain` checks every candidate.
        """
        ranked = self.inner.rank(offers, ctx)
        admission = ctx.admission
        if admission is None or not ranked or admission.deferral(ranked[0], ctx) is None:
            return ranked  # the usual case: the front can go now
        return _partition(ranked, admission, ctx, lazy=True)

    def explain(self, offers: Sequence[Offer], ctx: RequestContext) -> list[tuple[Offer, str]]:
        """The inner reasons, with each deferral said."""
        reasons = dict(self.inner.explain(offers, ctx))
        admission = ctx.admission
        out = []
        ranked = self.inner.rank(offers, ctx)
        if admission is not None:
            ranked = _partition(ranked, admission, ctx, lazy=False)
        for offer in ranked:
            deferral = None if admission is None else admission.deferral(offer, ctx)
            reason = reasons[offer]
            if deferral is not None:
                reason = f"deferred ({deferral.describe(ctx.now)}); {reason}"
            out.append((offer, reason))
        return out

    # -- the rest is the inner policy's ------------------------------------------------------

    def started(self, offer: Offer, now: float) -> None:
        """Tell the inner policy."""
        self.inner.started(offer, now)

    def observe(self, outcome: Outcome) -> None:
        """Tell the inner policy."""
        self.inner.observe(outcome)

    def failover_on(self, error: UpstreamError) -> bool:
        """The inner policy decides."""
        return self.inner.failover_on(error)

    def check(self, gateways: Collection[str]) -> None:
        """The inner policy checks."""
        self.inner.check(gateways)

    @property
    def retry_same(self) -> int:
        """The inner policy's."""
        return self.inner.retry_same

    @property
    def learns(self) -> bool:
        """Whether the inner policy wants to hear about attempts."""
        inner = self.inner
        return not (
            isinstance(inner, OrderingPolicy)
            and type(inner).started is OrderingPolicy.started
            and type(inner).observe is OrderingPolicy.observe
        )


def _partition(ranked: list[Offer], admission: Deferrals, ctx: RequestContext, *, lazy: bool) -> list[Offer]:
    """``ranked`` with the deferred candidates after the others, by when they free; ``lazy``
    checks only up to the first candidate that can go now."""
    deferral = admission.deferral
    ready: list[Offer] = []
    later: list[tuple[float, int, Offer]] = []
    for i, offer in enumerate(ranked):
        found = deferral(offer, ctx)
        if found is None:
            if lazy:
                if not i:
                    return ranked
                ready = ranked[i:]
                break
            ready.append(offer)
        else:
            later.append((ctx.now if found.until is None else found.until, i, offer))
    if not later:
        return ranked
    later.sort(key=lambda t: t[:2])
    return ready + [o for _, _, o in later]
