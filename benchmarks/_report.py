"""The benchmark's reports: a table on the terminal, JSON with every figure, PNG plots."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._metrics import CellResult
from ._scenarios import GATEWAYS

__all__ = ["PLOTS", "cpu_ratio", "tables", "write_json", "write_plots"]

PLOTS = ("latency_cdf.png", "traffic_share.png", "cost_vs_p95.png", "ttft.png")
_SHARE_SCENARIOS = ("gateway-down", "down-recovering", "latency-shift")
_COLORS = {"oneai": "#1f77b4", "onerouter": "#ff7f0e", "onetoken": "#2ca02c", "onellm": "#d62728"}


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
    under half its healthy share for good, and rose back over half after it
    recovered (see ``_cell._move_times``); ``cpu us``: the
    router's thread CPU per request; ``x bare``: that against a bare aiohttp client
    doing the same POSTs (streamed, for a streaming scenario) in the same run.
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


def write_json(path: pathlib.Path, report: Mapping[str, Any]) -> None:
    """Every figure, as JSON."""
    path.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")


def write_plots(out: pathlib.Path, cells: Sequence[CellResult], note: str = "") -> list[pathlib.Path]:
    """Latency CDFs, traffic shares over time, cost against p95, time to first token of streams.

    ``note`` goes under each plot's title (the bench says there when time was compressed).
    """
    suffix = f"\n{note}" if note else ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    policies = list(dict.fromkeys(c.policy for c in cells))
    by = {(c.scenario, c.policy): c for c in cells}

    # Latency CDF per policy, one panel per scenario.
    cols = min(3, len(scenarios))
    rows = (len(scenarios) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for i, scenario in enumerate(scenarios):
        ax = axes[i // cols][i % cols]
        for policy in policies:
            cell = by.get((scenario, policy))
            if cell is None or not cell.latencies_ms:
                continue
            xs = list(cell.latencies_ms)
            ys = [(k + 1) / cell.requests for k in range(len(xs))]
            ax.step(xs, ys, where="post", label=policy)
        ax.set_title(scenario, fontsize=10)
        ax.set_xlabel("latency (ms)")
        ax.set_ylabel("share of requests")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    for j in range(len(scenarios), rows * cols):
        axes[j // cols][j % cols].axis("off")
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Latency CDF per policy (failed requests never reach 1.0){suffix}")
    fig.tight_layout()
    written.append(_save(fig, out / "latency_cdf.png", plt))

    # Each gateway's share of traffic over time, in the outage and shift scenarios.
    share_scenarios = [s for s in _SHARE_SCENARIOS if s in scenarios]
    if share_scenarios:
        fig, axes = plt.subplots(
            len(share_scenarios),
            len(policies),
            figsize=(4.2 * len(policies), 2.8 * len(share_scenarios)),
            squeeze=False,
        )
        for i, scenario in enumerate(share_scenarios):
            for j, policy in enumerate(policies):
                ax = axes[i][j]
                cell = by.get((scenario, policy))
                if cell is None:
                    ax.axis("off")
                    continue
                n = len(next(iter(cell.shares.values())))
                # Each bin as a flat step from its start to its end.
                xs = [edge * cell.bin_seconds for k in range(n) for edge in (k, k + 1)]
                ax.stackplot(
                    xs,
                    *[[v for v in cell.shares[g] for _ in (0, 1)] for g in GATEWAYS],
                    labels=list(GATEWAYS),
                    colors=[_COLORS[g] for g in GATEWAYS],
                    alpha=0.85,
                )
                if cell.degraded_s is not None:
                    ax.axvspan(*cell.degraded_s, facecolor="none", edgecolor="black", hatch="//", alpha=0.35)
                ax.set_title(f"{scenario} / {policy}", fontsize=9)
                ax.set_ylim(0, 1)
                ax.set_xlim(0, cell.bin_seconds * n)
                ax.set_xlabel("time (s)")
        handles, labels = axes[0][0].get_legend_handles_labels()
        fig.suptitle(f"Each gateway's share of attempts over time (hatched: the gateway degraded){suffix}")
        fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.93), ncol=4, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.91))
        written.append(_save(fig, out / "traffic_share.png", plt))

    # Cost against p95, one point per scenario and policy.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for policy in policies:
        points: list[tuple[float, float, str]] = []
        for c in cells:
            p95, ratio = c.latency_ms["p95"], c.cost_ratio
            if c.policy == policy and p95 is not None and ratio is not None:
                points.append((p95, ratio, c.scenario))
        ax.scatter([p[0] for p in points], [p[1] for p in points], label=policy, s=36)
        for x, y, name in points:
            ax.annotate(name, (x, y), fontsize=6, alpha=0.7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("p95 latency (ms)")
    ax.set_ylabel("cost / cheapest possible")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"Cost against p95 latency, per policy{suffix}")
    fig.tight_layout()
    written.append(_save(fig, out / "cost_vs_p95.png", plt))

    # Time to first token in the streaming scenario.
    streaming = [c for c in cells if c.ttft_ms is not None]
    if streaming:
        fig, ax = plt.subplots(figsize=(6, 4))
        for cell in streaming:
            ax.bar(cell.policy, cell.ttft_ms["p50"] or 0.0, label=None, alpha=0.8)  # type: ignore[index]
            ax.errorbar(
                cell.policy,
                cell.ttft_ms["p50"] or 0.0,  # type: ignore[index]
                yerr=[[0.0], [(cell.ttft_ms["p95"] or 0.0) - (cell.ttft_ms["p50"] or 0.0)]],  # type: ignore[index]
                fmt="none",
                color="black",
                capsize=4,
            )
        ax.set_ylabel("time to first token (ms): p50, bar to p95")
        ax.set_title(f"{streaming[0].scenario}: time to first token{suffix}")
        fig.tight_layout()
        written.append(_save(fig, out / "ttft.png", plt))
    return written


def _save(fig: Any, path: pathlib.Path, plt: Any) -> pathlib.Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
