"""The ``replicas`` scenario: several processes share one tiered account, each with a memory store of
its own and then, in the same run, all on one :class:`RedisStore`.

OneAI (the cheapest) has a tier of :data:`TIER` (two requests in flight), which the
emulator enforces with 429s and every process's router is told of. With memory stores
each process believes the whole tier is its own, so together they send up to N times
it and the emulator answers the excess 429 (each costs an attempt and closes the
account for its Retry-After); on one RedisStore they hold the tier between them and
send what does not fit to the next gateway at once.

The processes are ``_fleet``'s: each builds its router for the run, waits until all are
ready, sends its share of the requests open-loop and says what it saw.
"""

from __future__ import annotations

import shutil
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..providers import Tier
from ..providers.emulator import Emulator
from ._driver import Settings
from ._emuthread import EmulatorHost
from ._fleet import Fleet
from ._scenarios import GATEWAYS, extra_offers, healthy_faults

__all__ = [
    "PROCESSES",
    "TIER",
    "RedisServer",
    "redis_server_path",
    "replicas_table",
    "run_replicas",
    "summary",
]

PROCESSES = 4
TIER = Tier(concurrency=2)


def redis_server_path() -> str | None:
    """Where ``redis-server`` is, or None."""
    return shutil.which("redis-server")


class RedisServer:
    """A throwaway redis-server on a free port of 127.0.0.1 (no persistence)."""

    def __init__(self) -> None:
        path = redis_server_path()
        assert path is not None
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port: int = sock.getsockname()[1]
        self.url = f"redis://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.01)
        self.stop()
        raise RuntimeError("redis-server did not start")

    @property
    def pid(self) -> int:
        """Its process id."""
        return self._proc.pid

    def stop(self) -> None:
        """Stop it."""
        self._proc.terminate()
        self._proc.wait(timeout=10)

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def summary(results: Sequence[Mapping[str, Any]], rate_limited: int, served: int) -> dict[str, Any]:
    """One store's run over the fleet: what it saw, with the emulator's 429s and OneAI's answers."""
    latencies = sorted(x for r in results for x in r["latencies"])
    requests = sum(r["ok"] + sum(r["errors"].values()) for r in results)
    attempts = sum(sum(r["attempts"].values()) for r in results)

    def pct(q: float) -> float | None:
        return None if not latencies else latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000

    return {
        "processes": len(results),
        "requests": requests,
        "ok": sum(r["ok"] for r in results),
        "attempts_per_request": attempts / requests if requests else 0.0,
        "rate_limited": rate_limited,
        "oneai_answered": served,
        "latency_ms": {
            "p50": pct(0.5),
            "p95": pct(0.95),
            "mean": statistics.fmean(latencies) * 1000 if latencies else None,
        },
        "cpu_us_per_request": sum(r["cpu_s"] for r in results) / requests * 1e6 if requests else 0.0,
        "round_trips_per_request": sum(r.get("round_trips", 0) for r in results) / requests
        if requests
        else 0.0,
        "fallbacks": sum(r.get("fallbacks", 0) for r in results),
        "errors": {k: sum(r["errors"].get(k, 0) for r in results) for r in results for k in r["errors"]},
    }


async def run_replicas(
    emu: EmulatorHost, settings: Settings, redis_url: str, on_phase: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The scenario: :data:`PROCESSES` processes, first each on a memory store of its own, then all on
    one RedisStore, at the bench's total rate for one cell's duration; both runs' figures and what
    the Redis run cost over the memory run.

    Latencies are the gateways' full-scale ones even in ``--quick``: requests in flight, what the
    tier limits, grow with latency, so compressing it would leave nothing to share.
    """
    rate = settings.rate / PROCESSES
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    assert emu.emulator is not None
    urls = {name: emu.emulator.base_url(name) for name in GATEWAYS}

    def spec(store: str, i: int) -> dict[str, Any]:
        return {
            "urls": urls,
            "tiers": {"oneai": [TIER.rpm, TIER.tpm, TIER.concurrency]},
            "store": store,
            "redis": redis_url,
            "namespace": namespace,
            "replicas": PROCESSES,
            "requests": max(1, round(settings.duration * rate)),
            "rate": rate,
            "scale": settings.scale,
            "seed": settings.seed + i,
        }

    async def world(e: Emulator, tier: Tier | None) -> None:
        for name, offer in extra_offers().items():
            e.add_offers(name, [offer])
        for name in GATEWAYS:
            e.set_tier(name, tier if name == "oneai" else None)
            await e.set_faults(name, healthy_faults(name, 1.0))
        e.reset_stats()

    runs = {}
    async with Fleet([[spec(store, i) for store in ("memory", "redis")] for i in range(PROCESSES)]) as fleet:
        for store in ("memory", "redis"):
            if on_phase is not None:
                on_phase(f"replicas / {store}")
            await emu.run(lambda e: world(e, TIER))
            results = await fleet.next()
            counts = await emu.call(
                lambda e: (e.stats("oneai").rate_limited, e.stats("oneai").statuses.get(200, 0))
            )
            runs[store] = summary(results, *counts)
    await emu.run(lambda e: world(e, None))
    memory, redis = runs["memory"], runs["redis"]
    return {
        "processes": PROCESSES,
        "tier": {"oneai": {"concurrency": TIER.concurrency}},
        "rate_per_s": settings.rate,
        "runs": runs,
        "redis_overhead": {
            "latency_p50_ms": _minus(redis["latency_ms"]["p50"], memory["latency_ms"]["p50"]),
            "cpu_us_per_request": redis["cpu_us_per_request"] - memory["cpu_us_per_request"],
            "cpu_ratio": redis["cpu_us_per_request"] / memory["cpu_us_per_request"]
            if memory["cpu_us_per_request"]
            else None,
            "round_trips_per_request": redis["round_trips_per_request"],
        },
    }


def replicas_table(replicas: Mapping[str, Any]) -> Any:
    """The replicas scenario: the same fleet on memory stores and on one Redis, and what Redis cost."""
    processes, tier = replicas["processes"], replicas["tier"]["oneai"]["concurrency"]
    overhead = replicas["redis_overhead"]
    p50 = overhead["latency_p50_ms"]
    from rich import box
    from rich.table import Table

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:,.0f}"

    t = Table(
        title=f"switchyard bench: replicas ({processes} processes, one OneAI account of {tier} in flight)",
        box=box.SIMPLE_HEAD,
        header_style="bold",
        padding=(0, 1, 0, 0),
        pad_edge=False,
        title_justify="left",
        caption_justify="left",
        caption="429: the emulator's rate-limit answers; oneai: answers OneAI gave; cpu us: the "
        "processes' CPU per request; redis/req: round trips to Redis per request; local: admissions "
        "answered locally. "
        f"Redis over memory: p50 {'-' if p50 is None else f'{p50:+,.0f} ms'}, CPU "
        f"{overhead['cpu_us_per_request']:+,.0f} us a request"
        + ("" if overhead["cpu_ratio"] is None else f" (x{overhead['cpu_ratio']:.2f})"),
    )
    for i, column in enumerate(
        ("store", "ok", "att", "429", "oneai", "p50", "p95", "cpu us", "redis/req", "local")
    ):
        t.add_column(column, justify="left" if i == 0 else "right", no_wrap=True)
    for store, run in replicas["runs"].items():
        t.add_row(
            store,
            f"{run['ok'] / run['requests']:.1%}" if run["requests"] else "-",
            f"{run['attempts_per_request']:.2f}",
            str(run["rate_limited"]),
            str(run["oneai_answered"]),
            ms(run["latency_ms"]["p50"]),
            ms(run["latency_ms"]["p95"]),
            f"{run['cpu_us_per_request']:,.0f}",
            f"{run['round_trips_per_request']:.2f}" if store == "redis" else "-",
            str(run["fallbacks"]) if store == "redis" else "-",
        )
    return t


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b
