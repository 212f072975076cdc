"""The benchmark's world: one model at four gateways, its prices, latencies, and what goes wrong.

The workload asks for ``gpt-4o-mini``, which OneLLM and Onetoken sell in their
catalogs; the emulator also serves it at OneAI and OneRouter, so all four compete
for it. Only OneAI publishes prices and nobody publishes this model's, so the
benchmark states its own (USD per million tokens, input/output), cheapest first:
OneAI 0.10/0.40, OneRouter 0.12/0.48, Onetoken 0.15/0.60, OneLLM 0.20/0.80.
Latencies are lognormal (median and p99 per gateway, Onetoken the fastest); a
stream's first token comes after 40% of that, its chunks 20 ms apart (scaled with
the rest in ``--quick``). Each scenario changes one thing at a point of the run,
given as a fraction of its duration.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from ..policies import CheapestPerToken, FailoverOn5xx, LowestLatency, OrderingPolicy
from ..providers import Offer, Tier
from ..providers.emulator import Faults, Latency
from ..router import Hedge, Outliers

__all__ = [
    "GATEWAYS",
    "MODEL",
    "POLICIES",
    "PRICES",
    "SCENARIOS",
    "Change",
    "Impairment",
    "Scenario",
    "healthy_faults",
    "make_policy",
]

MODEL = "gpt-4o-mini"
GATEWAYS = ("oneai", "onerouter", "onetoken", "onellm")
GATEWAY_MODEL = {
    "oneai": "gpt-4o-mini",
    "onerouter": "gpt-4o-mini",
    "onetoken": "gpt-4o-mini",
    "onellm": "GPT-4o-mini",
}
PRICES = {"oneai": (0.10, 0.40), "onerouter": (0.12, 0.48), "onetoken": (0.15, 0.60), "onellm": (0.20, 0.80)}
# (median, p99) seconds for a complete reply.
LATENCY = {"oneai": (0.40, 1.5), "onerouter": (0.50, 1.8), "onetoken": (0.30, 1.0), "onellm": (0.60, 2.0)}
INTER_CHUNK = 0.02


def extra_offers() -> dict[str, Offer]:
    """The offers the emulator and the graph add, so all four gateways sell the model."""
    return {
        name: Offer(MODEL, GATEWAY_MODEL[name], *PRICES[name], 128_000, gateway=name)
        for name in ("oneai", "onerouter")
    }


def healthy_faults(gateway: str, scale: float, slower: float = 1.0) -> Faults:
    """A gateway's normal latency, scaled (and ``slower`` times its normal self)."""
    median, p99 = (x * scale * slower for x in LATENCY[gateway])
    return Faults(
        latency=Latency.lognormal(median, p99),
        ttft=Latency.lognormal(0.4 * median, 0.4 * p99),
        inter_chunk=INTER_CHUNK * scale,
    )


@attrs.frozen
class Change:
    """At ``at`` (a fraction of the run), ``gateway`` gets ``faults`` (None: back to healthy).

    ``tier``: a limit the emulator starts enforcing; ``what``: a few words for the plots
    ("refuses connections"), for a change that impairs the gateway.
    """

    at: float
    gateway: str
    faults: Faults | None
    tier: Tier | None = None
    what: str = ""

    @property
    def impairs(self) -> bool:
        """The gateway is worse than healthy from this change on."""
        return self.faults is not None or self.tier is not None


@attrs.frozen
class Impairment:
    """``gateway`` is impaired (``what``) from ``start`` to ``end``, in seconds of the run."""

    gateway: str
    what: str
    start: float
    end: float


@attrs.frozen
class Scenario:
    """One thing going wrong, and how to read what the router did about it.

    Attributes:
        name: the scenario's name on the command line.
        description: one line for the table.
        changes: what happens when.
        stream: the workload streams (``router.stream(restart=True)``).
        degraded: the gateway that degrades and (start, end) fractions of the run, for
            the time to move off it and back (end None: it never recovers).
        hedge: the router hedges slow requests with this (None: it does not).
        outliers: the router ranks outliers last with this (None: it does not).
        burst: requests sent all at once at the start, before the steady load (a cold
            start under load).
        length: the cell runs this many times the usual duration (the router's time
            constants are not stretched: a long outage is long to it).
    """

    name: str
    description: str
    changes: tuple[Change, ...] = ()
    stream: bool = False
    degraded: tuple[str, float, float | None] | None = None
    hedge: Hedge | None = None
    outliers: Outliers | None = None
    burst: int = 0
    length: float = 1.0

    def impairments(self, duration: float) -> tuple[Impairment, ...]:
        """Each span of a run of ``duration`` seconds in which a gateway is impaired, in time order."""
        spans: list[Impairment] = []
        open_: dict[str, Change] = {}

        def close(change: Change, at: float) -> None:
            spans.append(Impairment(change.gateway, change.what, change.at * duration, at * duration))

        for change in sorted(self.changes, key=lambda c: c.at):
            if change.gateway in open_:
                close(open_.pop(change.gateway), change.at)
            if change.impairs:
                open_[change.gateway] = change
        for change in open_.values():
            close(change, 1.0)
        return tuple(sorted(spans, key=lambda i: (i.start, i.gateway)))


def scenarios(scale: float) -> dict[str, Scenario]:
    """Every scenario, with delays scaled by ``scale``."""
    healthy = healthy_faults("oneai", scale)
    # 300 RPM over a 30 s run; its burst (a minute's worth) shrinks with the run, so the
    # storm has the same shape in --quick: about a third of the load fits.
    storm_rpm = max(1, round(300 * scale))
    return {
        s.name: s
        for s in (
            Scenario("healthy", "four gateways, their prices, realistic latencies"),
            Scenario(
                "gateway-down",
                "the cheapest (OneAI) refuses connections throughout",
                (Change(0.0, "oneai", Faults(outage="refuse"), what="refuses connections"),),
                degraded=("oneai", 0.0, None),
            ),
            Scenario(
                "down-recovering",
                "OneAI refuses connections for the first half, then recovers",
                (
                    Change(0.0, "oneai", Faults(outage="refuse"), what="refuses connections"),
                    Change(0.5, "oneai", None),
                ),
                degraded=("oneai", 0.0, 0.5),
            ),
            brownout(healthy, "brownout", None),
            Scenario(
                "429-storm",
                f"OneAI enforces a tier of {storm_rpm} RPM the router was not told of",
                (
                    Change(
                        0.0,
                        "oneai",
                        None,
                        tier=Tier(rpm=storm_rpm),
                        what="enforces an RPM tier unknown to the router",
                    ),
                ),
                degraded=("oneai", 0.0, None),
            ),
            Scenario(
                "latency-shift",
                "the fastest (Onetoken) turns 6x slower from 25% to 50% of the run",
                (
                    Change(
                        0.25,
                        "onetoken",
                        healthy_faults("onetoken", scale, slower=6.0),
                        what="turns 6x slower",
                    ),
                    Change(0.5, "onetoken", None),
                ),
                degraded=("onetoken", 0.25, 0.5),
            ),
            Scenario(
                "stalled-cut-streams",
                "streams: OneAI cuts after 3 chunks, OneRouter stalls after 2",
                (
                    Change(
                        0.0, "oneai", attrs.evolve(healthy, cut_after=3), what="cuts streams after 3 chunks"
                    ),
                    Change(
                        0.0,
                        "onerouter",
                        attrs.evolve(healthy_faults("onerouter", scale), stall_after=2),
                        what="stalls streams after 2 chunks",
                    ),
                ),
                stream=True,
            ),
            Scenario(
                "cold-start-outage",
                "a fresh router, 100 requests at once, and the cheapest (OneAI) refusing connections",
                (Change(0.0, "oneai", Faults(outage="refuse"), what="refuses connections"),),
                degraded=("oneai", 0.0, None),
                burst=100,
            ),
            Scenario(
                "long-outage",
                "OneAI refuses connections for 60 s of a 90 s run, then recovers",
                (
                    Change(0.0, "oneai", Faults(outage="refuse"), what="refuses connections"),
                    Change(2 / 3, "oneai", None),
                ),
                degraded=("oneai", 0.0, 2 / 3),
                length=3.0,
            ),
            brownout(healthy, "brownout-ejecting", Outliers()),
            slow_primary(scale, "slow-primary", None),
            slow_primary(scale, "slow-primary-hedged", Hedge()),
        )
    }


def brownout(healthy: Faults, name: str, outliers: Outliers | None) -> Scenario:
    """30% of OneAI's answers are 503 (with ``outliers``: the router ranks outliers last)."""
    ejecting = "" if outliers is None else "; the router ejects outliers"
    return Scenario(
        name,
        f"30% of OneAI's answers are 503{ejecting}",
        (Change(0.0, "oneai", attrs.evolve(healthy, errors={503: 0.3}), what="answers 30% with 503"),),
        degraded=("oneai", 0.0, None),
        outliers=outliers,
    )


def slow_primary(scale: float, name: str, hedge: Hedge | None) -> Scenario:
    """The cheapest (OneAI) has a long tail: median 0.4 s, p99 8 s (with ``hedge``: hedged)."""
    tail = healthy_faults("oneai", scale)
    tail = attrs.evolve(tail, latency=Latency.lognormal(0.4 * scale, 8.0 * scale))
    hedging = "" if hedge is None else "; the router hedges at its p95"
    return Scenario(
        name,
        f"OneAI's answers have a long tail (p99 8 s){hedging}",
        (Change(0.0, "oneai", tail, what="has a long latency tail"),),
        hedge=hedge,
    )


SCENARIOS: Sequence[str] = tuple(scenarios(1.0))
POLICIES: Sequence[str] = ("cheapest", "latency", "failover")


def make_policy(name: str, seed: int, scale: float = 1.0) -> OrderingPolicy:
    """A fresh policy by its bench name, its time constants scaled by ``scale``."""
    if name == "cheapest":
        return CheapestPerToken()
    if name == "latency":
        return LowestLatency(decay=10.0 * scale, failure_penalty=5.0 * scale, seed=seed)
    if name == "failover":
        return FailoverOn5xx(list(GATEWAYS))
    raise ValueError(f"no policy {name!r}; choose from {', '.join(POLICIES)}")
