"""Client instructions per request, counted by callgrind: a figure the machine's noise cannot move.

A shared 2-core machine moves timed ratios by a fifth from one round to the next;
an instruction count moves by well under 1%. This counts the client process only:
the emulator runs on its own, and the client (bare aiohttp, ``chat()`` or
``stream()``, 8 requests in flight, after 100 to warm up) runs under
``valgrind --tool=callgrind`` twice, with ``--small`` and ``--large`` requests; the
difference over the difference in requests is its instructions per request, start-up
and imports cancelled out. ``decision`` counts one routing decision the same way
(create the request and plan it, no network: ``overhead.py``'s 10-offer graph).
Instructions are not time (CPython's loop and aiohttp's C
code do not retire them at one rate), so compare like with like: two trees, or a
router against bare aiohttp in one run.

Needs valgrind on PATH (Debian's ``valgrind``). Run:
``python -m switchyard.benchmarks.instructions [--kinds K,...] [--small N] [--large N] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ._machine import provenance, write_figures
from .overhead import MESSAGES, _gateways, decision_planner, emulator_on_own_core

__all__ = ["KINDS", "client", "collected", "count", "main"]

KINDS = ("bare", "plain", "bare_stream", "stream", "decision")
_CONCURRENCY = 8
_WARM_UP = 100
_COLLECTED = re.compile(r"Collected : (\d+)")


def collected(stderr: str) -> int:
    """The instructions callgrind reports collecting (``==pid== Collected : N``).

    Raises:
        RuntimeError: when it reports none (the client failed, or this is not callgrind's output).
    """
    found = _COLLECTED.findall(stderr)
    if not found:
        raise RuntimeError(f"callgrind reported no count; its output ends:\n{stderr[-2000:]}")
    return int(found[-1])


async def _client(urls: dict[str, str], kind: str, requests: int) -> None:
    from ..policies import CheapestPerToken
    from ..providers import ProviderGraph
    from ..router import Router

    url = urls["oneai"] + "/chat/completions"
    headers = {"Authorization": "Bearer bench", "Content-Type": "application/json"}
    payload = {"model": "kimi", "messages": MESSAGES, "max_tokens": 16}
    streamed = {**payload, "stream": True, "stream_options": {"include_usage": True}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = ProviderGraph.from_catalogs([g for g in _gateways(urls) if g.name == "oneai"])
    connector = aiohttp.TCPConnector(limit=256, limit_per_host=64)
    async with (
        aiohttp.ClientSession(connector=connector) as session,
        Router(graph, policy=CheapestPerToken()) as router,
    ):

        async def bare() -> object:
            async with session.post(url, data=json.dumps(payload).encode(), headers=headers) as response:
                return json.loads(await response.read())["choices"][0]["message"]["content"]

        async def bare_stream() -> object:
            parts = []
            async with session.post(url, data=json.dumps(streamed).encode(), headers=headers) as response:
                async for line in response.content:
                    if line.startswith(b"data:"):
                        data = line[5:].strip()
                        if data == b"[DONE]":
                            break
                        for choice in json.loads(data).get("choices") or ():
                            parts.append(choice["delta"].get("content") or "")
            return "".join(parts)

        async def plain() -> object:
            return (await router.chat("kimi", MESSAGES, max_tokens=16)).text

        async def stream() -> object:
            async with router.stream("kimi", MESSAGES, max_tokens=16) as chunks:
                return "".join([chunk.text async for chunk in chunks])

        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "bare": bare,
            "bare_stream": bare_stream,
            "plain": plain,
            "stream": stream,
        }
        call = calls[kind]
        left = _WARM_UP + requests

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                await call()

        await asyncio.gather(*(worker() for _ in range(_CONCURRENCY)))


async def _decisions(requests: int) -> None:
    from ..providers import ChatRequest

    planner, model = decision_planner(10)
    for _ in range(_WARM_UP + requests):  # in a running loop, as chat() plans
        planner.plan(ChatRequest.create(model, MESSAGES, max_tokens=16), stream=False)


def client(urls: dict[str, str], kind: str, requests: int) -> None:
    """Send ``requests`` of ``kind`` (after a warm-up) to the emulator at ``urls`` (``decision``:
    make that many routing decisions, sending nothing)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    if kind == "decision":
        asyncio.run(_decisions(requests))
        return
    asyncio.run(_client(urls, kind, requests))


def count(urls: dict[str, str], kind: str, small: int, large: int) -> float:
    """Instructions per request of ``kind``: two callgrind runs, their difference per request."""
    totals = []
    for requests in (small, large):
        run = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                "-m",
                "switchyard.benchmarks.instructions",
                "--client",
                kind,
                "--requests",
                str(requests),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "SWITCHYARD_EMULATOR_URLS": json.dumps(urls)},
            check=False,
        )
        totals.append(collected(run.stderr))
    return (totals[1] - totals[0]) / (large - small)


def main(argv: list[str] | None = None) -> int:
    """Count each kind and print the figures (and write JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.instructions")
    parser.add_argument("--small", type=int, default=200, help="requests in the shorter run")
    parser.add_argument("--large", type=int, default=1000, help="requests in the longer run")
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"which to count, comma-separated (default: {','.join(KINDS)})",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    parser.add_argument("--client", choices=KINDS, help=argparse.SUPPRESS)  # the process callgrind runs
    parser.add_argument("--requests", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client:
        client(json.loads(os.environ["SWITCHYARD_EMULATOR_URLS"]), args.client, args.requests)
        return 0
    if not 0 < args.small < args.large:
        parser.error("--small must be positive and less than --large")
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if not kinds or any(k not in KINDS for k in kinds):
        parser.error(f"--kinds takes some of {', '.join(KINDS)}, not {args.kinds!r}")
    if shutil.which("valgrind") is None:
        print("instructions: valgrind is not on PATH (Debian: apt-get install valgrind)", file=sys.stderr)
        return 2
    head = provenance("instructions", argv, "python -m switchyard.benchmarks.instructions")
    with emulator_on_own_core() as (urls, _):
        per_request = {kind: count(urls, kind, args.small, args.large) for kind in kinds}
    figures: dict[str, Any] = {"instructions_per_request": per_request}
    if "plain" in per_request and "bare" in per_request:
        figures["plain_ratio_to_bare"] = per_request["plain"] / per_request["bare"]
    if "stream" in per_request and "bare_stream" in per_request:
        figures["stream_ratio_to_bare"] = per_request["stream"] / per_request["bare_stream"]
    figures |= {
        "concurrency": _CONCURRENCY,
        "requests": [args.small, args.large],
    }
    write_figures(head, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
