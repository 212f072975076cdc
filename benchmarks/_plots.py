"""The bench's plots, one per question a person choosing a policy asks.

- ``traffic_share.png``: where did the traffic go when a gateway broke? Each
  gateway's share of the attempts over time, one panel per scenario and policy,
  the impaired gateway's band hatched and its impairment drawn as a bar above.
- ``cost_vs_p95.png``: which policy is cheapest at which tail latency? One panel
  per scenario, one marker per policy (no labels to collide).
- ``latency_cdf.png``: the whole latency distribution per policy, per scenario.
- ``ttft.png``: time to first token of the streaming scenarios, as distributions.

Drawn from :class:`CellResult` values only, so a results file redraws them.
"""

from __future__ import annotations

import pathlib
import textwrap
from collections.abc import Sequence
from typing import Any

from ._metrics import CellResult
from ._scenarios import GATEWAYS

__all__ = ["PLOTS", "write_plots"]

PLOTS = ("traffic_share.png", "cost_vs_p95.png", "latency_cdf.png", "ttft.png")
COLORS = {"oneai": "#4477aa", "onerouter": "#ee7733", "onetoken": "#228833", "onellm": "#cc3311"}
# Policies by marker and colour; cheapest and failover often land on the same point, so one is
# hollow and large and the other small and solid: both stay visible.
_POLICY_STYLE: dict[str, dict[str, Any]] = {
    "cheapest": {"marker": "o", "s": 150, "facecolors": "none", "edgecolors": "#4477aa", "linewidths": 1.8},
    "latency": {"marker": "s", "s": 60, "color": "#ee7733"},
    "failover": {"marker": "X", "s": 60, "color": "#222222"},
}
_POLICY_COLORS = {"cheapest": "#4477aa", "latency": "#ee7733", "failover": "#222222"}
# In the distributions, failover's line is dashed and on top: where it follows cheapest's, both show.
_POLICY_LINES: dict[str, dict[str, Any]] = {
    "cheapest": {"lw": 2.6, "alpha": 0.75},
    "latency": {"lw": 1.6},
    "failover": {"lw": 1.3, "ls": (0, (4, 2))},
}
_DPI = 100


def _style(policy: str, i: int) -> dict[str, Any]:
    return _POLICY_STYLE.get(policy, {"marker": "D", "s": 50, "color": f"C{i + 3}"})


def _color(policy: str, i: int) -> str:
    return _POLICY_COLORS.get(policy, f"C{i + 3}")


def write_plots(out: pathlib.Path, cells: Sequence[CellResult], note: str = "") -> list[pathlib.Path]:
    """Write the plots the cells allow into ``out``; returns their paths.

    ``note`` goes under each plot's title (the bench says there when time was compressed).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    suffix = f"\n{note}" if note else ""
    written = [
        _traffic_share(plt, out, cells, suffix),
        _cost_vs_p95(plt, out, cells, suffix),
        _latency_cdf(plt, out, cells, suffix),
        _ttft(plt, out, cells, suffix),
    ]
    return [path for path in written if path is not None]


def _grid(
    plt: Any,
    rows: int,
    cols: int,
    panel: tuple[float, float],
    top: float,
    gaps: tuple[float, float] = (0.55, 0.75),
    **kwargs: Any,
) -> tuple[Any, Any]:
    """A figure of rows x cols panels of ``panel`` inches, with ``top`` inches above for titles and legend.

    Laid out by hand in inches (tight_layout leaves a figure legend out of its sums).
    """
    (panel_w, panel_h), (wgap, hgap) = panel, gaps
    left, right, bottom = 0.6, 0.15, 0.5
    width = left + right + cols * panel_w + (cols - 1) * wgap
    height = top + bottom + rows * panel_h + (rows - 1) * hgap
    fig, axes = plt.subplots(rows, cols, figsize=(width, height), squeeze=False, **kwargs)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        top=1 - top / height,
        bottom=bottom / height,
        hspace=hgap / panel_h,
        wspace=wgap / panel_w,
    )
    return fig, axes


def _heading(fig: Any, title: str, legend: Any = None, **legend_kwargs: Any) -> None:
    """The title at the top of ``fig``, and a legend in one row under it."""
    height = fig.get_figheight()
    lines = title.count("\n") + 1
    fig.suptitle(title, fontsize=11, y=1 - 0.1 / height, va="top")
    if legend is not None:
        handles, labels = legend
        fig.legend(
            handles,
            labels,
            loc="center",
            bbox_to_anchor=(0.5, 1 - (0.3 + 0.2 * lines) / height),
            ncol=len(labels),
            frameon=False,
            fontsize=9,
            **legend_kwargs,
        )


def _names(cells: Sequence[CellResult]) -> tuple[list[str], list[str], dict[tuple[str, str], CellResult]]:
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    policies = list(dict.fromkeys(c.policy for c in cells))
    return scenarios, policies, {(c.scenario, c.policy): c for c in cells}


def _impaired(cell: CellResult) -> str:
    return "; ".join(f"{i.gateway} {i.what}" for i in cell.impairments) or "nothing impaired"


def _traffic_share(
    plt: Any, out: pathlib.Path, cells: Sequence[CellResult], suffix: str
) -> pathlib.Path | None:
    scenarios, policies, by = _names(cells)
    if not cells:
        return None
    from matplotlib.patches import Patch

    rows, cols = len(scenarios), len(policies)
    top = 1.35 if suffix else 1.15
    fig, axes = _grid(plt, rows, cols, (3.7, 1.45), top, (0.25, 0.5), sharex=True, sharey=True)
    height = fig.get_figheight()
    for i, scenario in enumerate(scenarios):
        for j, policy in enumerate(policies):
            ax = axes[i][j]
            cell = by.get((scenario, policy))
            if cell is None:
                ax.axis("off")
                continue
            _share_panel(ax, cell)
            if j == 0:
                ax.set_title(f"{scenario}: {_impaired(cell)}", loc="left", fontsize=9.5, fontweight="bold")
                ax.set_ylabel("share", fontsize=8)
            if i == rows - 1:
                ax.set_xlabel("seconds into the cell", fontsize=8)
    for j, policy in enumerate(policies):
        box = axes[0][j].get_position()
        fig.text(
            (box.x0 + box.x1) / 2,
            1 - (top - 0.2) / height,
            policy,
            ha="center",
            va="bottom",
            fontsize=12,
            fontweight="bold",
        )
    handles = [Patch(facecolor=COLORS[g], label=g) for g in GATEWAYS]
    handles.append(Patch(facecolor="#888888", hatch="////", edgecolor="white", label="the impaired gateway"))
    _heading(
        fig,
        "Each gateway's share of attempts over time (the bar above: when a gateway is impaired)" + suffix,
        (handles, [str(h.get_label()) for h in handles]),
    )
    return _save(plt, fig, out / "traffic_share.png")


def _share_panel(ax: Any, cell: CellResult) -> None:
    """One cell's stacked shares, its impaired gateway's band hatched, the impairments as bars above."""
    n = len(cell.shares[GATEWAYS[0]])
    width = cell.bin_seconds
    # Each bin as a flat step from its start to its end.
    xs = [edge * width for k in range(n) for edge in (k, k + 1)]
    bands = [[v for v in cell.shares[g] for _ in (0, 1)] for g in GATEWAYS]
    ax.stackplot(xs, *bands, colors=[COLORS[g] for g in GATEWAYS], alpha=0.9, linewidth=0)
    for k, imp in enumerate(cell.impairments):
        g = GATEWAYS.index(imp.gateway)
        lower = [sum(bands[m][x] for m in range(g)) for x in range(len(xs))]
        upper = [lo + bands[g][x] for x, lo in enumerate(lower)]
        inside = [imp.start <= x <= imp.end for x in xs]
        ax.fill_between(
            xs, lower, upper, where=inside, facecolor="none", edgecolor="white", hatch="////", lw=0
        )
        y = 1.04 + 0.11 * k
        ax.fill_between([imp.start, imp.end], y, y + 0.08, color=COLORS[imp.gateway], lw=0)
        for edge in (imp.start, imp.end):
            if 0 < edge < width * n:
                ax.axvline(edge, color="black", lw=0.8, ls="--")
    ax.set_ylim(0, 1.04 + 0.11 * max(len(cell.impairments), 1))
    ax.set_xlim(0, width * n)
    ax.set_yticks([0, 0.5, 1.0])
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def _cost_vs_p95(
    plt: Any, out: pathlib.Path, cells: Sequence[CellResult], suffix: str
) -> pathlib.Path | None:
    scenarios, policies, by = _names(cells)
    if not cells:
        return None
    cols = min(4, len(scenarios) + 1)
    rows = (len(scenarios) + 1 + cols - 1) // cols  # one more panel for the legend
    fig, axes = _grid(plt, rows, cols, (2.9, 2.3), 0.75 if suffix else 0.55)
    ratios = [c.cost_ratio for c in cells if c.cost_ratio is not None] or [1.0]
    # One cost scale for every panel, so panels compare; each x from zero, so a gap means what it looks like.
    ylo, yhi = min(min(ratios), 1.0), max(max(ratios), 1.2)
    for k, scenario in enumerate(scenarios):
        ax = axes[k // cols][k % cols]
        xs = []
        for j, policy in enumerate(policies):
            cell = by.get((scenario, policy))
            if cell is None or cell.latency_ms["p95"] is None or cell.cost_ratio is None:
                continue
            x, y = cell.latency_ms["p95"], cell.cost_ratio
            ax.scatter([x], [y], label=policy, zorder=3, **_style(policy, j))
            xs.append(x)
        ax.set_xlim(0, max(xs, default=1.0) * 1.2)
        ax.set_ylim(ylo - 0.08, yhi + 0.08)
        ax.set_title(scenario, fontsize=10)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=8)
        if k % cols == 0:
            ax.set_ylabel("cost / cheapest possible", fontsize=8)
        ax.set_xlabel("p95 latency (ms)", fontsize=8)
    legend_ax = axes[len(scenarios) // cols][len(scenarios) % cols]
    legend_ax.axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    legend_ax.legend(
        handles,
        labels,
        loc="center",
        title="policy",
        fontsize=10,
        frameon=False,
        labelspacing=1.2,
        borderpad=1,
    )
    for k in range(len(scenarios) + 1, rows * cols):
        axes[k // cols][k % cols].axis("off")
    _heading(fig, f"Cost against p95 latency: lower left is better{suffix}")
    return _save(plt, fig, out / "cost_vs_p95.png")


def _latency_cdf(
    plt: Any, out: pathlib.Path, cells: Sequence[CellResult], suffix: str
) -> pathlib.Path | None:
    scenarios, policies, by = _names(cells)
    if not cells:
        return None
    cols = min(4, len(scenarios))
    rows = (len(scenarios) + cols - 1) // cols
    fig, axes = _grid(plt, rows, cols, (3.0, 2.2), 1.25 if suffix else 1.0)
    for k, scenario in enumerate(scenarios):
        ax = axes[k // cols][k % cols]
        for j, policy in enumerate(policies):
            cell = by.get((scenario, policy))
            if cell is None or not cell.latencies_ms:
                continue
            _ecdf(ax, cell.latencies_ms, cell.requests, policy, policy, j)
        _log_x(ax)
        ax.set_title(scenario, fontsize=10)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=8)
        ax.set_xlabel("latency (ms, log scale)", fontsize=8)
        if k % cols == 0:
            ax.set_ylabel("share of requests", fontsize=8)
    for k in range(len(scenarios), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    _heading(
        fig, f"Latency distribution per policy (failed requests never reach 1.0){suffix}", (handles, labels)
    )
    return _save(plt, fig, out / "latency_cdf.png")


def _ttft(plt: Any, out: pathlib.Path, cells: Sequence[CellResult], suffix: str) -> pathlib.Path | None:
    streaming = [c for c in cells if c.stream and c.ttfts_ms]
    if not streaming:
        return None
    scenarios, policies, by = _names(streaming)
    fig, axes = plt.subplots(
        1, len(scenarios), figsize=(6.5 * len(scenarios), 3.9 + 0.3 * bool(suffix)), squeeze=False
    )
    for k, scenario in enumerate(scenarios):
        ax = axes[0][k]
        for j, policy in enumerate(policies):
            cell = by.get((scenario, policy))
            if cell is None:
                continue
            q = cell.ttft_ms or {}
            label = f"{policy} (p50 {q.get('p50') or 0:,.0f}, p95 {q.get('p95') or 0:,.0f} ms)"
            _ecdf(ax, cell.ttfts_ms, cell.requests, label, policy, j)
        _log_x(ax)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, which="both")
        ax.set_xlabel("time to first token (ms, log scale)")
        ax.set_ylabel("share of streams")
        # Wrapped to the panel: a scenario with two impaired gateways says both.
        ax.set_title(textwrap.fill(f"{scenario}: {_impaired(by[scenario, policies[0]])}", 70), fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.suptitle(f"Time to first token, distribution per policy{suffix}", fontsize=11)
    fig.tight_layout()
    return _save(plt, fig, out / "ttft.png")


def _ecdf(ax: Any, values: Sequence[float], total: int, label: str, policy: str, i: int) -> None:
    """The empirical CDF of ``values`` out of ``total`` (the missing ones: failures, never reached)."""
    xs = sorted(values)
    ys = [(k + 1) / total for k in range(len(xs))]
    style = _POLICY_LINES.get(policy, {"lw": 1.5})
    ax.step(xs, ys, where="post", label=label, color=_color(policy, i), **style)


def _log_x(ax: Any) -> None:
    """A log x axis labelled 1, 2, 5, 10, 20... in plain numbers, no crowded minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if x >= 1 else f"{x:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _save(plt: Any, fig: Any, path: pathlib.Path) -> pathlib.Path:
    fig.savefig(path, dpi=_DPI)
    plt.close(fig)
    return path
