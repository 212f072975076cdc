"""Outlier ejection: a target failing far more often than the others of its model goes last.

A breaker opens at a 50% failure ratio, so a gateway failing 30% of requests (a
brownout) is never left: every request tries it first and 30% of them pay a
failed attempt. Envoy's ``success_rate`` outlier detection ejects a host whose
success rate is far below its peers'; its rule (below the mean by 1.9 standard
deviations) needs many hosts, while a model here has two to four candidates,
where one outlier can never be that far from a mean it is part of. So the rule
here is relative to the *others'* median: a target whose success rate over its
breaker's window (30 s) is below ``ratio`` times the median rate of the other
candidates of the same model, each with at least ``min_calls`` calls there, is
ejected.

Ejected means ranked last within its model (after every other candidate), not
removed: it still serves when the others cannot, and it comes back by itself
once its window no longer holds enough calls (ejected, it gets few) or its rate
recovers. At most half of a model's measured candidates are ejected at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import attrs

from ..providers import ConfigError, Offer
from ._health import Health

__all__ = ["Outliers", "ejected"]


@attrs.frozen
class Outliers:
    """When a target counts as an outlier among its model's candidates.

    Args:
        ratio: eject a target whose success rate is below this times the median of
            the others' (0.85: 30% failures next to peers' 0% is out; 10% stays).
        min_calls: calls in the breaker window before a target's rate counts.

    Raises:
        ConfigError: on a ratio outside (0, 1] or min_calls under 1.
    """

    ratio: float = 0.85
    min_calls: int = 10

    def __attrs_post_init__(self) -> None:
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, int | float) or not 0 < self.ratio <= 1:
            raise ConfigError(f"Outliers ratio must be in (0, 1], not {self.ratio!r}")
        if isinstance(self.min_calls, bool) or not isinstance(self.min_calls, int) or self.min_calls < 1:
            raise ConfigError(
                f"Outliers min_calls must be a whole number of at least 1, not {self.min_calls!r}"
            )


def ejected(config: Outliers, health: Health, offers: Sequence[Offer], now: float) -> dict[Offer, str]:
    """The outliers among one model's ``offers``, each with why (empty with fewer than two measured)."""
    rates: list[tuple[Offer, float, int]] = []
    for offer in offers:
        calls, failures = health.breaker(offer.gateway or "", offer.gateway_model).window_counts(now)
        if calls >= config.min_calls:
            rates.append((offer, (calls - failures) / calls, calls))
    if len(rates) < 2:
        return {}
    import statistics  # ~160 KiB with fractions and decimal: loaded when there are rates to compare

    out: dict[Offer, str] = {}
    for offer, rate, calls in sorted(rates, key=lambda r: r[1]):
        if len(out) >= math.floor(len(rates) / 2):
            break
        median = statistics.median(r for o, r, _ in rates if o is not offer)
        if rate < config.ratio * median:
            out[offer] = (
                f"an outlier: {1 - rate:.0%} of its last {calls} calls failed, "
                f"against {1 - median:.0%} at the others (ranked last)"
            )
    return out
