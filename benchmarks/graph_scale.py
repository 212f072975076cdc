"""How the provider graph scales: building it, and merging a live refresh, at 1k to 100k offers.

For each size the script builds a custom gateway selling ``n`` synthetic offers
(vendor-prefixed ids, as a large aggregator lists them), then measures:

- build: ``ProviderGraph.from_catalogs`` (best of a few runs);
- refresh, first: a models listing of the same ``n`` ids plus 1% new ones, served
  from loopback, fetched, parsed and merged (new ids: the index is assembled anew);
- refresh, again: the same ids at new prices (only offers change: the index is patched);
- for each refresh, the longest the event loop went without running a 1 ms ticker
  (what a request waiting then would feel), and the same for the graph's merge alone
  (the rest is fetching and parsing the listing, in ``providers/_listing.py``);
- set_price: one user override at that size.

Run: ``python -m switchyard.benchmarks.graph_scale [--sizes 1000,10000,100000] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Final

from aiohttp import web

from ..providers import Gateway, Offer, ProviderGraph
from ._machine import provenance

__all__ = ["main", "measure", "synthetic_ids", "synthetic_offers"]

_VENDORS: Final = ("openai", "anthropic", "meta", "mistral", "qwen", "google", "deepseek", "cohere")
_FAMILIES: Final = ("gpt", "claude", "llama", "mixtral", "qwen", "gemini", "deepseek", "command")
_REAL: Final = ("gpt-4o-mini", "gpt-4o", "claude-3.5-sonnet")


def synthetic_ids(n: int, start: int = 0) -> list[str]:
    """``n`` similar-looking wire ids (``openai/gpt-12b-instruct-123``): the hard case for lookups."""
    return [
        f"{_VENDORS[i % 8]}/{_FAMILIES[i // 8 % 8]}-{i % 97}b-instruct-{i}" for i in range(start, start + n)
    ]


def synthetic_offers(n: int) -> list[Offer]:
    """``n`` priced offers: a few real names, then :func:`synthetic_ids`."""
    real = [Offer(m, input_price=1.0, output_price=2.0, context_window=128_000) for m in _REAL]
    rest = [
        Offer(i, input_price=0.5, output_price=1.5, context_window=32_000)
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


class _MergeTimer:
    """Records when the graph's listing merge ran (instrumentation for this script only)."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, float]] = []
        self._real = ProviderGraph._merge_listings

    @property
    def seconds(self) -> float:
        return sum(end - start for start, end in self.intervals)

    def __enter__(self) -> _MergeTimer:
        real = self._real

        @functools.wraps(real)
        async def timed(graph: ProviderGraph, listings: Any) -> None:
            started = time.perf_counter()
            try:
                await real(graph, listings)
            finally:
                self.intervals.append((started, time.perf_counter()))

        ProviderGraph._merge_listings = timed  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc_info: object) -> None:
        ProviderGraph._merge_listings = self._real  # type: ignore[method-assign]


async def _refreshes(n: int, offers: list[Offer]) -> dict[str, float]:
    ids = [o.gateway_model for o in offers]
    listed = ids + synthetic_ids(max(n // 100, 1), start=10_000_000)
    bodies = [_listing(listed, 0.7), _listing(listed, 0.9)]
    async with _serve(bodies) as base_url:
        gateway = Gateway.openai_compatible("big", base_url, "k", offers=offers, models_path="/models")
        graph = ProviderGraph.from_catalogs([gateway])
        figures: dict[str, float] = {}
        for name in ("first", "again"):
            with _MergeTimer() as merge:
                async with _Ticker() as ticker:
                    started = time.perf_counter()
                    report = await graph.refresh(force=True, timeout=120)
                    seconds = time.perf_counter() - started
            if report.failed:
                raise RuntimeError(f"refresh failed: {report.failed}")
            figures[f"refresh_{name}_ms"] = seconds * 1e3
            figures[f"stall_{name}_ms"] = ticker.worst() * 1e3
            figures[f"merge_{name}_ms"] = merge.seconds * 1e3
            figures[f"merge_stall_{name}_ms"] = ticker.worst(merge.intervals) * 1e3
        assert len(graph) == len(listed), (len(graph), len(listed))
        assert graph.offer("big", listed[-1]).input_price == 0.9
    return figures


def _best(runs: int, action: Callable[[], object]) -> float:
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def measure(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), runs: int = 3) -> list[dict[str, float]]:
    """Build and refresh-merge figures for each size, in milliseconds."""
    rows = []
    for n in sizes:
        offers = synthetic_offers(n)
        gateway = Gateway.openai_compatible("big", "http://127.0.0.1:1/v1", "k", offers=offers)
        build = _best(runs, lambda g=gateway: ProviderGraph.from_catalogs([g]))  # type: ignore[misc]
        graph = ProviderGraph.from_catalogs([gateway])
        target = offers[n // 2].gateway_model
        price = _best(runs, lambda g=graph, t=target: g.set_price("big", t, 1.0, 2.0))  # type: ignore[misc]
        row: dict[str, float] = {"offers": n, "build_ms": build * 1e3, "set_price_ms": price * 1e3}
        row.update(asyncio.run(_refreshes(n, offers)))
        rows.append(row)
    return rows


_COLUMNS: Final = (
    ("offers", "offers", "{:>9,.0f}"),
    ("build_ms", "build", "{:>9.1f}"),
    ("set_price_ms", "set_price", "{:>9.1f}"),
    ("refresh_first_ms", "refresh 1", "{:>9.1f}"),
    ("stall_first_ms", "stall 1", "{:>9.1f}"),
    ("merge_first_ms", "merge 1", "{:>9.1f}"),
    ("merge_stall_first_ms", "m.stall 1", "{:>9.1f}"),
    ("refresh_again_ms", "refresh 2", "{:>9.1f}"),
    ("stall_again_ms", "stall 2", "{:>9.1f}"),
    ("merge_again_ms", "merge 2", "{:>9.1f}"),
    ("merge_stall_again_ms", "m.stall 2", "{:>9.1f}"),
)


def main(argv: list[str] | None = None) -> int:
    """Print the table (milliseconds); write JSON with ``--json``."""
    parser = argparse.ArgumentParser(
        prog="python -m switchyard.benchmarks.graph_scale", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated offer counts")
    parser.add_argument("--runs", type=int, default=3, help="builds per size; the best is kept")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    head = provenance("graph_scale", argv, "python -m switchyard.benchmarks.graph_scale")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    rows = measure(sizes, args.runs)
    print(" ".join(f"{title:>9}" for _, title, _ in _COLUMNS) + "   (milliseconds)")
    for row in rows:
        print(" ".join(fmt.format(row[key]) for key, _, fmt in _COLUMNS))
    print(
        "refresh: fetch + parse + merge, end to end; stall: the longest the event loop was held up\n"
        "meanwhile; merge: the graph's part of the refresh; m.stall: the longest hold-up inside it.\n"
        "1: a listing with new ids (index assembled anew); 2: the same ids at new prices."
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**head, "rows": rows}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
