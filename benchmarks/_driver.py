"""The load driver: one cell's requests, sent open-loop through a Router of its own.

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
import time
from collections import Counter
from collections.abc import Callable

import aiohttp
import attrs

from ..providers import Offer, ProviderGraph, RouterError, StreamChunk, Timeouts
from ..providers.emulator import Emulator
from ..router import BreakerConfig, Event, RetryBudget, Router
from ._emuthread import EmulatorHost
from ._metrics import Observed, Record
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

__all__ = ["MAX_TOKENS", "MESSAGES", "Settings", "bare_baseline", "drive"]

MESSAGES = [{"role": "user", "content": "In one sentence: why route across gateways?"}]
MAX_TOKENS = 24
REFERENCE = 30.0  # seconds a run stands for


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


def _router(
    graph: ProviderGraph, scenario: Scenario, policy: str, settings: Settings, hook: Callable[[Event], None]
) -> Router:
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
        hedge=scenario.hedge,
        outliers=scenario.outliers,
    )


async def drive(
    emu: EmulatorHost,
    scenario: Scenario,
    policy: str,
    settings: Settings,
    progress: Callable[[], None] | None = None,
) -> Observed:
    """Send one cell's requests under ``policy`` while the scenario's changes happen; say what was seen."""
    s = settings.scale
    duration = settings.duration * scenario.length  # the router's time constants stay at scale s
    await _reset(emu, s)
    loop = asyncio.get_running_loop()
    started: list[tuple[float, str]] = []
    finished: list[Event] = []
    trips = hedges = 0
    opened: set[str] = set()  # gateways a breaker has opened at
    before_trip: Counter[str] = Counter()  # attempts begun at each gateway before a breaker there opened
    t0 = 0.0

    def hook(event: Event) -> None:
        nonlocal trips, hedges
        if event.name == "attempt.started":
            started.append((loop.time() - t0, event.gateway or ""))
            if event.gateway not in opened:
                before_trip[event.gateway or ""] += 1
        elif event.name == "attempt.finished":
            finished.append(event)
        elif event.name == "breaker.opened":
            trips += 1
            opened.add(event.gateway or "")
        elif event.name == "hedge":
            hedges += 1

    graph = _graph(emu)
    assert emu.emulator is not None
    for name, offer in extra_offers().items():
        await emu.call(functools.partial(_add_offer, name=name, offer=offer))
    router = _router(graph, scenario, policy, settings, hook)
    cheapest_in, cheapest_out = min(PRICES.values())
    records: list[Record] = []

    async def one(record: Record) -> None:
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
            await asyncio.sleep(max(0.0, t0 + change.at * duration - loop.time()))
            await apply(change)

    async with router:
        t0 = loop.time()
        changes = asyncio.create_task(schedule())
        cpu0 = time.thread_time()
        tasks = []
        for _ in range(scenario.burst):  # a cold start under load: all at once, before the rest
            record = Record(at=0.0)
            records.append(record)
            tasks.append(asyncio.create_task(one(record)))
        for i in range(max(1, round(duration * settings.rate))):
            await asyncio.sleep(max(0.0, t0 + i / settings.rate - loop.time()))
            record = Record(at=loop.time() - t0)
            records.append(record)
            tasks.append(asyncio.create_task(one(record)))
        await asyncio.gather(*tasks)
        cpu = time.thread_time() - cpu0
        await changes
    emulated = await emu.call(lambda e: {name: e.stats(name).requests for name in GATEWAYS})
    return Observed(
        records=records,
        started=started,
        finished=finished,
        trips=trips,
        cpu_seconds=cpu,
        emulated=emulated,
        hedges=hedges,
        before_trip=dict(before_trip),
    )


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
