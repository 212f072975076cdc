"""``switchyard bench``: every scenario under every policy, against the in-process emulator.

It starts the emulator (on its own thread), measures a bare aiohttp client for
the CPU baseline, then runs each scenario x policy cell (see ``_cell``), showing
progress, and writes ``results.json``, the PNG plots and ``report.html`` to ``--out``. ``--quick``
runs each cell for 3 seconds of compressed time instead of 30. Last comes the
``replicas`` scenario (``_replicas``: processes sharing one account, on memory
stores and on one Redis), when ``redis-server`` is on the PATH; else one line says
it was skipped and why.
"""

from __future__ import annotations

import argparse
import asyncio
import pathlib
import signal
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from statistics import mean
from typing import Any

from ..providers import CatalogConflictWarning
from ._cell import run_cell
from ._driver import Settings, bare_baseline
from ._emuthread import EmulatorHost, EmulatorThread
from ._machine import provenance
from ._metrics import CellResult
from ._replicas import RedisServer, redis_server_path, replicas_table, run_replicas
from ._report import RESULTS, build, render, write_json
from ._scenarios import LATENCY, MODEL, POLICIES, PRICES, SCENARIOS, scenarios
from ._tables import tables

__all__ = ["add_arguments", "cells_planned", "main", "run"]

REPLICAS = "replicas"  # processes sharing one account: not a cell, it runs once, on its own processes
QUICK = Settings(duration=3.0, rate=40.0)
FULL = Settings(duration=30.0, rate=40.0)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The bench's command-line options."""
    parser.add_argument(
        "--quick", action="store_true", help="3 s cells instead of 30 s (a few minutes in all)"
    )
    parser.add_argument(
        "--scenario",
        action="append",
        metavar="NAME",
        choices=(*SCENARIOS, REPLICAS),
        help=f"run only this scenario; repeatable ({', '.join((*SCENARIOS, REPLICAS))})",
    )
    parser.add_argument(
        "--policy",
        action="append",
        metavar="NAME",
        choices=POLICIES,
        help=f"run only this policy; repeatable ({', '.join(POLICIES)})",
    )
    parser.add_argument(
        "--out",
        default="bench-out",
        metavar="DIR",
        help="where to write results.json, the plots and report.html",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the emulator and the policies")
    parser.add_argument("--duration", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=None, help=argparse.SUPPRESS)


async def run(
    chosen: Sequence[str],
    policies: Sequence[str],
    settings: Settings,
    emu: EmulatorHost,
    on_cell: Callable[[str], None] | None = None,
    on_request: Callable[[], None] | None = None,
    stopping: Callable[[], bool] | None = None,
) -> tuple[list[CellResult], dict[str, list[float]]]:
    """Run the cells between two runs of the bare client.

    ``stopping`` is asked before each cell: once it says True, no further cell
    starts (nor the closing bare run), and the finished cells are returned.

    Returns the cells and the bare client's CPU microseconds per request, before and
    after the cells, for plain requests (``chat``) and, when a scenario streams, for
    streams (``stream``): their mean is the baseline, their gap shows the drift.
    """
    world = scenarios(settings.scale)
    kinds = ["chat"] * any(not world[n].stream for n in chosen) + ["stream"] * any(
        world[n].stream for n in chosen
    )
    bare: dict[str, list[float]] = {kind: [] for kind in kinds}

    async def baseline(when: str) -> None:
        for kind in kinds:
            if on_cell is not None:
                on_cell(f"bare aiohttp {kind} ({when})")
            bare[kind].append(await bare_baseline(emu, settings, on_request, stream=kind == "stream"))

    # Warm up first, unmeasured: the process's one-time costs (lazy imports, first connections,
    # first use of each code path) would otherwise land on whichever run came first.
    if on_cell is not None:
        on_cell("warming up")
    warm = Settings(duration=min(settings.duration, 0.5), rate=settings.rate, seed=settings.seed)
    for kind in kinds:
        await bare_baseline(emu, warm, stream=kind == "stream")
    for name in dict.fromkeys(["healthy"] + [n for n in chosen if world[n].stream]):
        await run_cell(emu, scenarios(warm.scale)[name], policies[0], warm)
    await baseline("before")
    cells: list[CellResult] = []
    healthy_shares: dict[str, dict[str, float]] = {}
    order = [name for name in chosen if name != "healthy"]
    if "healthy" in chosen or any(world[name].degraded is not None for name in chosen):
        order.insert(0, "healthy")  # the healthy shares are what "moving off" is measured against
    for name in order:
        for policy in policies:
            if stopping is not None and stopping():
                return cells, bare
            if on_cell is not None:
                on_cell(f"{name} / {policy}")
            cell = await run_cell(emu, world[name], policy, settings, healthy_shares.get(policy), on_request)
            if name == "healthy":
                healthy_shares[policy] = {g: sum(v) / len(v) for g, v in cell.shares.items()}
            cells.append(cell)
    if stopping is None or not stopping():
        await baseline("after")
    return cells, bare


def cells_planned(chosen: Sequence[str], policies: Sequence[str]) -> tuple[int, int]:
    """How many cells and bare-client runs a choice makes."""
    world = scenarios(1.0)
    degraded = any(world[name].degraded is not None for name in chosen)
    cells = (len(set(chosen) - {"healthy"}) + ("healthy" in chosen or degraded)) * len(policies)
    kinds = any(not world[n].stream for n in chosen) + any(world[n].stream for n in chosen)
    return cells, 2 * kinds


def main(args: argparse.Namespace) -> int:
    """Run the bench from parsed arguments; returns the exit status."""
    try:
        import matplotlib  # noqa: F401  (the plots, at the end: fail now, not after the run)
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    except ImportError:
        print("switchyard bench needs its extras: pip install 'switchyard[bench]'", file=sys.stderr)
        return 2
    settings = QUICK if args.quick else FULL
    settings = Settings(
        duration=args.duration or settings.duration, rate=args.rate or settings.rate, seed=args.seed
    )
    wanted = args.scenario or [*SCENARIOS, REPLICAS]
    chosen = [name for name in wanted if name != REPLICAS]
    policies = args.policy or list(POLICIES)
    shared: dict[str, Any] | None = None
    replicas = REPLICAS in wanted and redis_server_path() is not None
    if REPLICAS in wanted and not replicas:
        shared = {"skipped": "redis-server is not on PATH"}
        print(
            "switchyard bench: replicas skipped: redis-server is not on PATH (install Redis to run it, "
            "e.g. apt-get install redis-server)",
            file=sys.stderr,
        )
    out = pathlib.Path(args.out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(
            f"switchyard bench: --out {str(out)!r} is not a folder it can write to "
            f"({exc.strerror or type(exc).__name__})",
            file=sys.stderr,
        )
        return 2
    console = Console(stderr=True)
    n_cells, n_bare = cells_planned(chosen, policies)
    world = scenarios(settings.scale)
    # A cell's requests: the steady load over its length, and its burst; the healthy baseline
    # cell runs first when a chosen scenario degrades a gateway.
    extra = sum(
        round(settings.requests * (world[n].length - 1)) + world[n].burst for n in chosen if n != "healthy"
    ) * len(policies)
    planned = n_cells + n_bare + 2 * replicas  # the replicas scenario: a memory run and a Redis run
    total = planned * settings.requests + extra
    began = time.monotonic()
    head = provenance("bench", _command(args), "switchyard bench")
    with (
        EmulatorThread(args.seed) as emu,
        Progress(
            TextColumn("[bold]{task.description:<34}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        task = progress.add_task("starting", total=total)
        # Off a terminal (CI logs, `| tee`) rich draws no bar: say each cell as it finishes.
        plain = not console.is_terminal
        running: list[str] = []

        def finished() -> None:
            if plain and running and running[-1] != "warming up":
                done = sum(name != "warming up" for name in running)
                print(
                    f"cell {done}/{planned} done: {running[-1]} ({time.monotonic() - began:.0f}s)",
                    file=sys.stderr,
                    flush=True,
                )

        def on_cell(name: str) -> None:
            finished()
            running.append(name)
            progress.update(task, description=name)

        def on_request() -> None:
            progress.advance(task)

        # Ctrl-C: finish the running cell, then write what is done and exit 130. A second
        # Ctrl-C stops at once.
        interrupted: list[int] = []

        def on_sigint(signum: int, frame: object) -> None:
            interrupted.append(signum)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            print("\ninterrupted: finishing the running cell (Ctrl-C again to stop now)", file=sys.stderr)

        previous = signal.signal(signal.SIGINT, on_sigint)
        try:
            with warnings.catch_warnings():
                # The emulator serves the seeds' catalogs, with OneAI's duplicate deepseek-r1 row;
                # `switchyard catalog` reports it, and the bench does not route that model.
                warnings.simplefilter("ignore", CatalogConflictWarning)

                async def everything() -> tuple[
                    list[CellResult], dict[str, list[float]], dict[str, Any] | None
                ]:
                    cells: list[CellResult] = []
                    bare: dict[str, list[float]] = {}
                    if chosen:
                        cells, bare = await run(
                            chosen, policies, settings, emu, on_cell, on_request, lambda: bool(interrupted)
                        )
                    if not replicas or interrupted:
                        return cells, bare, shared
                    with RedisServer() as server:
                        phases: list[str] = []

                        def on_phase(name: str) -> None:
                            progress.advance(task, settings.requests * len(phases))
                            phases.append(name)
                            on_cell(name)

                        result = await run_replicas(emu, settings, server.url, on_phase)
                        progress.advance(task, settings.requests)
                    return cells, bare, result

                cells, bare, shared = asyncio.run(everything())
        except KeyboardInterrupt:
            print("switchyard bench: stopped; nothing written", file=sys.stderr)
            return 130
        finally:
            signal.signal(signal.SIGINT, previous)
        finished()
        progress.update(task, completed=total, description="done")
    if interrupted and not cells:
        print("switchyard bench: interrupted before any cell finished; nothing written", file=sys.stderr)
        return 130
    elapsed = time.monotonic() - began
    report = _report(head, cells, bare, settings, chosen, policies, elapsed, bool(interrupted))
    if shared is not None:
        report[REPLICAS] = shared
    write_json(out / RESULTS, report)
    drawn = render(out, report) if cells else []
    stdout = Console()
    for t in tables(cells, bare) if cells else []:
        stdout.print(t)
        stdout.print()
    if shared is not None and "runs" in shared:
        stdout.print(replicas_table(shared))
        stdout.print()
    disagree = [c for c in cells if not c.counts_agree]
    runs = "; ".join(
        f"{kind} {mean(runs):.0f} us/request ({', '.join(f'{r:.0f}' for r in runs)} before/after)"
        for kind, runs in bare.items()
        if runs
    )
    done = f"{len(cells)} cells in {elapsed:.0f}s; bare aiohttp {runs}" if cells else f"{elapsed:.0f}s"
    console.print(
        f"{done}; wrote {out / RESULTS}" + (f" and {', '.join(p.name for p in drawn)}" if drawn else "")
    )
    if interrupted:
        console.print(f"interrupted after {len(cells)} finished cells; their results are written")
        return 130
    if disagree:
        for c in disagree:
            console.print(
                f"[red]request counts disagree in {c.scenario}/{c.policy}: router {dict(c.counts_router)} "
                f"(and cancelled on their way {dict(c.counts_cancelled)}), emulator {dict(c.counts_emulator)}"
            )
        return 1
    return 0


def _command(args: argparse.Namespace) -> list[str]:
    """The bench's arguments that shape its figures, as a user would type them (``--out`` left out)."""
    argv = ["--quick"] if args.quick else []
    for name in args.scenario or ():
        argv += ["--scenario", name]
    for name in args.policy or ():
        argv += ["--policy", name]
    if args.seed:
        argv += ["--seed", str(args.seed)]
    if args.duration:
        argv += ["--duration", f"{args.duration:g}"]
    if args.rate:
        argv += ["--rate", f"{args.rate:g}"]
    return argv


def _report(
    head: Mapping[str, Any],
    cells: Sequence[CellResult],
    bare: Mapping[str, Sequence[float]],
    settings: Settings,
    chosen: Sequence[str],
    policies: Sequence[str],
    elapsed: float,
    interrupted: bool,
) -> dict[str, Any]:
    world = scenarios(settings.scale)
    return build(
        head,
        cells,
        bare,
        settings={
            "duration_s": settings.duration,
            "rate_per_s": settings.rate,
            "requests_per_cell": settings.requests,
            "time_scale": settings.scale,
            "seed": settings.seed,
        },
        descriptions={name: world[name].description for name in world},
        assumptions={
            "model": MODEL,
            "prices_usd_per_million": PRICES,
            "latency_median_p99_s_before_scaling": LATENCY,
            "router_hooks": "one event hook (the bench's own instrumentation) is attached",
        },
        elapsed=elapsed,
        subset=set(chosen) != set(SCENARIOS) or set(policies) != set(POLICIES),
        interrupted=interrupted,
    )
