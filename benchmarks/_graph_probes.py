"""Probes for the graph-scale benchmark: a listing server in its own thread, the event loop's lag,
the garbage collector's pauses, and the CPU time of the graph's listing merges."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import http.server
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

__all__ = ["GCLog", "MergeTimer", "Ticker", "serving"]


@contextlib.contextmanager
def serving(bodies: list[bytes]) -> Iterator[str]:
    """A loopback server, in a thread of its own as a gateway is elsewhere, answering ``/v1/models``
    with each body in turn; yields its base URL."""

    class Models(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies.pop(0)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Models)
    thread = threading.Thread(target=server.serve_forever, name="listing-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


class Ticker:
    """A task that sleeps 1 ms at a time and keeps each late wake: the gap the loop made it wait,
    in wall time and in the process's CPU time (what it would have been on an idle machine: a
    process the system set aside uses no CPU meanwhile, one the collector or a thread held up does)."""

    def __init__(self) -> None:
        self.gaps: list[tuple[float, float, float, float]] = []  # wall and CPU, before and after
        self._task: asyncio.Task[None] | None = None
        self._done = False

    async def _run(self) -> None:
        while not self._done:
            wall, cpu = time.perf_counter(), time.process_time()
            await asyncio.sleep(0.001)
            now, used = time.perf_counter(), time.process_time()
            if now - wall > 0.002 or used - cpu > 0.002:
                self.gaps.append((wall + 0.001, now, cpu, used))

    async def __aenter__(self) -> Ticker:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._done = True
        assert self._task is not None
        await self._task

    def worst(self) -> float:
        """The longest gap, wall time."""
        return max((after - before for before, after, _, _ in self.gaps), default=0.0)

    def worst_cpu(self, less: Sequence[tuple[float, float]] = ()) -> float:
        """The most CPU time one gap took, less what was spent inside the ``less`` CPU intervals."""
        return max(
            (
                used - cpu - sum(max(0.0, min(used, end) - max(cpu, start)) for start, end in less)
                for _, _, cpu, used in self.gaps
            ),
            default=0.0,
        )


class GCLog:
    """The garbage collector's pauses while it is entered: generation, wall and CPU (start, end) each."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float, float, float, float]] = []
        self._started = (0.0, 0.0)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = (time.perf_counter(), time.process_time())
        else:
            wall, cpu = self._started
            self.pauses.append((info["generation"], wall, time.perf_counter(), cpu, time.process_time()))

    def __enter__(self) -> GCLog:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._callback)

    @property
    def cpu_intervals(self) -> list[tuple[float, float]]:
        return [(start, end) for _, _, _, start, end in self.pauses]

    def figures(self, prefix: str) -> dict[str, float]:
        return {
            f"{prefix}gc_max_ms": max((end - start for _, start, end, _, _ in self.pauses), default=0.0)
            * 1e3,
            f"{prefix}gc_max_cpu_ms": max((end - start for *_, start, end in self.pauses), default=0.0) * 1e3,
            f"{prefix}gc_full": sum(1 for p in self.pauses if p[0] == 2),
        }


class MergeTimer:
    """The process CPU time the graph's listing merges took (instrumentation for this script only)."""

    def __init__(self, graph_type: Any) -> None:
        self.cpu = 0.0
        self._type = graph_type
        self._real = graph_type._merge_listings

    def __enter__(self) -> MergeTimer:
        real = self._real

        @functools.wraps(real)
        async def timed(graph: Any, listings: Any) -> None:
            cpu = time.process_time()
            try:
                await real(graph, listings)
            finally:
                self.cpu += time.process_time() - cpu

        self._type._merge_listings = timed
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._type._merge_listings = self._real
