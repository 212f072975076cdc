"""The bench's two tables on the terminal: what happened in each cell, and how fast."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._metrics import CellResult

__all__ = ["cpu_ratio", "tables"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _table(title: str, columns: Sequence[str], caption: str) -> Any:
    from rich import box
    from rich.table import Table

    t = Table(
        title=title,
        caption=caption,
        box=box.SIMPLE_HEAD,
        header_style="bold",
        padding=(0, 1, 0, 0),
        pad_edge=False,
        title_justify="left",
        caption_justify="left",
    )
    for i, column in enumerate(columns):
        t.add_column(column, justify="left" if i < 2 else "right", no_wrap=True)
    return t


def cpu_ratio(cell: CellResult, bare: Mapping[str, Sequence[float]]) -> float | None:
    """The cell's router CPU per request against the bare client's of the same kind (chat or stream)."""
    runs = bare.get("stream" if cell.stream else "chat")
    return cell.cpu_us_per_request / (sum(runs) / len(runs)) if runs else None


def tables(cells: Sequence[CellResult], bare: Mapping[str, Sequence[float]]) -> list[Any]:
    """Two rich Tables of the cells, each under 80 columns: what happened, and how fast.

    ``ok``: requests that succeeded; ``att``: upstream attempts per request;
    ``cost``: cost against serving every success at the cheapest price; ``429``:
    rate-limit answers received; ``trip``: breakers opened; ``off``/``back``:
    seconds until the degraded gateway's share of the last twenty attempts fell
    under half its healthy share and held there for a tenth of the degraded period,
    and rose back over half after it recovered (see
    ``_metrics._move_times``); ``cpu us``: the router's thread CPU per request;
    ``x bare``: that against a bare aiohttp client doing the same POSTs (streamed,
    for a streaming scenario) in the same run.
    """
    outcome = _table(
        "switchyard bench: outcomes",
        ("scenario", "policy", "ok", "att", "cost", "429", "trip", "off", "back"),
        "att: upstream attempts per request; cost: x the cheapest possible; 429: rate-limit answers; "
        "trip: breakers opened; off/back: seconds to move off the degraded gateway and back",
    )
    speed = _table(
        "switchyard bench: latency (ms) and router CPU",
        ("scenario", "policy", "p50", "p95", "p99", "ttft p50", "cpu us", "x bare"),
        "cpu us: router thread CPU per request; x bare: against bare aiohttp doing the same POSTs "
        "(streamed for streams) in this run",
    )
    for c in cells:
        outcome.add_row(
            c.scenario,
            c.policy,
            f"{c.success_rate:.1%}",
            f"{c.attempts_per_request:.2f}",
            "-" if c.cost_ratio is None else f"{c.cost_ratio:.2f}",
            str(c.rate_limited),
            str(c.breaker_trips),
            _s(c.move_off_s),
            _s(c.move_back_s),
        )
        speed.add_row(
            c.scenario,
            c.policy,
            _ms(c.latency_ms["p50"]),
            _ms(c.latency_ms["p95"]),
            _ms(c.latency_ms["p99"]),
            _ms(c.ttft_ms["p50"] if c.ttft_ms else None),
            f"{c.cpu_us_per_request:,.0f}",
            "-" if (ratio := cpu_ratio(c, bare)) is None else f"{ratio:.2f}",
        )
    return [outcome, speed]
