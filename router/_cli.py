"""The ``switchyard`` command line.

Each subcommand imports what it needs when it runs, so ``import switchyard.router`` stays light.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from ..providers import Offer

__all__ = ["main"]


def _fmt_price(value: float | None) -> str:
    return "unknown" if value is None else f"{value:.2f}" if value >= 0.01 else f"{value:g}"


def _fmt_caps(offer: Offer) -> str:
    caps = offer.capabilities
    parts = []
    if caps.streaming is not None:
        parts.append("stream" if caps.streaming else "no-stream")
    for name in ("tools", "web_search", "assistant_prefill"):
        value = getattr(caps, name)
        if value is not None:
            parts.append(name.replace("_", "-") if value else f"no-{name.replace('_', '-')}")
    if caps.unsupported_params:
        parts.append("drops " + ",".join(sorted(caps.unsupported_params)))
    return " ".join(parts)


def _table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    numeric = {3, 4, 6}
    for row in rows:
        cells = [
            c.rjust(w) if i in numeric else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.write("  ".join(cells).rstrip() + "\n")


def _catalog(args: argparse.Namespace) -> int:
    from ..providers import BUILTIN_GATEWAYS, Gateway, ProviderGraph, RouterError

    unknown = [g for g in args.gateway or () if g not in BUILTIN_GATEWAYS]
    if unknown:
        print(
            f"switchyard catalog: no gateway {unknown[0]!r}; choose from {', '.join(BUILTIN_GATEWAYS)}",
            file=sys.stderr,
        )
        return 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = ProviderGraph.from_catalogs([Gateway.builtin(name) for name in BUILTIN_GATEWAYS])
    for warning in caught:
        print(f"switchyard: warning: {warning.message}", file=sys.stderr)

    offers = list(graph)
    if args.model:
        try:
            wanted = {graph.resolve(m) for m in args.model}
        except RouterError as exc:
            print(f"switchyard catalog: {exc}", file=sys.stderr)
            return 2
        offers = [o for o in offers if o.model in wanted]
    if args.gateway:
        offers = [o for o in offers if o.gateway in args.gateway]

    if args.json:
        json.dump([o.to_json() for o in offers], sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = ["GATEWAY", "GATEWAY MODEL", "MODEL", "IN $/1M", "OUT $/1M", "PRICE", "CONTEXT", "CAPABILITIES"]
    rows = [header] + [
        [
            o.gateway or "",
            o.gateway_model,
            o.model,
            _fmt_price(o.input_price),
            _fmt_price(o.output_price),
            o.price_source.value,
            "?" if o.context_window is None else f"{o.context_window:,}",
            _fmt_caps(o),
        ]
        for o in offers
    ]
    _table(rows, sys.stdout)
    gateways_per_model: dict[str, set[str]] = {}
    for o in offers:
        gateways_per_model.setdefault(o.model, set()).add(o.gateway or "")
    shared = sum(1 for g in gateways_per_model.values() if len(g) > 1)
    print(
        f"\n{len(offers)} offers of {len(gateways_per_model)} models; "
        f"{shared} served by more than one gateway.\n"
        "Prices are USD per million tokens; an 'unknown' price is never treated as free."
    )
    return 0


def _emulate(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from ..providers import ConfigError
    from ..providers.emulator import Emulator, FaultsFile

    settings = FaultsFile()
    if args.faults:
        try:
            with open(args.faults, encoding="utf-8") as f:
                settings = FaultsFile.parse(json.load(f))
        except (OSError, ValueError) as exc:
            print(f"switchyard emulate: cannot read {args.faults}: {exc}", file=sys.stderr)
            return 2
    seed = settings.seed if args.seed is None else args.seed

    async def serve() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            async with Emulator(seed=seed, port=args.port, host=args.host) as emu:
                await emu.apply(settings)
                chat_urls = {gw.name: gw.chat_url for gw in emu.gateways()}
                for name in ("onellm", "oneai", "onetoken", "onerouter"):
                    # OneLLM's chat is not under its base URL's usual path: say where it is.
                    tail = f" (chat: {chat_urls[name]})" if name == "onellm" else ""
                    print(f"{name} {emu.base_url(name)}{tail}", flush=True)
                await stop.wait()
        except ConfigError as exc:
            print(f"switchyard emulate: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"switchyard emulate: cannot listen: {exc}", file=sys.stderr)
            return 1
        return 0

    return asyncio.run(serve())


def _bench(args: argparse.Namespace) -> int:
    from ..benchmarks import main as bench_main

    return bench_main(args)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("switchyard")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The command line; a subcommand's own options are loaded only when it is the one asked for."""
    parser = argparse.ArgumentParser(
        prog="switchyard",
        description="Route LLM chat requests across OneLLM, OneAI, Onetoken and OneRouter.",
    )
    parser.add_argument("--version", action="version", version=f"switchyard {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    catalog = sub.add_parser(
        "catalog",
        help="list what the four gateways sell, from the shipped catalogs",
        description="List the offers of the four gateways' shipped catalogs, joined by canonical model.",
    )
    catalog.add_argument(
        "--model", action="append", metavar="M", help="only this model (canonical or gateway id); repeatable"
    )
    catalog.add_argument("--gateway", action="append", metavar="G", help="only this gateway; repeatable")
    catalog.add_argument(
        "--json", action="store_true", help="print a JSON array of offers instead of a table"
    )
    catalog.set_defaults(func=_catalog)

    emulate = sub.add_parser(
        "emulate",
        help="serve the four gateways on loopback, with faults, for tests and trials",
        description=(
            "Serve OneLLM, OneAI, Onetoken and OneRouter on 127.0.0.1, one port each. Prints one line per "
            "gateway, '<gateway> <base_url>', where base_url is what the matching Gateway constructor takes "
            "(OneLLM's line adds its full chat URL). Stops on Ctrl-C or SIGTERM."
        ),
    )
    emulate.add_argument(
        "--port",
        type=int,
        default=None,
        metavar="N",
        help="first port; the gateways take N to N+3 (default: free ports)",
    )
    emulate.add_argument(
        "--faults", metavar="FILE", help="a JSON faults file (see providers.emulator.FaultsFile)"
    )
    emulate.add_argument(
        "--seed", type=int, default=None, help="seed for the random faults (default: the file's, or 0)"
    )
    emulate.add_argument("--host", default="127.0.0.1", help=argparse.SUPPRESS)
    emulate.set_defaults(func=_emulate)

    bench = sub.add_parser(
        "bench",
        help="run every failure scenario under every policy against the emulator (the main command)",
        description=(
            "Start the emulator in-process and drive load through the router for each scenario x policy: "
            "success, attempts, cost, latency, 429s, breaker trips, CPU against bare aiohttp. Prints a table "
            "and writes results.json and PNG plots."
        ),
    )
    if "bench" in argv:
        # The bench's options name its scenarios and policies; benchmarks sits above router,
        # so it is imported only when the bench is what runs (or what --help is asked of).
        from ..benchmarks import add_arguments

        add_arguments(bench)
    bench.set_defaults(func=_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``switchyard`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parser(argv).parse_args(argv)
    try:
        status: int = args.func(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (``switchyard catalog | head``). Point stdout at devnull so
        # the interpreter's final flush does not fail again (the recipe in Python's
        # signal module documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
