"""How the provider graph scales: building it, and merging a live refresh, at 1k to 100k offers.

For each size the script builds a custom gateway selling ``n`` synthetic offers
(vendor-prefixed ids, as a large aggregator lists them), then measures:

- build: ``ProviderGraph.from_catalogs``, the first (cold) one and the best of a few;
- three refreshes of a models listing served from loopback, each fetched, parsed and
  merged: 1, the same ``n`` ids plus 1% new ones (the index is assembled anew); 2, the
  same ids at new prices (every offer changes); 3, the same listing again (nothing
  changes);
- for each refresh: the CPU time of the graph's merge (``ProviderGraph._merge_listings``,
  every thread), of the whole refresh, and the event loop's longest lag meanwhile (how
  late a 1 ms ticker woke: what a request waiting then would feel), with the garbage
  collector's longest pause and full collections, which hold the loop up too.

Times are CPU seconds of the process (``time.process_time``: every thread), so another
job on the machine does not inflate them; lags are wall time. With ``--baseline REF``
each size is measured for the code at git ``REF`` (its ``providers/``, with this script)
and for this code in turn, each in a fresh process (``--repeat`` times, medians shown), and the
table gives the ratio.

Run: ``python -m switchyard.benchmarks.graph_scale [--sizes 1000,10000,100000] [--runs 3]
[--baseline main [--repeat 3]] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import importlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from ..providers import Offer, ProviderGraph

__all__ = ["main", "measure", "synthetic_ids", "synthetic_offers"]

_VENDORS: Final = ("openai", "anthropic", "meta", "mistral", "qwen", "google", "deepseek", "cohere")
_FAMILIES: Final = ("gpt", "claude", "llama", "mixtral", "qwen", "gemini", "deepseek", "command")
_REAL: Final = ("gpt-4o-mini", "gpt-4o", "claude-3.5-sonnet")
_BASELINE: Final = "_graph_scale_baseline"  # the package name the baseline's providers/ load under
_REFRESHES: Final = ("new_ids", "new_prices", "unchanged")


def synthetic_ids(n: int, start: int = 0) -> list[str]:
    """``n`` similar-looking wire ids (``openai/gpt-12b-instruct-123``): the hard case for lookups."""
    return [
        f"{_VENDORS[i % 8]}/{_FAMILIES[i // 8 % 8]}-{i % 97}b-instruct-{i}" for i in range(start, start + n)
    ]


def synthetic_offers(n: int, api: types.ModuleType | None = None) -> list[Offer]:
    """``n`` priced offers: a few real names, then :func:`synthetic_ids` (``api``: the providers package)."""
    make = Offer if api is None else api.Offer
    real = [make(m, input_price=1.0, output_price=2.0, context_window=128_000) for m in _REAL]
    rest = [
        make(i, input_price=0.5, output_price=1.5, context_window=32_000)
        for i in synthetic_ids(max(n - len(real), 0))
    ]
    return (real + rest)[:n]


def _listing(ids: list[str], price: float) -> bytes:
    per_token = f"{price / 1e6:.12f}"
    data = [
        {"id": i, "context_length": 32_000, "pricing": {"prompt": per_token, "completion": per_token}}
        for i in ids
    ]
    return json.dumps({"data": data}).encode()


@asynccontextmanager
async def _serve(bodies: list[bytes]) -> AsyncIterator[str]:
    """A loopback server answering ``/v1/models`` with each body in turn; yields its base URL."""

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=bodies.pop(0), content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/v1"
    finally:
        await runner.cleanup()


class _Ticker:
    """A task that sleeps 1 ms at a time and keeps every gap (before, after) the loop made it wait."""

    def __init__(self) -> None:
        self.gaps: list[tuple[float, float]] = []
        self._task: asyncio.Task[None] | None = None
        self._done = False

    async def _run(self) -> None:
        while not self._done:
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            after = time.perf_counter()
            if after - before > 0.002:
                self.gaps.append((before + 0.001, after))

    async def __aenter__(self) -> _Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._done = True
        assert self._task is not None
        await self._task

    def worst(self, within: list[tuple[float, float]] | None = None) -> float:
        """The longest gap, or the longest part of one inside the ``within`` intervals."""
        if within is None:
            return max((after - before for before, after in self.gaps), default=0.0)
        return max(
            (min(after, end) - max(before, start) for before, after in self.gaps for start, end in within),
            default=0.0,
        )


class _GCLog:
    """The garbage collector's pauses while it is entered: (generation, seconds) each."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []
        self._started = 0.0

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append((info["generation"], time.perf_counter() - self._started))

    def __enter__(self) -> _GCLog:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    def figures(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}gc_max_ms": max((s for _, s in self.pauses), default=0.0) * 1e3,
            f"{prefix}gc_full": sum(1 for g, _ in self.pauses if g == 2),
        }


class _MergeTimer:
    """When the graph's listing merge ran, and the process CPU time it took (this script only)."""

    def __init__(self, graph_type: Any) -> None:
        self.intervals: list[tuple[float, float]] = []
        self.cpu = 0.0
        self._type = graph_type
        self._real = graph_type._merge_listings

    def __enter__(self) -> _MergeTimer:
        real = self._real

        @functools.wraps(real)
        async def timed(graph: Any, listings: Any) -> None:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                await real(graph, listings)
            finally:
                self.cpu += time.process_time() - cpu
                self.intervals.append((started, time.perf_counter()))

        self._type._merge_listings = timed
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._type._merge_listings = self._real


async def _refreshes(api: types.ModuleType, n: int, offers: list[Any]) -> dict[str, float]:
    ids = [o.gateway_model for o in offers]
    listed = ids + synthetic_ids(max(n // 100, 1), start=10_000_000)
    bodies = [_listing(listed, 0.7), _listing(listed, 0.9), _listing(listed, 0.9)]
    async with _serve(bodies) as base_url:
        gateway = api.Gateway.openai_compatible("big", base_url, "k", offers=offers, models_path="/models")
        graph = api.ProviderGraph.from_catalogs([gateway])
        figures: dict[str, float] = {}
        for name in _REFRESHES:
            with _MergeTimer(api.ProviderGraph) as merge, _GCLog() as collections:
                async with _Ticker() as ticker:
                    cpu = time.process_time()
                    report = await graph.refresh(force=True, timeout=120)
                    cpu = time.process_time() - cpu
            if report.failed:
                raise RuntimeError(f"refresh failed: {report.failed}")
            figures[f"{name}_refresh_cpu_ms"] = cpu * 1e3
            figures[f"{name}_merge_cpu_ms"] = merge.cpu * 1e3
            figures[f"{name}_lag_ms"] = ticker.worst() * 1e3
            figures[f"{name}_merge_lag_ms"] = ticker.worst(merge.intervals) * 1e3
            figures.update(collections.figures(f"{name}_"))
        assert len(graph) == len(listed), (len(graph), len(listed))
        assert graph.offer("big", listed[-1]).input_price == 0.9
    return figures


def _measure_one(api: types.ModuleType, n: int, runs: int) -> dict[str, float]:
    """One size, with ``api`` (this code's providers package, or the baseline's)."""
    offers = synthetic_offers(n, api)
    gateway = api.Gateway.openai_compatible("big", "http://127.0.0.1:1/v1", "k", offers=offers)
    builds, logs = [], []
    for _ in range(runs):
        with _GCLog() as collections:
            started = time.process_time()
            graph = api.ProviderGraph.from_catalogs([gateway])
            builds.append(time.process_time() - started)
        logs.append(collections)
    target = offers[n // 2].gateway_model
    started = time.process_time()
    graph.set_price("big", target, 1.0, 2.0)
    row: dict[str, float] = {"offers": n, "build_cold_cpu_ms": builds[0] * 1e3}
    row["build_cpu_ms"] = min(builds) * 1e3
    row["set_price_cpu_ms"] = (time.process_time() - started) * 1e3
    row.update(logs[0].figures("build_"))
    del graph
    row.update(asyncio.run(_refreshes(api, n, offers)))
    return row


def measure(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), runs: int = 3) -> list[dict[str, float]]:
    """Build and refresh figures for each size, for this code, in this process (milliseconds)."""
    api = importlib.import_module(ProviderGraph.__module__.rpartition(".")[0])
    return [_measure_one(api, n, runs) for n in sizes]


def _export_baseline(ref: str, into: Path) -> Path:
    """Write the ``providers/`` package of git ``ref`` under ``into``, importable as ``_BASELINE``."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", ref, "providers"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "providers").rename(into / _BASELINE)
    return into


def _in_child(n: int, runs: int, baseline: Path | None) -> dict[str, float]:
    """Measure one size in a fresh interpreter: no heap, memo or warm cache carried over."""
    command = [sys.executable, "-m", __spec__.name if __spec__ else "switchyard.benchmarks.graph_scale"]
    command += ["--child", str(n), "--runs", str(runs)]
    if baseline is not None:
        command += ["--baseline-path", str(baseline)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    row: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return row


_COLUMNS: Final = (
    ("build_cold_cpu_ms", "build 1st"),
    ("build_cpu_ms", "build"),
    *((f"{r}_merge_cpu_ms", f"merge {i}") for i, r in enumerate(_REFRESHES, 1)),
    *((f"{r}_refresh_cpu_ms", f"refresh {i}") for i, r in enumerate(_REFRESHES, 1)),
    *((f"{r}_lag_ms", f"lag {i}") for i, r in enumerate(_REFRESHES, 1)),
    *((f"{r}_gc_max_ms", f"gc {i}") for i, r in enumerate(_REFRESHES, 1)),
)


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'offers':>9} {'code':>8} " + " ".join(f"{t:>10}" for _, t in _COLUMNS)]
    for row in rows:
        cells = " ".join(f"{row[k]:>10.1f}" for k, _ in _COLUMNS)
        lines.append(f"{row['offers']:>9,.0f} {row.get('code', 'this'):>8} {cells}")
        if "ratio" in row:
            ratios = " ".join(f"{row['ratio'].get(k, float('nan')):>10.2f}" for k, _ in _COLUMNS)
            lines.append(f"{'':>9} {'new/old':>8} {ratios}")
    return "\n".join(lines)


_NOTE: Final = (
    "milliseconds. build, merge, refresh: process CPU time (all threads); lag: the event loop's longest\n"
    "hold-up during the refresh (wall); gc: the collector's longest pause then (wall). Refresh 1: new ids\n"
    "(the index is assembled anew); 2: the same ids at new prices; 3: the same listing again."
)


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def _compare(sizes: tuple[int, ...], runs: int, ref: str, repeat: int) -> list[dict[str, Any]]:
    """Old and new code in turn, each size ``repeat`` times (interleaved, so both see the same load)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="graph-scale-") as tmp:
        baseline = _export_baseline(ref, Path(tmp))
        for n in sizes:
            olds, news = [], []
            for _ in range(repeat):
                olds.append(_in_child(n, runs, baseline))
                news.append(_in_child(n, runs, None))
            old: dict[str, Any] = {**_median(olds), "code": ref}
            new: dict[str, Any] = {**_median(news), "code": "this"}
            new["ratio"] = {k: new[k] / old[k] for k, _ in _COLUMNS if old.get(k)}
            rows += [old, new]
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table (milliseconds); write JSON with ``--json``."""
    parser = argparse.ArgumentParser(
        prog="python -m switchyard.benchmarks.graph_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated offer counts")
    parser.add_argument("--runs", type=int, default=3, help="builds per size (the first and the best shown)")
    parser.add_argument("--baseline", metavar="REF", help="compare with git REF's providers/")
    parser.add_argument("--repeat", type=int, default=1, help="with --baseline: runs of each; medians shown")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:  # one size in this fresh process, as JSON on the last line
        api: types.ModuleType | None = None
        if args.baseline_path:
            sys.path.insert(0, args.baseline_path)
            api = importlib.import_module(_BASELINE)
        row = _measure_one(api, args.child, args.runs) if api else measure((args.child,), args.runs)[0]
        print(json.dumps(row))
        return 0
    sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.baseline:
        rows = _compare(sizes, args.runs, args.baseline, args.repeat)
    else:
        rows = [{**row, "code": "this"} for row in measure(sizes, args.runs)]
    print(_table(rows))
    print(_NOTE)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"load_average": os.getloadavg(), "cpus": os.cpu_count(), "rows": rows}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
