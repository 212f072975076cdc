"""Strategy objects that order a request's candidates (cheapest, fastest, failover, rate-limit aware).

A policy ranks one request's candidates and may learn from outcomes; it never
does I/O and never sleeps. Ordering policies compose: ``a.then(b)`` breaks a's
ties with b; ``RateLimitAware(a)`` admits or defers what ``a`` ranked against
each account's token buckets.
"""

from ._bucket import AccountLimits, AccountSnapshot, Deferral, Reservation, TokenBucket
from ._cheapest import CheapestPerToken, expected_cost
from ._failover import DEFAULT_FAILOVER_ON, FailoverOn5xx
from ._latency import LowestLatency
from ._policy import Chain, OrderingPolicy, Outcome, Policy, RequestContext, offer_key
from ._ratelimit import DEFAULT_RETRY_AFTER, RateLimitAware
from ._store import MemoryStore, StateStore

__all__ = [
    "DEFAULT_FAILOVER_ON",
    "DEFAULT_RETRY_AFTER",
    "AccountLimits",
    "AccountSnapshot",
    "Chain",
    "CheapestPerToken",
    "Deferral",
    "FailoverOn5xx",
    "LowestLatency",
    "MemoryStore",
    "OrderingPolicy",
    "Outcome",
    "Policy",
    "RateLimitAware",
    "RequestContext",
    "Reservation",
    "StateStore",
    "TokenBucket",
    "expected_cost",
    "offer_key",
]
