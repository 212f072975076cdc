"""``report.html``: one self-contained page of a bench run, to share as one file.

The tables, the plots (inlined as base64 PNG), the scenarios, and where the run
was measured. Nothing is fetched from anywhere: no scripts, no external styles,
fonts or images.
"""

from __future__ import annotations

import base64
import html
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

from ._metrics import CellResult

__all__ = ["write_html"]

_CAPTIONS = {
    "traffic_share.png": (
        "Where the traffic went: each gateway's share of the attempts over time, one row per scenario and "
        "one column per policy. The coloured bar above a panel spans the time a gateway was impaired (in "
        "that gateway's colour); its band is hatched over the same span."
    ),
    "cost_vs_p95.png": (
        "Which policy is cheapest at which tail latency: one panel per scenario, one marker per policy. "
        "Cost is against serving every answer at the cheapest price (1.0); lower left is better."
    ),
    "latency_cdf.png": (
        "Latency distribution per policy (log scale). A curve that stops short of 1.0 had failures."
    ),
    "ttft.png": "Time to first token of the streaming scenarios, per policy (log scale).",
}

_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1d2329;
       margin: 0; background: #f6f7f9; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 28px 60px; background: #fff; }
h1 { font-size: 26px; margin: 4px 0 2px; }
h2 { font-size: 19px; margin: 34px 0 8px; border-bottom: 1px solid #dde1e6; padding-bottom: 4px; }
.lede { color: #4a5560; margin: 0 0 14px; }
code { font: 13px ui-monospace, "SFMono-Regular", Menlo, Consolas, monospace; background: #f0f2f4;
       padding: 1px 4px; border-radius: 3px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 3px 16px; margin: 0; }
dl.facts dt { color: #5b6670; }
dl.facts dd { margin: 0; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; font-size: 13.5px; }
th, td { padding: 3px 10px; text-align: right; white-space: nowrap; }
th { border-bottom: 2px solid #bcc4cc; font-weight: 600; }
th:nth-child(-n+2), td:nth-child(-n+2) { text-align: left; }
tr.first td { border-top: 1px solid #e3e7eb; }
th.group { border-bottom: 1px solid #dde1e6; text-align: center; color: #4a5560; font-weight: 500; }
th.sep, td.sep { border-left: 1px solid #e3e7eb; }
table.glance td, table.glance th { text-align: left; }
td.bad { color: #b3261e; font-weight: 600; }
td.dim { color: #9aa3ab; }
figure { margin: 18px 0 30px; }
figure img { max-width: 100%; height: auto; border: 1px solid #e3e7eb; }
figcaption { color: #4a5560; font-size: 14px; margin-top: 6px; max-width: 900px; }
ul.scenarios { padding-left: 20px; margin: 6px 0; }
.warn { background: #fff4e5; border-left: 4px solid #e8a33d; padding: 8px 12px; }
.note { color: #5b6670; font-size: 13.5px; max-width: 900px; }
"""


def _e(value: object) -> str:
    return html.escape(str(value))


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _facts(report: Mapping[str, Any]) -> str:
    m = report["machine"]
    s = report["settings"]
    commit = m.get("git_commit")
    commit_text = (
        "not a git checkout"
        if commit is None
        else commit[:12] + (" (with local changes)" * bool(m.get("git_dirty")))
    )
    load = m.get("load_average")
    rows = [
        ("command", f"<code>{_e(report['command'])}</code>"),
        ("started", _e(report["started"])),
        ("took", f"{report['elapsed_s']:.0f} s" + (" (interrupted)" if report.get("interrupted") else "")),
        (
            "cells",
            f"{s['duration_s']:g} s each, {s['rate_per_s']:g} requests/s open loop "
            f"({s['requests_per_cell']:,} requests)"
            + ("" if s["time_scale"] == 1.0 else f"; time compressed {1 / s['time_scale']:g}x"),
        ),
        ("machine", f"{m.get('cores')} cores, {_e(m.get('cpu_model') or 'CPU model unknown')}"),
        (
            "software",
            f"Python {_e(m['python'])} on {_e(m['platform'])}; switchyard {_e(m['switchyard'])}, "
            f"commit {_e(commit_text)}",
        ),
        (
            "load average",
            "unknown" if load is None else " / ".join(f"{x:.2f}" for x in load) + " (1, 5, 15 min, at start)",
        ),
    ]
    for kind, b in report["baseline"].items():
        runs = ", ".join(f"{r:,.0f}" for r in b["runs_cpu_us_per_request"])
        rows.append(
            (f"bare aiohttp, {kind}", f"{b['cpu_us_per_request']:,.0f} µs CPU per request (runs: {runs})")
        )
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _classes(*names: str) -> str:
    """`` class="a b"`` for the names given, nothing when there are none."""
    named = " ".join(n for n in names if n)
    return f' class="{named}"' if named else ""


def _cells(cells: Sequence[CellResult], ratios: Mapping[tuple[str, str], float | None]) -> str:
    """Every cell in one row: what happened, how fast, what the router's CPU cost."""
    groups = (
        ("", 2),
        ("outcome", 6),
        ("moved (s)", 2),
        ("latency (ms)", 3),
        ("first token (ms)", 2),
        ("router CPU", 2),
    )
    head = (
        "scenario", "policy", "ok", "att", "cost", "429", "trip", "restarts", "off", "back",
        "p50", "p95", "p99", "p50", "p95", "µs", "x bare",
    )  # fmt: skip
    rows = []
    previous = None
    for c in cells:
        first = c.scenario != previous
        previous = c.scenario
        ttft = c.ttft_ms or {}
        values = [
            _e(c.scenario) if first else "",
            _e(c.policy),
            f"{c.success_rate:.1%}",
            f"{c.attempts_per_request:.2f}",
            _num(c.cost_ratio, ".2f"),
            str(c.rate_limited),
            str(c.breaker_trips),
            str(c.restarts),
            _num(c.move_off_s, ".2f"),
            _num(c.move_back_s, ".2f"),
            *(_num(c.latency_ms[q], ",.0f") for q in ("p50", "p95", "p99")),
            *(_num(ttft.get(q), ",.0f") for q in ("p50", "p95")),
            f"{c.cpu_us_per_request:,.0f}",
            _num(ratios.get((c.scenario, c.policy)), ".2f"),
        ]
        classes = ["", "", "" if c.success_rate == 1.0 else "bad"] + [""] * (len(values) - 3)
        classes = [k or ("dim" if v == "-" else "") for k, v in zip(classes, values, strict=True)]
        starts = {sum(n for _, n in groups[: i + 1]) for i in range(len(groups) - 1)}
        cells_html = "".join(
            f"<td{_classes(k, 'sep' if i in starts else '')}>{v}</td>"
            for i, (k, v) in enumerate(zip(classes, values, strict=True))
        )
        rows.append(f"<tr{_classes('first' if first else '')}>{cells_html}</tr>")
    top = "".join(f'<th colspan="{n}" class="group">{_e(name)}</th>' for name, n in groups)
    starts = {sum(n for _, n in groups[: i + 1]) for i in range(len(groups) - 1)}
    sub = "".join(f"<th{_classes('sep' if i in starts else '')}>{_e(h)}</th>" for i, h in enumerate(head))
    return f"<table><thead><tr>{top}</tr><tr>{sub}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _glance(cells: Sequence[CellResult]) -> str:
    """Per scenario, which policy was cheapest and which had the lowest p95, among those that answered all."""
    scenarios = list(dict.fromkeys(c.scenario for c in cells))
    rows = []
    for scenario in scenarios:
        mine = [c for c in cells if c.scenario == scenario]
        whole = [c for c in mine if c.success_rate == 1.0] or mine

        def best(key: Any, fmt: str, within: float = 0.0, pool: Sequence[CellResult] = whole) -> str:
            scored = [(key(c), c.policy) for c in pool if key(c) is not None]
            if not scored:
                return "-"
            low = min(v for v, _ in scored)
            names = ", ".join(
                p for v, p in scored if format(v, fmt) == format(low, fmt) or v <= low * (1 + within)
            )
            return f"{_e(names)} ({format(low, fmt)})"

        rows.append(
            f"<tr><td>{_e(scenario)}</td>"
            f"<td>{best(lambda c: c.cost_ratio, '.2f')}</td>"
            f"<td>{best(lambda c: c.latency_ms['p95'], ',.0f', within=0.05)}</td>"
            f"<td>{best(lambda c: c.attempts_per_request, '.2f')}</td></tr>"
        )
    head = "".join(
        f"<th>{h}</th>" for h in ("scenario", "lowest cost", "lowest p95 (ms; within 5%)", "fewest attempts")
    )
    return f'<table class="glance"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _figure(path: pathlib.Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    caption = _CAPTIONS.get(path.name, "")
    return (
        f'<figure id="{_e(path.stem)}"><img alt="{_e(path.stem)}" src="data:image/png;base64,{data}">'
        f"<figcaption><code>{_e(path.name)}</code>: {_e(caption)}</figcaption></figure>"
    )


def write_html(
    path: pathlib.Path, report: Mapping[str, Any], cells: Sequence[CellResult], plots: Sequence[pathlib.Path]
) -> pathlib.Path:
    """Write the run's page to ``path`` (the plots read from their files and inlined); returns ``path``."""
    ratios = {(c["scenario"], c["policy"]): c.get("cpu_ratio_to_bare") for c in report["cells"]}
    disagree = [c for c in cells if not c.counts_agree]
    failing = [c for c in cells if c.success_rate < 1.0]
    scenarios = "".join(
        f"<li><b>{_e(name)}</b>: {_e(text)}</li>" for name, text in report["scenarios"].items()
    )
    warnings = ""
    if report.get("interrupted"):
        warnings += '<p class="warn">This run was interrupted: only the cells below finished.</p>'
    if disagree:
        names = ", ".join(f"{c.scenario}/{c.policy}" for c in disagree)
        warnings += (
            f"<p class=\"warn\">The router's and the emulator's request counts disagree in {_e(names)}.</p>"
        )
    summary = (
        f"{len(cells)} cells, {len(report['scenarios'])} scenarios x {len(report['policies'])} policies; "
        + ("every request succeeded." if not failing else f"{len(failing)} cells had failed requests.")
    )
    prices = ", ".join(
        f"{_e(g)} {p[0]:.2f}/{p[1]:.2f}" for g, p in report["assumptions"]["prices_usd_per_million"].items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>switchyard bench: {_e(report["started"])}</title>
<style>{_CSS}</style></head>
<body><main>
<h1>switchyard bench</h1>
<p class="lede">{_e(summary)}</p>
{warnings}
{_facts(report)}
<h2>Scenarios and policies</h2>
<ul class="scenarios">{scenarios}</ul>
<p>Policies: {", ".join(f"<code>{_e(p)}</code>" for p in report["policies"])}.
Model <code>{_e(report["assumptions"]["model"])}</code> at four gateways; prices (USD per 1M tokens in/out):
{prices}.</p>
<h2>At a glance</h2>
{_glance(cells)}
<p class="note">Per scenario, among the policies that answered every request: the lowest cost (against serving
every answer at the cheapest price), the lowest p95 latency (with any policy within 5% of it: one run's p95
moves that much), the fewest upstream attempts per request.</p>
<h2>Every cell</h2>
{_cells(cells, ratios)}
<p class="note"><b>ok</b>: requests answered completely; <b>att</b>: upstream attempts per request;
<b>cost</b>: against serving every answer at the cheapest price; <b>429</b>: rate-limit answers received;
<b>trip</b>: breakers opened; <b>restarts</b>: streams restarted on another gateway;
<b>off</b>: seconds from the degradation until the degraded gateway's share of the last twenty attempts fell
under half its healthy share and then stayed under for a tenth of the degraded period (the first such move);
<b>back</b>: seconds from its recovery until that share rose over half again; <b>µs</b>: the router's
thread CPU per request (the emulator runs on another thread); <b>x bare</b>: that against a bare aiohttp
client making the same requests (streamed, for streams) in the same run, before and after the cells;
<b>-</b>: never, or not applicable.</p>
<h2>Plots</h2>
{"".join(_figure(p) for p in plots)}
</main></body></html>
"""
    path.write_text(page, encoding="utf-8")
    return path
