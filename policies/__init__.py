"""Strategy objects that order a request's candidates (cheapest, fastest, failover).

A policy ranks one request's candidates and may learn from outcomes; it never
does I/O and never sleeps. Ordering policies compose: ``a.then(b)`` breaks a's
ties with b.
"""

from ._cheapest import CheapestPerToken, expected_cost
from ._failover import DEFAULT_FAILOVER_ON, FailoverOn5xx
from ._latency import LowestLatency
from ._policy import Chain, OrderingPolicy, Outcome, Policy, RequestContext, offer_key

__all__ = [
    "DEFAULT_FAILOVER_ON",
    "Chain",
    "CheapestPerToken",
    "FailoverOn5xx",
    "LowestLatency",
    "OrderingPolicy",
    "Outcome",
    "Policy",
    "RequestContext",
    "expected_cost",
    "offer_key",
]
