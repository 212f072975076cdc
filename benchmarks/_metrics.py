"""The figures of one cell, from what its load driver observed.

Success rate, upstream attempts per request, cost against the cheapest price,
latency (and time to first token) percentiles, 429s received, breaker trips,
restarts, errors, each gateway's share of the attempts over time, how long the
router took to move off a degraded gateway and back, the router's CPU per
request, and the attempts the router and the emulator each counted.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs

from ..router import Event
from ._scenarios import GATEWAYS, Impairment, Scenario

__all__ = ["BINS", "HOLD", "WINDOW", "CellResult", "Observed", "Record", "measure"]

BINS = 20
WINDOW = 20  # attempts (half a second at 40 a second): the window for moving off a gateway and back
# Moving off must hold for at least this share of the degraded period: a dip that does not last (or
# one in the period's last moments, which nothing after it confirms) is not moving off.
HOLD = 0.1


@attrs.define
class Record:
    """One request as the driver saw it: when it was sent (seconds into the run) and how it went."""

    at: float
    latency: float | None = None
    ttft: float | None = None
    ok: bool = False
    gateway: str | None = None
    cost: float | None = None
    cheapest: float | None = None
    error: str | None = None
    restarts: int = 0


@attrs.frozen
class Observed:
    """Everything the driver saw in one cell.

    Attributes:
        records: one per request, in the order they were sent.
        started: each attempt's start (seconds into the run) and gateway.
        finished: the ``attempt.finished`` events.
        trips: ``breaker.opened`` events.
        cpu_seconds: the thread CPU time the requests took.
        emulated: the chat requests each gateway of the emulator received.
        hedges: requests whose twin went to a second gateway.
        before_trip: attempts begun at each gateway before a breaker there first opened.
    """

    records: Sequence[Record]
    started: Sequence[tuple[float, str]]
    finished: Sequence[Event]
    trips: int
    cpu_seconds: float
    emulated: Mapping[str, int]
    hedges: int = 0
    before_trip: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class CellResult:
    """Every figure of one cell (JSON-ready through :meth:`to_json`).

    ``attempt_log`` keeps each attempt's start (seconds into the cell) and gateway, what
    the shares and the move times are computed from, so a results file can be read again.
    """

    scenario: str
    policy: str
    stream: bool
    requests: int
    succeeded: int
    attempts: int
    cost_usd: float
    cheapest_cost_usd: float
    latency_ms: Mapping[str, float | None]
    ttft_ms: Mapping[str, float | None] | None
    rate_limited: int
    breaker_trips: int
    restarts: int
    errors: Mapping[str, int]
    shares: Mapping[str, Sequence[float]]
    bin_seconds: float
    impairments: Sequence[Impairment]
    degraded_s: tuple[float, float] | None
    move_off_s: float | None
    move_back_s: float | None
    cpu_us_per_request: float
    counts_router: Mapping[str, int]
    counts_emulator: Mapping[str, int]
    latencies_ms: Sequence[float]
    ttfts_ms: Sequence[float]
    attempt_log: Sequence[tuple[float, str]]
    tried: Mapping[str, int] = attrs.field(factory=dict)  # attempts begun, per gateway (refused ones too)
    hedges: int = 0  # requests whose twin went to a second gateway
    before_trip: Mapping[str, int] = attrs.field(
        factory=dict
    )  # attempts begun before its first breaker opened

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CellResult:
        """The cell :meth:`to_json` wrote (derived figures are recomputed, not read); a file from
        before a field existed gives that field its default."""
        fields = {f.name: f for f in attrs.fields(cls)}
        values = {name: data[name] for name in fields if name != "impairments" and name in data}
        values["impairments"] = tuple(Impairment(**i) for i in data["impairments"])
        values["attempt_log"] = tuple((float(at), str(gateway)) for at, gateway in data["attempt_log"])
        if values["degraded_s"] is not None:
            values["degraded_s"] = tuple(values["degraded_s"])
        return cls(**values)

    @property
    def success_rate(self) -> float:
        """Succeeded / requests."""
        return self.succeeded / self.requests if self.requests else 0.0

    @property
    def attempts_per_request(self) -> float:
        """Upstream attempts per request."""
        return self.attempts / self.requests if self.requests else 0.0

    @property
    def cost_ratio(self) -> float | None:
        """Cost against serving every success at the cheapest price."""
        return self.cost_usd / self.cheapest_cost_usd if self.cheapest_cost_usd else None

    @property
    def counts_agree(self) -> bool:
        """The emulator received exactly the attempts the router says reached it."""
        return dict(self.counts_router) == dict(self.counts_emulator)

    def to_json(self) -> dict[str, Any]:
        """The cell as a JSON object."""
        out = attrs.asdict(self, recurse=True)
        out.update(
            success_rate=self.success_rate,
            attempts_per_request=self.attempts_per_request,
            cost_ratio=self.cost_ratio,
            counts_agree=self.counts_agree,
        )
        return out


def measure(
    scenario: Scenario,
    policy: str,
    duration: float,
    observed: Observed,
    baseline_shares: Mapping[str, float] | None = None,
) -> CellResult:
    """The figures of one cell of ``duration`` seconds.

    ``baseline_shares`` are the policy's gateway shares in the healthy cell, which
    moving off a degraded gateway and back is measured against.
    """
    records = observed.records
    n = len(records)
    reached: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for event in observed.finished:
        outcomes[event.outcome or ""] += 1
        if event.outcome != "UpstreamConnectionError":
            reached[event.gateway or ""] += 1
    off, back = _move_times(scenario, observed.started, duration, baseline_shares)
    succeeded = [r for r in records if r.ok]
    return CellResult(
        scenario=scenario.name,
        policy=policy,
        stream=scenario.stream,
        requests=n,
        succeeded=len(succeeded),
        attempts=len(observed.finished),
        cost_usd=sum(r.cost or 0.0 for r in succeeded),
        cheapest_cost_usd=sum(r.cheapest or 0.0 for r in succeeded),
        latency_ms=_percentiles([r.latency for r in succeeded if r.latency is not None]),
        ttft_ms=_percentiles([r.ttft for r in succeeded if r.ttft is not None]) if scenario.stream else None,
        rate_limited=outcomes["RateLimited"],
        breaker_trips=observed.trips,
        restarts=sum(r.restarts for r in records),
        errors=dict(Counter(r.error for r in records if r.error is not None)),
        shares=_shares(observed.started, duration),
        bin_seconds=duration / BINS,
        impairments=scenario.impairments(duration),
        degraded_s=_degraded_seconds(scenario, duration),
        move_off_s=off,
        move_back_s=back,
        cpu_us_per_request=observed.cpu_seconds / n * 1e6,
        counts_router={name: reached[name] for name in GATEWAYS},
        counts_emulator=dict(observed.emulated),
        latencies_ms=sorted((r.latency or 0.0) * 1000 for r in succeeded),
        ttfts_ms=sorted(r.ttft * 1000 for r in succeeded if r.ttft is not None),
        attempt_log=tuple((round(at, 4), gateway) for at, gateway in observed.started),
        tried=dict(Counter(gateway for _, gateway in observed.started)),
        hedges=observed.hedges,
        before_trip=dict(observed.before_trip),
    )


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    if len(values) == 1:
        v = values[0] * 1000
        return {"p50": v, "p95": v, "p99": v}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000}


def _degraded_seconds(scenario: Scenario, duration: float) -> tuple[float, float] | None:
    """When the scenario's gateway is degraded, in seconds of the run."""
    if scenario.degraded is None:
        return None
    _, begin, end = scenario.degraded
    return begin * duration, (1.0 if end is None else end) * duration


def _shares(started: Sequence[tuple[float, str]], duration: float) -> dict[str, list[float]]:
    """Each gateway's share of the attempts begun in each of BINS slices of the run."""
    width = duration / BINS
    counts = [Counter[str]() for _ in range(BINS)]
    for at, gateway in started:
        counts[min(BINS - 1, max(0, int(at / width)))][gateway] += 1
    return {
        name: [(c[name] / sum(c.values())) if sum(c.values()) else 0.0 for c in counts] for name in GATEWAYS
    }


def _move_times(
    scenario: Scenario,
    started: Sequence[tuple[float, str]],
    duration: float,
    baseline: Mapping[str, float] | None,
    window: int = WINDOW,
    hold: float = HOLD,
) -> tuple[float | None, float | None]:
    """How long the router took to move off the degraded gateway, and back onto it.

    The gateway's share of the last ``window`` attempts is compared with half its
    share in the healthy cell of the same policy. Off: seconds from the degradation
    until the share fell under half and then stayed under for ``hold`` of the
    degraded period (the first such fall; the hold must fit inside the period). So a
    dip that does not last is not moving off, off can never be the end of the cell,
    and a brief return later (a breaker probe, a rate limit's refill) does not undo
    a move that held. A policy that keeps sending the gateway its share, failing
    over after each failure, never moved off. Back: seconds from the recovery until
    the share first rose over half again. Each count starts afresh at its moment, so
    the resolution is the time ``window`` attempts take. None where it does not apply
    (nothing degrades, or the policy did not use the gateway when healthy) or never
    happens.
    """
    if scenario.degraded is None or baseline is None:
        return None, None
    gateway, begin, end = scenario.degraded
    half = baseline.get(gateway, 0.0) / 2
    if half <= 0.025:
        return None, None  # the policy did not use this gateway when healthy: nothing to move off

    def shares(since: float, until: float) -> Iterator[tuple[float, float]]:
        recent: deque[bool] = deque(maxlen=window)
        for at, name in started:
            if since <= at < until:
                recent.append(name == gateway)
                if len(recent) == window:
                    yield at, sum(recent) / window

    since, until = begin * duration, (duration if end is None else end * duration)
    held = hold * (until - since)
    off: float | None = None
    fell: float | None = None  # when the share last fell under half, while it has stayed under since
    for at, share in shares(since, until):
        if share >= half:
            fell = None
        elif fell is None:
            fell = at
        if fell is not None and at - fell >= held:
            off = fell - since
            break
    back = None
    if end is not None:
        back = next((at - until for at, share in shares(until, duration) if share >= half), None)
    return off, back
