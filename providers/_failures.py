"""The failure table: what each kind of failure means for the same target, the next one, and health.

Each error class carries its row as ``failure`` (``providers/_errors.py``, where the
tree is drawn; a subclass inherits its base's row unless it sets its own), and
``retryable`` and ``failover`` are derived from it. Everything that reacts to a
failure reads this table and nothing else: the
failover loop (retry here? move on?), the failover policy (may it move on at
all?), health (which breaker counts it) and admission (what it closes)::

    failure                         same target       next        breaker  closes
    connect refused/reset, timeout  once, budgeted    yes         gateway  -
    5xx, 503, malformed 200, a cut  once, budgeted    yes         model    target, for a Retry-After
    429                             after Retry-After yes         -        account, until Retry-After
    401 / 402 / 403                 never             yes         account  -
    404 / 405 (wrong path)          never             yes         model    -
    "unknown model" from a gateway  never             yes         -        offer, for a while
    other 4xx                       never             yes         -        -
    400 / 422, content filter       never             no          -        -
    context length                  never             larger ctx  -        -

"Once" waits a full-jitter backoff and never less than a Retry-After the gateway
gave; a Retry-After is clamped by the router (``max_retry_after``), and zero,
negative or past values count as none.
"""

from __future__ import annotations

import enum

import attrs

__all__ = ["Breaker", "Closes", "Failover", "Failure", "Retry"]


class Retry(enum.Enum):
    """Whether the same target is tried again."""

    NEVER = "never"
    ONCE = "once"  # one more try, after backoff (and any Retry-After), within the retry budget
    AFTER_RETRY_AFTER = "after Retry-After"  # again after each Retry-After, while the deadline allows


class Failover(enum.Enum):
    """Whether the next candidate is tried."""

    YES = "yes"
    NO = "no"
    LARGER_CONTEXT = "only a candidate with a larger context window"


class Breaker(enum.Enum):
    """Which circuit breaker the failure counts against."""

    GATEWAY = "gateway"  # the gateway's and the (gateway, model)'s: it did not answer at all
    MODEL = "model"  # the (gateway, model)'s; the gateway answered, so it counts as reachable
    ACCOUNT = "account"  # the gateway refuses the account: its breaker opens at once
    NONE = "none"  # says nothing about health


class Closes(enum.Enum):
    """What the failure closes for a while, besides the breakers."""

    NOTHING = "nothing"
    ACCOUNT = "account"  # the gateway account, until its Retry-After (a default when none)
    TARGET = "target"  # the (gateway, model), until its Retry-After, when it gave one
    OFFER = "offer"  # the offer is left out of plans for a while (a stale snapshot)


@attrs.frozen
class Failure:
    """One row of the table."""

    retry: Retry
    failover: Failover
    breaker: Breaker
    closes: Closes = Closes.NOTHING
