"""How the provider graph scales: building it, and merging a live refresh, at 1k to 100k offers.

For each size the script builds a custom gateway selling ``n`` synthetic offers
(vendor-prefixed ids, as a large aggregator lists them), then measures:

- build: ``ProviderGraph.from_catalogs``, the first (cold) one and the best of a few, and
  the first unknown model id after it (which may wait for the "did you mean" index);
- three refreshes of a models listing served from loopback, each fetched, parsed and
  merged: 1, the same ``n`` ids plus 1% new ones (the index is assembled anew); 2, the
  same ids at new prices (every offer changes); 3, the same listing again (nothing
  changes);
- for each refresh: the CPU time of the graph's merge (``ProviderGraph._merge_listings``,
  every thread), of the whole refresh, and the event loop's longest lag meanwhile (how
  late a 1 ms ticker woke: what a request waiting then would feel), in wall time and in
  the process's CPU time, with and without the garbage collector's pauses (which hold
  the loop up too, and whose full passes cost in proportion to every object the process
  keeps). The listing server runs in a thread of its own, as a gateway is elsewhere.

Times are CPU seconds of the process (``time.process_time``: every thread), so another
job on the machine does not inflate them; lags are wall time. With ``--baseline REF``
each size is measured for the code at git ``REF`` (its ``providers/``, with this script)
and for this code in turn, each in a fresh process (``--repeat`` times, medians shown), and the
table gives the ratio.

``--gc-freeze`` calls ``gc.freeze()`` once each graph is built, as a service may once it has
started, so that the collector's full passes leave the objects of that moment alone.

Run: ``python -m switchyard.benchmarks.graph_scale [--sizes 1000,10000,100000] [--runs 3]
[--baseline REF [--repeat 3]] [--gc-freeze] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any, Final

from ..providers import Offer, ProviderGraph
from ._graph_probes import GCLog, MergeTimer, Ticker, serving
from ._machine import provenance

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


async def _refreshes(api: types.ModuleType, n: int, offers: list[Any], freeze: bool) -> dict[str, float]:
    ids = [o.gateway_model for o in offers]
    listed = ids + synthetic_ids(max(n // 100, 1), start=10_000_000)
    bodies = [_listing(listed, 0.7), _listing(listed, 0.9), _listing(listed, 0.9)]
    with serving(bodies) as base_url:
        gateway = api.Gateway.openai_compatible("big", base_url, "k", offers=offers, models_path="/models")
        graph = api.ProviderGraph.from_catalogs([gateway])
        if freeze:  # what an application may do once it has started: keep its objects out of collections
            gc.collect()
            gc.freeze()
        figures: dict[str, float] = {}
        for name in _REFRESHES:
            with MergeTimer(api.ProviderGraph) as merge, GCLog() as collections:
                async with Ticker() as ticker:
                    cpu = time.process_time()
                    report = await graph.refresh(force=True, timeout=120)
                    cpu = time.process_time() - cpu
            if report.failed:
                raise RuntimeError(f"refresh failed: {report.failed}")
            figures[f"{name}_refresh_cpu_ms"] = cpu * 1e3
            figures[f"{name}_merge_cpu_ms"] = merge.cpu * 1e3
            figures[f"{name}_lag_ms"] = ticker.worst() * 1e3
            figures[f"{name}_lag_cpu_ms"] = ticker.worst_cpu() * 1e3
            figures[f"{name}_lag_cpu_not_gc_ms"] = ticker.worst_cpu(collections.cpu_intervals) * 1e3
            figures.update(collections.figures(f"{name}_"))
        assert len(graph) == len(listed), (len(graph), len(listed))
        assert graph.offer("big", listed[-1]).input_price == 0.9
    gc.unfreeze()
    return figures


def _measure_one(api: types.ModuleType, n: int, runs: int, freeze: bool = False) -> dict[str, float]:
    """One size, with ``api`` (this code's providers package, or the baseline's)."""
    offers = synthetic_offers(n, api)
    gateway = api.Gateway.openai_compatible("big", "http://127.0.0.1:1/v1", "k", offers=offers)
    builds, typos, logs = [], [], []
    for _ in range(runs):
        with GCLog() as collections:
            started = time.process_time()
            graph = api.ProviderGraph.from_catalogs([gateway])
            built = time.process_time()
            with contextlib.suppress(api.UnknownModelError):  # "did you mean": its index is made by now
                graph.resolve("gpt-4o-mimi")
            typos.append(time.process_time() - built)
            builds.append(built - started)
        logs.append(collections)
    target = offers[n // 2].gateway_model
    started = time.process_time()
    graph.set_price("big", target, 1.0, 2.0)
    row: dict[str, float] = {"offers": n, "build_cold_cpu_ms": builds[0] * 1e3}
    row["build_cpu_ms"] = min(builds) * 1e3
    row["first_typo_cpu_ms"] = min(typos) * 1e3
    row["set_price_cpu_ms"] = (time.process_time() - started) * 1e3
    row.update(logs[0].figures("build_"))
    del graph
    row.update(asyncio.run(_refreshes(api, n, offers, freeze)))
    return row


def _this_code() -> types.ModuleType:
    return importlib.import_module(ProviderGraph.__module__.rpartition(".")[0])


def measure(
    sizes: tuple[int, ...] = (1_000, 10_000, 100_000), runs: int = 3, freeze: bool = False
) -> list[dict[str, float]]:
    """Build and refresh figures for each size, for this code, in this process (milliseconds).

    ``freeze``: call ``gc.freeze()`` once the graph is built, as an application may.
    """
    return [_measure_one(_this_code(), n, runs, freeze) for n in sizes]


def _export_baseline(ref: str, into: Path) -> Path:
    """Write the ``providers/`` package of git ``ref`` under ``into``, importable as ``_BASELINE``."""
    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", ref, "providers"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "providers").rename(into / _BASELINE)
    return into


def _in_child(n: int, runs: int, freeze: bool, baseline: Path | None) -> dict[str, float]:
    """Measure one size in a fresh interpreter: no heap, memo or warm cache carried over."""
    command = [sys.executable, "-m", __spec__.name if __spec__ else "switchyard.benchmarks.graph_scale"]
    command += ["--child", str(n), "--runs", str(runs), *(["--gc-freeze"] if freeze else [])]
    if baseline is not None:
        command += ["--baseline-path", str(baseline)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    row: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return row


def _child(n: int, runs: int, freeze: bool, baseline: str | None) -> dict[str, float]:
    api = _this_code()
    if baseline:
        sys.path.insert(0, baseline)
        api = importlib.import_module(_BASELINE)
    return _measure_one(api, n, runs, freeze)


_COLUMNS: Final = (
    ("build_cold_cpu_ms", "build 1st"),
    ("build_cpu_ms", "build"),
    ("first_typo_cpu_ms", "1st typo"),
    *((f"{r}_merge_cpu_ms", f"merge {i}") for i, r in enumerate(_REFRESHES, 1)),
    *((f"{r}_lag_ms", f"lag {i}") for i, r in enumerate(_REFRESHES, 1)),
    *((f"{r}_lag_cpu_ms", f"cpu lag {i}") for i, r in enumerate(_REFRESHES, 1)),
    *((f"{r}_lag_cpu_not_gc_ms", f"not gc {i}") for i, r in enumerate(_REFRESHES, 1)),
)


def _table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'offers':>9} {'code':>8} " + " ".join(f"{t:>9}" for _, t in _COLUMNS)]
    for row in rows:
        cells = " ".join(f"{row[k]:>9.1f}" for k, _ in _COLUMNS)
        lines.append(f"{row['offers']:>9,.0f} {row.get('code', 'this'):>8} {cells}")
        if "ratio" in row:
            ratios = " ".join(f"{row['ratio'].get(k, float('nan')):>9.2f}" for k, _ in _COLUMNS)
            lines.append(f"{'':>9} {'new/old':>8} {ratios}")
    return "\n".join(lines)


_NOTE: Final = (
    "milliseconds. build, 1st typo (an unknown id just after the build), merge: process CPU time, all\n"
    "threads. lag: the event loop's longest hold-up during the refresh, wall time (on a busy machine\n"
    "it counts time the system gave other processes); cpu lag: the CPU time the process spent in that\n"
    "longest hold-up; not gc: the same less the garbage collector's pauses. Refresh 1: new ids and\n"
    "prices; 2: the same ids at new prices; 3: the same listing again. The JSON also has each\n"
    "refresh's CPU end to end (fetch, parse, merge), set_price, and the collector's pauses."
)


def _median(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rows) for k in rows[0]}


def _compare(sizes: tuple[int, ...], runs: int, freeze: bool, ref: str, repeat: int) -> list[dict[str, Any]]:
    """Old and new code in turn, each size ``repeat`` times (interleaved, so both see the same load)."""
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="graph-scale-") as tmp:
        baseline = _export_baseline(ref, Path(tmp))
        for n in sizes:
            olds, news = [], []
            for _ in range(repeat):
                olds.append(_in_child(n, runs, freeze, baseline))
                news.append(_in_child(n, runs, freeze, None))
            old: dict[str, Any] = {**_median(olds), "code": ref[:8]}
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
    parser.add_argument("--gc-freeze", action="store_true", help="gc.freeze() once the graph is built")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--baseline-path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:  # one size in this fresh process, as JSON on the last line
        print(json.dumps(_child(args.child, args.runs, args.gc_freeze, args.baseline_path)))
        return 0
    head = provenance("graph_scale", argv, "python -m switchyard.benchmarks.graph_scale")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    if args.baseline:
        rows = _compare(sizes, args.runs, args.gc_freeze, args.baseline, args.repeat)
    else:
        rows = [{**row, "code": "this"} for row in measure(sizes, args.runs, args.gc_freeze)]
    print(_table(rows))
    print(_NOTE + ("\nWith gc.freeze() once each graph was built." if args.gc_freeze else ""))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**head, "gc_freeze": args.gc_freeze, "rows": rows}, f, indent=2)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
