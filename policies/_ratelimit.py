"""Rate-limit awareness: admit or defer each candidate against its account's buckets.

``RateLimitAware(inner)`` ranks with ``inner``, then moves candidates whose
account cannot take the request now after those that can (deferred ones ordered
by when they free), so a saturated cheapest gateway is passed over rather than
waited for. Right before sending, the router asks :meth:`RateLimitAware.admit`,
which reserves a request, the estimated tokens (prompt estimate + ``max_tokens``,
or the expected output when unset) and a slot; when the attempt ends it calls
:meth:`~RateLimitAware.settle` with the real usage (or without, on failure or
cancellation, which refunds the tokens). A 429 closes the account until its
Retry-After. When every candidate is deferred the router waits for the earliest
to free, inside the deadline.

Accounts are the gateways; a gateway without a :class:`~providers.Tier` has no
buckets, but a 429 still closes it until its Retry-After.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from ..providers import ConfigError, Gateway, Offer, UpstreamError
from ._bucket import AccountLimits, AccountSnapshot, Deferral, Reservation
from ._cheapest import CheapestPerToken
from ._policy import OrderingPolicy, Outcome, Policy, RequestContext
from ._store import MemoryStore, StateStore

__all__ = ["DEFAULT_RETRY_AFTER", "RateLimitAware"]

DEFAULT_RETRY_AFTER = 1.0
"""Seconds an account stays closed after a 429 that gave no Retry-After."""


class RateLimitAware:
    """Wraps a policy with per-account token buckets (requests/min, tokens/min, concurrency).

    Args:
        inner: the ordering among candidates that can go now; default :class:`CheapestPerToken`.
        store: where the accounts' state lives (in memory by default).
    """

    def __init__(self, inner: Policy | None = None, *, store: StateStore | None = None) -> None:
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
        self._store: StateStore = store if store is not None else MemoryStore()
        self._gateways: Mapping[str, Gateway] = {}
        self._accounts: dict[str, AccountLimits] = {}
        self._connections: int | None = None
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        return f"RateLimitAware({self.inner!r})"

    # -- wiring ----------------------------------------------------------------------------

    def attach(self, gateways: Mapping[str, Gateway], *, connections: int | None = None) -> None:
        """Learn the gateways (and their tiers) the router sends to, and how many connections
        its HTTP client opens to one gateway (None: no cap)."""
        self._gateways = gateways
        self._connections = connections
        self._accounts.clear()

    def on_release(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever a slot frees (the router wakes waiting requests).

        Returns a function that stops calling it (a router closing lets go of a policy
        object it shares with others, so closed routers are not kept alive by it).
        """
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    def account(self, gateway: str, now: float) -> AccountLimits:
        """The account state of ``gateway`` (from the store once, then kept)."""
        account = self._accounts.get(gateway)
        if account is None:
            gw = self._gateways.get(gateway)
            tier = None if gw is None else gw.tier
            account = self._store.get(
                "account", gateway, lambda: AccountLimits(gateway, tier, now, connections=self._connections)
            )
            self._accounts[gateway] = account
        return account

    def snapshot(self, gateway: str, now: float) -> AccountSnapshot:
        """What ``gateway``'s account holds now (slots, reserved tokens, levels)."""
        return self.account(gateway, now).snapshot(now)

    @staticmethod
    def tokens_for(ctx: RequestContext) -> int:
        """What a request reserves: the prompt estimate plus max_tokens (or the expected output)."""
        return ctx.prompt_tokens + ctx.output_tokens

    # -- ordering --------------------------------------------------------------------------

    def _deferral(self, offer: Offer, ctx: RequestContext) -> Deferral | None:
        account = self.account(offer.gateway or "", ctx.now)
        if account.unlimited and ctx.now >= account.closed_until:
            return None  # no tier and no Retry-After: nothing to check
        return account.check(self.tokens_for(ctx), ctx.now)

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """The inner order, with candidates that cannot go now moved after those that can."""
        ranked = self.inner.rank(offers, ctx)
        ready: list[Offer] = []
        later: list[tuple[float, int, Offer]] = []
        for i, offer in enumerate(ranked):
            deferral = self._deferral(offer, ctx)
            if deferral is None:
                ready.append(offer)
            else:
                until = ctx.now if deferral.until is None else deferral.until
                later.append((until, i, offer))
        if not later:
            return ranked
        later.sort(key=lambda t: t[:2])
        return ready + [o for _, _, o in later]

    def explain(self, offers: Sequence[Offer], ctx: RequestContext) -> list[tuple[Offer, str]]:
        """The inner reasons, with each deferral said."""
        reasons = dict(self.inner.explain(offers, ctx))
        out = []
        for offer in self.rank(offers, ctx):
            deferral = self._deferral(offer, ctx)
            reason = reasons[offer]
            if deferral is not None:
                reason = f"deferred ({deferral.describe(ctx.now)}); {reason}"
            out.append((offer, reason))
        return out

    # -- admission -------------------------------------------------------------------------

    def admit(self, offer: Offer, ctx: RequestContext, now: float) -> Reservation | Deferral:
        """Reserve for one attempt at ``offer``, or say what is exhausted and until when."""
        return self.account(offer.gateway or "", now).reserve(self.tokens_for(ctx), now)

    def settle(
        self, reservation: Reservation, used_tokens: int | None, headers: Mapping[str, str] | None, now: float
    ) -> None:
        """End a reservation with the real usage (None refunds the tokens), and read the gateway's counts."""
        account = reservation.account
        was_settled = reservation.settled
        account.settle(reservation, used_tokens, now)
        if headers:
            account.correct(headers, now)
        if not was_settled:
            for listener in self._listeners:
                listener()

    def rate_limited(self, offer: Offer, retry_after: float | None, now: float) -> float:
        """A 429: close the account until its Retry-After; returns that time."""
        until = now + (DEFAULT_RETRY_AFTER if retry_after is None else retry_after)
        self.account(offer.gateway or "", now).close_until(until)
        return until

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
    def learns(self) -> bool:
        """Whether the inner policy wants to hear about attempts."""
        inner = self.inner
        return not (
            isinstance(inner, OrderingPolicy)
            and type(inner).started is OrderingPolicy.started
            and type(inner).observe is OrderingPolicy.observe
        )
