"""Strategy objects that order a request's candidates (cheapest, fastest, failover, rate-limit aware).

A policy ranks one request's candidates and may learn from outcomes; it never
does I/O and never sleeps. Ordering policies compose: ``a.then(b)`` breaks a's
ties with b; ``RateLimitAware(a)`` moves what the router's admission defers
now after what ``a`` ranked first. Policies hold no admission or health state.
"""

from ._bucket import AccountLimits, AccountSnapshot, Deferral, Reservation, TokenBucket
from ._cheapest import CheapestPerToken, expected_cost
from ._failover import DEFAULT_FAILOVER_ON, FailoverOn5xx
from ._latency import LowestLatency
from ._policy import Chain, Deferrals, OrderingPolicy, Outcome, Policy, RequestContext, offer_key
from ._ratelimit import RateLimitAware

__all__ = [
    "DEFAULT_FAILOVER_ON",
    "AccountLimits",
    "AccountSnapshot",
    "Chain",
    "CheapestPerToken",
    "Deferral",
    "Deferrals",
    "FailoverOn5xx",
    "LowestLatency",
    "OrderingPolicy",
    "Outcome",
    "Policy",
    "RateLimitAware",
    "RequestContext",
    "Reservation",
    "TokenBucket",
    "expected_cost",
    "offer_key",
]
