"""The policy protocol: how a strategy orders one request's candidates.

A policy ranks the offers of one fallback tier for one request (the router keeps
the tiers in order: the model's own offers, then each fallback model's). It may
observe outcomes to learn. It never does I/O and never sleeps, and its work per
request grows only with that request's candidates, never with the catalog.

Ordering policies are sort keys, so they compose: ``CheapestPerToken().then(
LowestLatency())`` orders by expected cost and breaks ties by latency
(:class:`Chain`); the wrapper ``RateLimitAware`` moves what the router's
admission defers after what can go now. Policies hold no admission or health
state: the router owns both (``router/_admission.py``, ``router/_health.py``).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any, Protocol, runtime_checkable

import attrs

from ..providers import ChatRequest, ConfigError, Offer, UpstreamError
from ._bucket import Deferral

__all__ = [
    "Chain",
    "Deferrals",
    "OrderingPolicy",
    "Outcome",
    "Policy",
    "RequestContext",
    "offer_key",
    "retries",
]


def offer_key(offer: Offer) -> tuple[str, str]:
    """The identity of a target: (gateway, gateway model id)."""
    return (offer.gateway or "", offer.gateway_model)


class Deferrals(Protocol):
    """What the router's admission says of a candidate now: the view a policy reads, never changes."""

    def deferral(self, offer: Offer, ctx: RequestContext) -> Deferral | None:
        """Why ``offer``'s account cannot take this request now (which limit, until when), or None."""
        ...


@attrs.frozen
class RequestContext:
    """What a policy knows about the request it is ranking for.

    Attributes:
        request: the validated request.
        prompt_tokens: the estimated prompt tokens.
        output_tokens: the expected completion tokens (``max_tokens``, else the
            router's default expectation).
        now: the router's clock, in seconds.
        stream: whether the caller is streaming.
        admission: the router's admission, to read deferrals from (None outside a router).
    """

    request: ChatRequest
    prompt_tokens: int
    output_tokens: int
    now: float
    stream: bool = False
    admission: Deferrals | None = None

    @property
    def tokens(self) -> int:
        """What the request reserves on an account: the prompt estimate plus the expected output."""
        return self.prompt_tokens + self.output_tokens


@attrs.frozen(slots=False)  # made per attempt when the policy learns: dict-backed builds faster
class Outcome:
    """How one attempt at one target went.

    Attributes:
        offer: the target.
        ok: whether it produced a complete answer.
        latency: seconds from sending to the end of the answer (or the failure).
        now: when the attempt ended, on the router's clock.
        ttft: for streams, seconds to the first chunk.
        error: the failure, if any.
    """

    offer: Offer
    ok: bool
    latency: float
    now: float
    ttft: float | None = None
    error: UpstreamError | None = None


@runtime_checkable
class Policy(Protocol):
    """Orders a request's candidates; may learn from outcomes; never does I/O.

    Attributes:
        name: how explanations and reports name it.
        retry_same: how many times a retryable failure (a 5xx, a timeout, a 429
            whose Retry-After falls inside the deadline) is retried on the same
            target, with backoff, before the request moves on (0: move on at once).
    """

    name: str

    @property
    def retry_same(self) -> int:
        """Retries of a retryable failure on the same target before moving on."""
        ...

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """The offers in the order to try them."""
        ...

    def explain(self, offers: Sequence[Offer], ctx: RequestContext) -> list[tuple[Offer, str]]:
        """The same order as :meth:`rank`, each with the reason for its place."""
        ...

    def started(self, offer: Offer, now: float) -> None:
        """An attempt at ``offer`` began."""
        ...

    def observe(self, outcome: Outcome) -> None:
        """An attempt ended."""
        ...

    def failover_on(self, error: UpstreamError) -> bool:
        """Whether this failure moves on to the next candidate."""
        ...

    def check(self, gateways: Collection[str]) -> None:
        """Called once by the router with its gateways' names, before any request.

        Raises:
            ConfigError: when the policy's settings do not fit them (a failover
                order naming a gateway the graph does not have).
        """
        ...


def retries(value: object) -> int:
    """A valid ``retry_same``.

    Raises:
        ConfigError: unless it is a whole number from 0 to 10.
    """
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10:
        raise ConfigError(f"retry_same must be a whole number from 0 to 10, not {value!r}")
    return value


class OrderingPolicy:
    """A policy that orders by a sort key per offer (lower first; ties keep catalog order)."""

    name = "ordering"
    retry_same = 0

    def key(self, offer: Offer, ctx: RequestContext) -> Any:
        """The sort key of ``offer`` for this request."""
        raise NotImplementedError

    def reason(self, offer: Offer, ctx: RequestContext) -> str:
        """Why ``offer`` sits where its key puts it."""
        raise NotImplementedError

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """Sort by :meth:`key`; stable, so ties keep the catalog's gateway order."""
        return sorted(offers, key=lambda o: self.key(o, ctx))

    def explain(self, offers: Sequence[Offer], ctx: RequestContext) -> list[tuple[Offer, str]]:
        """:meth:`rank` with a reason for each place."""
        return [(o, self.reason(o, ctx)) for o in self.rank(offers, ctx)]

    def started(self, offer: Offer, now: float) -> None:
        """Nothing to learn by default."""

    def observe(self, outcome: Outcome) -> None:
        """Nothing to learn by default."""

    def failover_on(self, error: UpstreamError) -> bool:
        """By default, what the failure table says (``error.failover``)."""
        return error.failover

    def check(self, gateways: Collection[str]) -> None:
        """Nothing to check by default."""

    def then(self, other: OrderingPolicy) -> Chain:
        """Order by this policy, breaking ties with ``other``."""
        return Chain(self, other)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Chain(OrderingPolicy):
    """Several orderings in turn: the first decides, each next one breaks the ties left.

    Failover decisions (and ``retry_same``) are the first policy's; every policy observes outcomes.
    """

    def __init__(self, *policies: OrderingPolicy) -> None:
        flat: list[OrderingPolicy] = []
        for policy in policies:
            if not isinstance(policy, OrderingPolicy):
                raise ConfigError(f"Chain takes ordering policies, not {policy!r}")
            flat.extend(policy.policies if isinstance(policy, Chain) else (policy,))
        if not flat:
            raise ConfigError("Chain needs at least one policy")
        self.policies: tuple[OrderingPolicy, ...] = tuple(flat)
        self.name = " then ".join(p.name for p in self.policies)
        self.retry_same = self.policies[0].retry_same

    def key(self, offer: Offer, ctx: RequestContext) -> Any:
        """The tuple of every policy's key."""
        return tuple(p.key(offer, ctx) for p in self.policies)

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """Each policy ranks within the ties the ones before it left."""
        groups: list[list[Offer]] = [list(offers)]
        for policy in self.policies:
            regrouped: list[list[Offer]] = []
            for group in groups:
                if len(group) == 1:
                    regrouped.append(group)
                    continue
                ranked = policy.rank(group, ctx)
                keys = [policy.key(o, ctx) for o in ranked]
                current = [ranked[0]]
                for offer, key, prev in zip(ranked[1:], keys[1:], keys, strict=False):
                    if key == prev:
                        current.append(offer)
                    else:
                        regrouped.append(current)
                        current = [offer]
                regrouped.append(current)
            groups = regrouped
        return [o for group in groups for o in group]

    def reason(self, offer: Offer, ctx: RequestContext) -> str:
        """Every policy's reason, in turn."""
        return "; then ".join(p.reason(offer, ctx) for p in self.policies)

    def started(self, offer: Offer, now: float) -> None:
        """Tell every policy."""
        for policy in self.policies:
            policy.started(offer, now)

    def observe(self, outcome: Outcome) -> None:
        """Tell every policy."""
        for policy in self.policies:
            policy.observe(outcome)

    def failover_on(self, error: UpstreamError) -> bool:
        """The first policy decides."""
        return self.policies[0].failover_on(error)

    def check(self, gateways: Collection[str]) -> None:
        """Every policy checks."""
        for policy in self.policies:
            policy.check(gateways)

    def __repr__(self) -> str:
        return " .then(".join(repr(p) for p in self.policies) + ")" * (len(self.policies) - 1)
