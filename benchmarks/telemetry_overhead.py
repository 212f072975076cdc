"""What each telemetry hook costs: client CPU per request with it, as a ratio to no hook, in one run.

Against the emulator (its own process, pinned to another core), ``--concurrency``
requests in flight, the same router set-up with each hook set in turn:

- ``none``: no hook (the baseline);
- ``noop``: a hook that does nothing: what the router pays to build and deliver events;
- ``otel``: ``OpenTelemetry`` over the OpenTelemetry SDK: a ``TracerProvider`` with a
  ``SimpleSpanProcessor`` and an exporter that drops the spans, a ``MeterProvider``
  with an in-memory reader (every measurement aggregated, nothing exported);
- ``otel-sampled``: the same with a ``ParentBased(TraceIdRatioBased(0.1))`` sampler: one
  trace in ten recorded (the metrics still count every request);
- ``prometheus``: ``Prometheus`` on a fresh ``CollectorRegistry``;
- ``logs``: ``Logs`` with its logger at INFO and a handler that drops the records
  (each record is built, none is formatted or written);
- ``all``: the three together.

Rounds interleave the variants (none, noop, otel, ..., all; then noop, otel, ..., all,
none...) so machine noise hits each alike; each figure is the median over rounds, and each ratio the
median of the per-round ratios to ``none``. ``--stream`` measures ``router.stream()``
instead of ``router.chat()``.

Then, without a network, where a hook's time goes (:func:`hook_costs`): process CPU
microseconds for each hook to take the events of one request that failed over once
(replayed, so only the hook runs), and for ``OpenTelemetry`` over the API's no-op
providers: its own code, without the SDK's spans and measurements.

Run: ``python -m switchyard.benchmarks.telemetry_overhead [--requests N] [--rounds R] [--stream]
[--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from ._machine import provenance, write_figures
from .overhead import MESSAGES, _drive, _gateways, emulator_on_own_core

__all__ = ["VARIANTS", "hook_costs", "main", "telemetry_overhead"]

VARIANTS = ("none", "noop", "otel", "otel-sampled", "prometheus", "logs", "all")


def _otel_providers(sampled: float | None = None) -> tuple[Any, Any]:
    """An SDK tracer provider exporting every span (or a ``sampled`` share of the traces) to an
    exporter that drops it, and an SDK meter provider aggregating every measurement into a
    reader nobody reads."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class Drop(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    sampler = ALWAYS_ON if sampled is None else ParentBased(TraceIdRatioBased(sampled))
    tracing = TracerProvider(sampler=sampler)
    tracing.add_span_processor(SimpleSpanProcessor(Drop()))
    return tracing, MeterProvider(metric_readers=[InMemoryMetricReader()])


def _hooks(variant: str) -> tuple[list[Any], Callable[[], None]]:
    """The hooks of one variant, and what shuts their providers down."""
    from ..router import Logs, OpenTelemetry, Prometheus

    hooks: list[Any] = []
    closers: list[Callable[[], None]] = []
    if variant == "noop":
        hooks.append(lambda event: None)
    if variant in ("otel", "otel-sampled", "all"):
        tracing, metering = _otel_providers(0.1 if variant == "otel-sampled" else None)
        hooks.append(OpenTelemetry(tracing, metering))
        closers += [tracing.shutdown, metering.shutdown]
    if variant in ("prometheus", "all"):
        from prometheus_client import CollectorRegistry

        hooks.append(Prometheus(CollectorRegistry()))
    if variant in ("logs", "all"):
        logger = logging.Logger(f"switchyard-bench-{variant}", level=logging.INFO)
        logger.addHandler(logging.NullHandler())
        hooks.append(Logs(logger))

    def close() -> None:
        for closer in closers:
            closer()

    return hooks, close


async def _compare(
    urls: dict[str, str], requests: int, concurrency: int, rounds: int, stream: bool
) -> dict[str, Any]:
    from ..providers import ProviderGraph
    from ..router import Router

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ProviderGraph.from_catalogs([g for g in _gateways(urls) if g.name == "oneai"])
    routers: dict[str, Router] = {}
    closers: list[Callable[[], None]] = []
    calls: dict[str, Callable[[], Awaitable[object]]] = {}
    for variant in VARIANTS:
        hooks, close = _hooks(variant)
        closers.append(close)
        router = routers[variant] = Router(graph, hooks=hooks)

        async def chat(router: Router = router) -> object:
            return (await router.chat("kimi", MESSAGES, max_tokens=16)).text

        async def streamed(router: Router = router) -> object:
            async with router.stream("kimi", MESSAGES, max_tokens=16) as chunks:
                return [chunk.text async for chunk in chunks]

        calls[variant] = streamed if stream else chat
    cpu: dict[str, list[float]] = {v: [] for v in VARIANTS}
    ratios: dict[str, list[float]] = {v: [] for v in VARIANTS}
    try:
        for variant in VARIANTS:  # warm up: connections, caches, instruments
            await _drive(calls[variant], 300, concurrency)
        for round_ in range(rounds):
            spent = {}
            # Each round starts at the next variant, so none always follows the same one.
            turn = round_ % len(VARIANTS)
            for variant in VARIANTS[turn:] + VARIANTS[:turn]:
                spent[variant], _wall = await _drive(calls[variant], requests, concurrency)
                cpu[variant].append(spent[variant] / requests * 1e6)
            for variant in VARIANTS:
                ratios[variant].append(spent[variant] / spent["none"])
    finally:
        for router in routers.values():
            await router.aclose()
        for close in closers:
            close()
    return {
        "mode": "stream" if stream else "chat",
        "requests_per_round": requests,
        "rounds": rounds,
        "concurrency": concurrency,
        "variants": {
            v: {
                "cpu_us_per_request": statistics.median(cpu[v]),
                "ratio_to_none": statistics.median(ratios[v]),
                "ratio_range": [min(ratios[v]), max(ratios[v])],
            }
            for v in VARIANTS
        },
    }


def telemetry_overhead(
    requests: int = 1000, concurrency: int = 32, rounds: int = 14, *, stream: bool = False
) -> dict[str, Any]:
    """Client CPU per request with each hook, and its ratio to no hook, measured in one run."""
    with emulator_on_own_core() as (urls, separate):
        result = asyncio.run(_compare(urls, requests, concurrency, rounds, stream))
    result["separate_cores"] = separate
    return result


def _one_request_events() -> list[Any]:
    """The events of one chat request that failed over once (a 502, then an answer), in memory."""
    from ..providers import Gateway, MockTransport, Offer, ProviderGraph, Response, WireRequest
    from ..router import Event, Router

    answer = json.dumps(
        {
            "id": "c1",
            "object": "chat.completion",
            "created": 1,
            "model": "m",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 8, "completion_tokens": 2, "total_tokens": 10},
        }
    ).encode()

    def handler(wire: WireRequest) -> Response:
        if wire.gateway == "a":
            return Response(502, {"content-type": "application/json"}, b"{}")
        return Response(200, {"content-type": "application/json"}, answer)

    graph = ProviderGraph.from_catalogs(
        [
            Gateway.openai_compatible(n, f"http://{n}.test/v1", "k", offers=[Offer("m", "m", p, p)])
            for n, p in (("a", 0.1), ("b", 0.2))
        ]
    )
    events: list[Event] = []

    async def run() -> None:
        async with Router(graph, transport=MockTransport(handler), hooks=[events.append]) as router:
            await router.chat("m", MESSAGES, max_tokens=16)

    asyncio.run(run())
    return events


def _cpu_us(call: Callable[[], None], repeat: int) -> float:
    """Process CPU microseconds per call: the median of five runs of ``repeat`` calls."""
    runs = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(repeat):
            call()
        runs.append((time.process_time() - start) / repeat * 1e6)
    return statistics.median(runs)


def hook_costs(repeat: int = 1000) -> dict[str, float]:
    """CPU microseconds per request: each hook taking one failed-over request's events; OpenTelemetry
    also without the SDK (the API's no-op providers), which leaves its own code."""
    from ..router import OpenTelemetry

    events = _one_request_events()
    out: dict[str, float] = {"events_per_request": len(events)}
    closers = []
    for variant in ("otel", "prometheus", "logs"):
        (hook,), close = _hooks(variant)
        closers.append(close)

        def replay(hook: Any = hook) -> None:
            for event in events:
                hook(event)

        replay()
        out[f"{variant}_hook_us"] = _cpu_us(replay, repeat)
    # The hook's own code: the same replay with the OpenTelemetry API's no-op providers,
    # where every span and measurement costs next to nothing.
    from opentelemetry.metrics import NoOpMeterProvider
    from opentelemetry.trace import NoOpTracerProvider

    bare = OpenTelemetry(NoOpTracerProvider(), NoOpMeterProvider())

    def replay_bare() -> None:
        for event in events:
            bare(event)

    out["otel_hook_without_sdk_us"] = _cpu_us(replay_bare, repeat)
    for close in closers:
        close()
    return out


def main(argv: list[str] | None = None) -> int:
    """Measure and print the figures (and write JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.telemetry_overhead")
    parser.add_argument("--requests", type=int, default=1000, help="requests per round and variant")
    parser.add_argument("--rounds", type=int, default=14)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--stream", action="store_true", help="measure router.stream() instead of chat()")
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    args = parser.parse_args(argv)
    head = provenance("telemetry_overhead", argv, "python -m switchyard.benchmarks.telemetry_overhead")
    figures = {
        "per_request": telemetry_overhead(args.requests, args.concurrency, args.rounds, stream=args.stream),
        "hook_costs": hook_costs(),
    }
    write_figures(head, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
