"""How long an unknown model name takes to answer with 'did you mean', at 1k to 100k offers.

An unknown name raises :class:`~providers.UnknownModelError` with the closest known
ids, inside the request, on the event loop: that must cost about the same whatever
the catalog's size. For each size the script builds a graph of synthetic offers
(see :mod:`benchmarks.graph_scale`) and times, over many repetitions:

- ``typo``: ``gpt-4o-mimi`` (found: ``gpt-4o-mini``);
- ``typo-deep``: a synthetic id with two letters swapped in the middle;
- ``nothing-close``: a name like no other (both passes run, canonical then wire ids);
- ``offer``: ``graph.offer(gateway, typo)`` (suggestions from that gateway's ids);

and counts how many ids difflib was shown (at most 24 once a catalog has more than
128 ids). For reference it also times what the graph used to do, difflib over every
canonical id, once per size.

Run: ``python -m switchyard.benchmarks.suggest [--sizes 1000,10000,100000] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import difflib
import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Final

from ..providers import ConfigError, Gateway, ProviderGraph, UnknownModelError
from ._machine import provenance
from .graph_scale import synthetic_ids, synthetic_offers

__all__ = ["main", "measure"]

_LIMIT_MS: Final = 2.0


@contextmanager
def _counting() -> Iterator[list[int]]:
    """Count the ids each difflib.get_close_matches call is given (instrumentation for this script)."""
    shown: list[int] = []
    real = difflib.get_close_matches

    def counted(word: str, possibilities: Sequence[str], n: int = 3, cutoff: float = 0.6) -> list[str]:
        shown.append(len(possibilities))
        return real(word, possibilities, n, cutoff)

    difflib.get_close_matches = counted  # type: ignore[assignment]
    try:
        yield shown
    finally:
        difflib.get_close_matches = real


def _asks(graph: ProviderGraph, n: int) -> dict[str, Callable[[], object]]:
    deep = synthetic_ids(1, start=n // 3)[0].split("/", 1)[1].replace("-instruct", "-instrcut")

    def offer() -> object:
        return graph.offer("big", "gpt-4o-mimi")

    return {
        "typo": lambda: graph.resolve("gpt-4o-mimi"),
        "typo-deep": lambda: graph.resolve(deep),
        "nothing-close": lambda: graph.resolve("zq-xv-7-unheard-of"),
        "offer": offer,
    }


def _time(ask: Callable[[], object], repeat: int) -> tuple[list[float], str]:
    samples = []
    said = ""
    for _ in range(repeat):
        started = time.perf_counter()
        try:
            ask()
        except (UnknownModelError, ConfigError) as exc:
            said = str(exc)
        samples.append((time.perf_counter() - started) * 1e3)
    return samples, said


def measure(sizes: tuple[int, ...] = (1_000, 10_000, 100_000), repeat: int = 300) -> list[dict[str, object]]:
    """Per size and question: median, p99 and max milliseconds, the most ids difflib saw, and the answer."""
    rows: list[dict[str, object]] = []
    for n in sizes:
        gateway = Gateway.openai_compatible("big", "http://127.0.0.1:1/v1", "k", offers=synthetic_offers(n))
        graph = ProviderGraph.from_catalogs([gateway])
        for name, ask in _asks(graph, n).items():
            _time(ask, 1)  # warm: the canonicalizer's memo, the first difflib call
            with _counting() as shown:
                samples, said = _time(ask, repeat)
            samples.sort()
            rows.append(
                {
                    "offers": n,
                    "ask": name,
                    "median_ms": statistics.median(samples),
                    "p99_ms": samples[min(len(samples) - 1, int(len(samples) * 0.99))],
                    "max_ms": samples[-1],
                    "ids_shown": max(shown, default=0),
                    "message": said,
                }
            )
        models = graph.models()
        started = time.perf_counter()
        difflib.get_close_matches("gpt-4o-mimi", models, n=3)
        rows.append(
            {
                "offers": n,
                "ask": "before: difflib over every id",
                "median_ms": (time.perf_counter() - started) * 1e3,
                "ids_shown": len(models),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table; exit 1 when a question at the largest size takes 2 ms or more (median)."""
    parser = argparse.ArgumentParser(
        prog="python -m switchyard.benchmarks.suggest", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--sizes", default="1000,10000,100000", help="comma-separated offer counts")
    parser.add_argument("--repeat", type=int, default=300, help="timings per question")
    parser.add_argument("--json", metavar="PATH", help="write the figures as JSON here")
    args = parser.parse_args(argv)
    head = provenance("suggest", argv, "python -m switchyard.benchmarks.suggest")
    sizes = tuple(int(s) for s in args.sizes.split(","))
    rows = measure(sizes, args.repeat)
    print(f"{'offers':>9} {'question':<30} {'median ms':>9} {'p99 ms':>8} {'max ms':>8} {'ids shown':>9}")
    for row in rows:
        p99 = f"{row['p99_ms']:>8.3f} {row['max_ms']:>8.3f}" if "p99_ms" in row else f"{'':>8} {'':>8}"
        print(f"{row['offers']:>9,} {row['ask']:<30} {row['median_ms']:>9.3f} {p99} {row['ids_shown']:>9,}")
    for row in rows:
        if row["offers"] == sizes[-1] and row.get("message"):
            print(f"  {row['ask']}: {row['message']}")
    largest = [r for r in rows if r["offers"] == max(sizes) and "p99_ms" in r]
    worst = max(float(r["median_ms"]) for r in largest)  # type: ignore[arg-type]
    ok = worst < _LIMIT_MS
    verdict = "ok" if ok else "SLOW"
    print(f"\nslowest median at {max(sizes):,} offers: {worst:.3f} ms (limit {_LIMIT_MS:g} ms): {verdict}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({**head, "limit_ms": _LIMIT_MS, "rows": rows}, f, indent=2)
            f.write("\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
