"""One cell of the benchmark: one scenario under one policy, open-loop load, every figure.

Requests arrive at a fixed rate for a fixed time whatever the answers do (an open
loop), so a slow gateway cannot throttle its own load and each gateway's share of
the traffic over time means what it says. The router's CPU is ``time.thread_time()``
of this thread (the emulator runs on its own), divided by the requests.

Time is compressed in ``--quick``: a run of ``duration`` seconds stands for a
30-second one, and every time constant of the world and of the router (latencies,
breaker windows and breaks, the latency policy's decay, the retry budget's window)
is scaled by ``duration / 30`` so that what happens in it keeps its shape.
"""

from __future__ import annotations

import asyncio
import functools
import json
import statistics
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import aiohttp
import attrs

from ..providers import Offer, ProviderGraph, RouterError, StreamChunk, Timeouts
from ..providers.emulator import Emulator
from ..router import BreakerConfig, Event, RetryBudget, Router
from ._emuthread import EmulatorHost
from ._scenarios import (
    GATEWAY_MODEL,
    GATEWAYS,
    MODEL,
    PRICES,
    Change,
    Scenario,
    extra_offers,
    healthy_faults,
    make_policy,
)

__all__ = ["CellResult", "Settings", "bare_baseline", "run_cell"]

MESSAGES = [{"role": "user", "content": "In one sentence: why route across gateways?"}]
MAX_TOKENS = 24
REFERENCE = 30.0  # seconds a run stands for
BINS = 20
WINDOW = 20  # attempts (half a second at 40 a second): the window for moving off a gateway and back


@attrs.frozen
class Settings:
    """How long, how hard and how fast-forwarded each cell runs."""

    duration: float = 30.0
    rate: float = 40.0
    seed: int = 0

    @property
    def scale(self) -> float:
        """The time compression: 1.0 for a 30 s cell."""
        return self.duration / REFERENCE

    @property
    def requests(self) -> int:
        """Requests per cell."""
        return max(1, round(self.duration * self.rate))


@attrs.define
class _Record:
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
class CellResult:
    """Every figure of one cell (JSON-ready through :meth:`to_json`)."""

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
    degraded_s: tuple[float, float] | None
    move_off_s: float | None
    move_back_s: float | None
    cpu_us_per_request: float
    counts_router: Mapping[str, int]
    counts_emulator: Mapping[str, int]
    latencies_ms: Sequence[float]

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


def _percentiles(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None}
    if len(values) == 1:
        v = values[0] * 1000
        return {"p50": v, "p95": v, "p99": v}
    q = statistics.quantiles(values, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p95": q[94] * 1000, "p99": q[98] * 1000}


async def _reset(emu: EmulatorHost, scale: float) -> None:
    async def reset(e: Emulator) -> None:
        for name in GATEWAYS:
            e.set_tier(name, None)
            await e.set_faults(name, healthy_faults(name, scale))
        e.reset_stats()

    await emu.run(reset)


def _add_offer(emulator: Emulator, *, name: str, offer: Offer) -> None:
    emulator.add_offers(name, [offer])


def _graph(emu: EmulatorHost) -> ProviderGraph:
    assert emu.emulator is not None
    graph = ProviderGraph.from_catalogs(emu.emulator.gateways())
    graph.add_offers(extra_offers().values())
    for name in ("onetoken", "onellm"):
        graph.set_price(name, GATEWAY_MODEL[name], *PRICES[name])
    return graph


def _router(graph: ProviderGraph, policy: str, settings: Settings, hook: Callable[[Event], None]) -> Router:
    s = settings.scale
    return Router(
        graph,
        policy=make_policy(policy, settings.seed, s),
        timeout=Timeouts(total=max(2.0, 30 * s), first_token=max(1.0, 10 * s), stall=max(0.25, 5 * s)),
        deadline=max(5.0, 60 * s),
        breaker=BreakerConfig(window=30 * s, base_break=5 * s, max_break=120 * s),
        retry_budget=RetryBudget(min_per_second=10 / s, ttl=10 * s),
        hooks=[hook],
        seed=settings.seed,
    )


async def run_cell(
    emu: EmulatorHost,
    scenario: Scenario,
    policy: str,
    settings: Settings,
    baseline_shares: Mapping[str, float] | None = None,
    progress: Callable[[], None] | None = None,
) -> CellResult:
    """Run one scenario under one policy and measure it."""
    s = settings.scale
    await _reset(emu, s)
    loop = asyncio.get_running_loop()
    started: list[tuple[float, str]] = []
    finished: list[Event] = []
    trips = 0
    t0 = 0.0

    def hook(event: Event) -> None:
        nonlocal trips
        if event.name == "attempt.started":
            started.append((loop.time() - t0, event.gateway or ""))
        elif event.name == "attempt.finished":
            finished.append(event)
        elif event.name == "breaker.opened":
            trips += 1

    graph = _graph(emu)
    assert emu.emulator is not None
    for name, offer in extra_offers().items():
        await emu.call(functools.partial(_add_offer, name=name, offer=offer))
    router = _router(graph, policy, settings, hook)
    cheapest_in, cheapest_out = min(PRICES.values())
    records: list[_Record] = []

    async def one(record: _Record) -> None:
        start = loop.time()
        try:
            if scenario.stream:
                final: StreamChunk | None = None
                async with router.stream(MODEL, MESSAGES, max_tokens=MAX_TOKENS, restart=True) as chunks:
                    async for chunk in chunks:
                        if chunk.restart:
                            record.restarts += 1
                        elif chunk.done:
                            final = chunk
                        elif record.ttft is None and chunk.text:
                            record.ttft = loop.time() - start
                assert final is not None and final.route is not None and final.usage is not None
                record.gateway, usage, record.cost = final.route.gateway, final.usage, final.cost_usd
            else:
                reply = await router.chat(MODEL, MESSAGES, max_tokens=MAX_TOKENS)
                record.gateway, usage, record.cost = reply.route.gateway, reply.usage, reply.cost_usd
            record.ok = True
            record.latency = loop.time() - start
            record.cheapest = (
                usage.prompt_tokens * cheapest_in + usage.completion_tokens * cheapest_out
            ) / 1e6
        except RouterError as exc:
            record.error = type(exc).__name__
        finally:
            if progress is not None:
                progress()

    async def apply(change: Change) -> None:
        async def on_emulator(e: Emulator) -> None:
            if change.tier is not None:
                e.set_tier(change.gateway, change.tier)
            faults = change.faults if change.faults is not None else healthy_faults(change.gateway, s)
            await e.set_faults(change.gateway, faults)

        await emu.run(on_emulator)

    timeline = sorted(scenario.changes, key=lambda c: c.at)
    for change in [c for c in timeline if c.at <= 0]:
        await apply(change)  # in place before the first request

    async def schedule() -> None:
        for change in [c for c in timeline if c.at > 0]:
            await asyncio.sleep(max(0.0, t0 + change.at * settings.duration - loop.time()))
            await apply(change)

    n = settings.requests
    async with router:
        t0 = loop.time()
        changes = asyncio.create_task(schedule())
        cpu0 = time.thread_time()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / settings.rate - loop.time()))
            record = _Record(at=loop.time() - t0)
            records.append(record)
            tasks.append(asyncio.create_task(one(record)))
        await asyncio.gather(*tasks)
        cpu = time.thread_time() - cpu0
        await changes
    emulated = await emu.call(lambda e: {name: e.stats(name).requests for name in GATEWAYS})

    reached: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for event in finished:
        outcomes[event.outcome or ""] += 1
        if event.outcome != "UpstreamConnectionError":
            reached[event.gateway or ""] += 1
    shares = _shares(started, settings.duration)
    off, back = _move_times(scenario, started, settings.duration, baseline_shares)
    succeeded = [r for r in records if r.ok]
    return CellResult(
        scenario=scenario.name,
        policy=policy,
        stream=scenario.stream,
        requests=n,
        succeeded=len(succeeded),
        attempts=len(finished),
        cost_usd=sum(r.cost or 0.0 for r in succeeded),
        cheapest_cost_usd=sum(r.cheapest or 0.0 for r in succeeded),
        latency_ms=_percentiles([r.latency for r in succeeded if r.latency is not None]),
        ttft_ms=_percentiles([r.ttft for r in succeeded if r.ttft is not None]) if scenario.stream else None,
        rate_limited=outcomes["RateLimited"],
        breaker_trips=trips,
        restarts=sum(r.restarts for r in records),
        errors=dict(Counter(r.error for r in records if r.error is not None)),
        shares=shares,
        bin_seconds=settings.duration / BINS,
        degraded_s=_degraded_seconds(scenario, settings.duration),
        move_off_s=off,
        move_back_s=back,
        cpu_us_per_request=cpu / n * 1e6,
        counts_router={name: reached[name] for name in GATEWAYS},
        counts_emulator=emulated,
        latencies_ms=sorted((r.latency or 0.0) * 1000 for r in succeeded),
    )


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
) -> tuple[float | None, float | None]:
    """How long the router took to move off the degraded gateway, and back onto it.

    The gateway's share of the last ``window`` attempts is compared with half its
    share in the healthy cell of the same policy. Off: seconds from the degradation
    until the share fell under half and stayed there until the recovery (or the end);
    a policy that keeps sending the gateway its share, failing over after each
    failure, never moved off. Back: seconds from the recovery until the share first
    rose over half again. Each count starts afresh at its moment, so the resolution
    is the time ``window`` attempts take. None where it does not apply (nothing
    degrades, or the policy did not use the gateway when healthy) or never happens.
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
    off_at: float | None = None
    for at, share in shares(since, until):
        if share >= half:
            off_at = None
        elif off_at is None:
            off_at = at
    back = None
    if end is not None:
        back = next((at - until for at, share in shares(until, duration) if share >= half), None)
    return (None if off_at is None else off_at - since), back


async def bare_baseline(
    emu: EmulatorHost,
    settings: Settings,
    progress: Callable[[], None] | None = None,
    *,
    stream: bool = False,
) -> float:
    """Thread CPU microseconds per request of a bare aiohttp client doing the same POST against healthy
    OneAI, at the same open-loop rate, with the same progress callback: reading and parsing the JSON
    body, or (``stream``) reading the SSE lines and parsing each event's JSON."""
    await _reset(emu, settings.scale)
    assert emu.emulator is not None
    url = emu.emulator.base_url("oneai") + "/chat/completions"
    await emu.call(lambda e: e.add_offers("oneai", [extra_offers()["oneai"]]))
    body = {"model": MODEL, "messages": MESSAGES, "max_tokens": MAX_TOKENS, "stream": stream}
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    loop = asyncio.get_running_loop()

    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            try:
                async with session.post(url, data=json.dumps(body).encode(), headers=headers) as response:
                    if not stream:
                        json.loads(await response.read())
                        return
                    async for line in response.content:
                        if line.startswith(b"data: ") and not line.startswith(b"data: [DONE]"):
                            json.loads(line[6:])
            finally:
                if progress is not None:
                    progress()

        n = settings.requests
        t0 = loop.time()
        cpu0 = time.thread_time()
        tasks = []
        for i in range(n):
            await asyncio.sleep(max(0.0, t0 + i / settings.rate - loop.time()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
        return (time.thread_time() - cpu0) / n * 1e6
