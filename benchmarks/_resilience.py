"""The README's resilience figures: what slow start, fast recovery, outlier ejection and hedging buy.

One table from full runs of ``switchyard bench``, each figure a range over the
runs, for the scenarios that measure the resilience knobs:

- ``cold-start-outage``: attempts a fresh router sent to the dead cheapest gateway
  before its breaker first opened (slow start keeps it to a few);
- ``long-outage``: seconds from the end of a 60 s outage until the gateway is back
  in use (breaks stay short when failures are fast);
- ``brownout`` against ``brownout-ejecting``: attempts per request and cost with
  outlier ejection off and on;
- ``slow-primary`` against ``slow-primary-hedged``: p99 latency, and the share of
  requests hedged (the duplicate spend: a hedged request may pay two gateways for
  the tokens generated before the loser is cancelled).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._figures import Figures, Report, latency, machine_line

__all__ = ["RESILIENCE_SCENARIOS", "resilience_block"]

RESILIENCE_SCENARIOS = (
    "cold-start-outage",
    "long-outage",
    "brownout",
    "brownout-ejecting",
    "slow-primary",
    "slow-primary-hedged",
)


def _degraded(c: Mapping[str, Any]) -> str | None:
    spans = c["impairments"]
    return str(spans[0]["gateway"]) if spans else None


def _before_trip(c: Mapping[str, Any]) -> float | None:
    gateway = _degraded(c)
    return None if gateway is None else float(c.get("before_trip", {}).get(gateway, 0))


def _hedged(c: Mapping[str, Any]) -> float:
    return float(c.get("hedges", 0)) / float(c["requests"])


def resilience_block(reports: Sequence[Report]) -> str:
    """A Markdown table of the resilience scenarios' figures, with the machine named."""
    figures = Figures(reports)
    rows = []
    columns: Sequence[tuple[str, Callable[[Mapping[str, Any]], Any], str]] = (
        ("att", lambda c: c["attempts_per_request"], ".2f"),
        ("cost", lambda c: c["cost_ratio"], ".2f"),
        ("p99 ms", latency("p99"), ",.0f"),
        ("to the dead gateway before its breaker opened", _before_trip, ".0f"),
        ("back s", lambda c: c["move_back_s"], ".2f"),
        ("hedged", _hedged, ".1%"),
    )
    for scenario in RESILIENCE_SCENARIOS:
        if scenario not in figures.scenarios:
            continue
        for i, policy in enumerate(figures.policies):
            cells = [scenario if i == 0 else "", policy]
            for _, figure, spec in columns:
                cells.append(figures.span(scenario, policy, figure).text(spec))
            rows.append(cells)
    head = ["scenario", "policy", *(name for name, _, _ in columns)]
    lines = [
        "`switchyard bench` (30 s cells; `long-outage` runs 90 s), every figure the range over the runs. "
        + machine_line(reports),
        "",
        "| " + " | ".join(head) + " |",
        "| " + " | ".join([":--", ":--", *["--:"] * len(columns)]) + " |",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    return "\n".join(lines) + "\n"
