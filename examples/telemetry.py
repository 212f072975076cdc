"""Watch the router: OpenTelemetry spans on the console, Prometheus metrics at /metrics, log lines.

Needs the extras: pip install 'switchyard[otel,prometheus]'.
Run: python examples/telemetry.py          (sends a few requests, prints, exits)
     python examples/telemetry.py --serve  (then keeps serving /metrics until Ctrl-C)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

import aiohttp
from aiohttp import web
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Logs, OpenTelemetry, Prometheus, Router

HI = [{"role": "user", "content": "Say hello."}]


def one_line(span: ReadableSpan) -> str:
    """A span as one line: name, its parent, and its attributes (the default is pretty JSON)."""
    parent = f"{span.parent.span_id:016x}" if span.parent else "-"
    attributes = dict(span.attributes or {})
    return f"span {span.name!r} id={span.context.span_id:016x} parent={parent} {attributes}\n"


async def serve_metrics(registry: CollectorRegistry) -> tuple[web.AppRunner, str]:
    """Serve the registry at http://127.0.0.1:<free port>/metrics from this event loop."""

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}/metrics"


async def main(serve: bool) -> None:
    logging.basicConfig(level=logging.INFO, format="log %(levelname)s %(message)s")
    # In production: BatchSpanProcessor(OTLPSpanExporter()) - the simple processor exports inline.
    tracing = TracerProvider()
    tracing.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter(formatter=one_line)))
    registry = CollectorRegistry()  # or prometheus_client.REGISTRY, the default
    hooks = [OpenTelemetry(tracer_provider=tracing), Prometheus(registry), Logs()]
    runner, url = await serve_metrics(registry)
    try:
        async with Emulator(seed=2) as emu:
            graph = ProviderGraph.from_catalogs(emu.gateways())
            graph.set_price("onellm", "GPT-4o-mini", 0.10, 0.40)
            graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
            await emu.set_faults("onellm", Faults(errors={502: 1.0}))  # the cheaper gateway is down
            async with Router(graph, hooks=hooks) as router:
                reply = await router.chat("gpt-4o-mini", HI, max_tokens=8)
                print(f"chat answered by {reply.route.gateway} after {len(reply.route.attempts)} attempts")
                async with router.stream("deepseek-v3", HI, max_tokens=8) as stream:
                    print("stream:", "".join([chunk.text async for chunk in stream]))
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            text = await response.text()
        print(f"GET {url}:")
        for line in text.splitlines():
            if line.startswith(("switchyard_requests_total", "switchyard_attempts_total")):
                print(" ", line)
        if serve:
            print(f"serving {url}; Ctrl-C to stop")
            await asyncio.Event().wait()
    finally:
        await runner.cleanup()
        tracing.shutdown()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):  # --serve: Ctrl-C stops it
        asyncio.run(main("--serve" in sys.argv[1:]))
