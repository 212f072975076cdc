"""The README's figures, written from results files: each a range over the runs, with the machine named.

A figure that varies from run to run is given as its range over the runs
(``1.05–1.07``); one that did not vary at the precision shown, as one number. A
figure that happened in some runs and not in others (a policy moved off a gateway
in one run, never in another) reads ``0.45 or -``. Each block says which command
wrote its files, how many runs, and on what machine.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = ["Figures", "Report", "Span", "bench_block", "latency", "machine_line", "runs", "tables"]

Report = Mapping[str, Any]


class Span:
    """One figure over several runs: None where it did not happen (or does not apply) in a run."""

    def __init__(self, values: Iterable[float | None]) -> None:
        self.values = tuple(values)
        self.numbers = [v for v in self.values if v is not None]

    @property
    def never(self) -> bool:
        """It happened in no run."""
        return not self.numbers

    @property
    def always(self) -> bool:
        """It happened in every run."""
        return len(self.numbers) == len(self.values) > 0

    def text(self, spec: str, scale: float = 1.0) -> str:
        """``lo–hi`` (one number when both read the same), ``-`` if never, `` or -`` if only sometimes."""
        if not self.numbers:
            return "-"
        lo, hi = (
            format(v * scale if scale != 1.0 else v, spec) for v in (min(self.numbers), max(self.numbers))
        )
        unit = "%" if lo.endswith("%") and hi.endswith("%") else ""
        shown = lo if lo == hi else f"{lo.removesuffix(unit)}–{hi}"  # 45–46%, not 45%–46%
        return shown if self.always else f"{shown} or -"


def _merge(spans: Iterable[Span]) -> Span:
    return Span(v for s in spans for v in s.values)


class Figures:
    """The cells of several runs of one mode of the bench, by (scenario, policy)."""

    def __init__(self, reports: Sequence[Report]) -> None:
        if not reports:
            raise ValueError("no results files")
        first = reports[0]
        self.reports = list(reports)
        self.scenarios: list[str] = list(first["scenarios"])
        self.policies: list[str] = list(first["policies"])
        self.cells: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for report in reports:
            if list(report["scenarios"]) != self.scenarios or list(report["policies"]) != self.policies:
                raise ValueError(f"runs of different scenarios or policies: {report['command']!r}")
            for cell in report["cells"]:
                self.cells.setdefault((cell["scenario"], cell["policy"]), []).append(cell)

    def span(
        self, scenario: str, policies: str | Sequence[str], figure: Callable[[Mapping[str, Any]], Any]
    ) -> Span:
        """``figure`` of the cell in every run, for one policy or several together."""
        names = [policies] if isinstance(policies, str) else policies
        return _merge(Span(figure(c) for c in self.cells[scenario, p]) for p in names)

    def every(self, figure: Callable[[Mapping[str, Any]], Any], stream: bool | None = None) -> Span:
        """``figure`` of every cell of every run (only the streaming ones, or only the others)."""
        return Span(
            figure(c)
            for cells in self.cells.values()
            for c in cells
            if stream is None or c["stream"] == stream
        )

    def run(self, figure: Callable[[Report], Any]) -> Span:
        """A figure of each whole run."""
        return runs(self.reports, figure)


def runs(reports: Sequence[Report], figure: Callable[[Report], Any]) -> Span:
    """A figure of each of several results files."""
    return Span(figure(r) for r in reports)


def machine_line(reports: Sequence[Report]) -> str:
    """Where the runs were measured, as one sentence.

    Raises:
        ValueError: the runs come from different machines or interpreters (their ranges would mean nothing).
    """
    machines = [r["machine"] for r in reports]
    keys = ("cores", "cpu_model", "python", "python_implementation")
    kinds = {tuple(m.get(k) for k in keys) for m in machines}
    if len(kinds) > 1:
        raise ValueError(f"results from different machines or interpreters: {sorted(map(str, kinds))}")
    m = machines[0]
    system = str(m.get("platform") or "unknown").split("-")[0]
    versions = sorted({str(x.get("switchyard")) for x in machines})
    commits = sorted(
        {
            (x.get("git_commit") or "")[:7] + (" with local changes" * bool(x.get("git_dirty")))
            for x in machines
        }
    )
    at = ", ".join(c for c in commits if c) or "an installed package"
    load = runs(
        reports, lambda r: r["machine"]["load_average"][0] if r["machine"].get("load_average") else None
    )
    count = f"{len(reports)} run{'s' * (len(reports) != 1)}"
    return (
        f"Measured: {count} on {m.get('cores')} cores ({m.get('cpu_model') or 'CPU model unknown'}), "
        f"{m.get('python_implementation', 'Python')} {m.get('python')} on {system}, switchyard "
        f"{', '.join(versions)} at {at}; the 1-minute load average was {load.text('.1f')} as each run "
        "started (the machine was shared)."
    )


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    align = [":--" if i < 2 else "--:" for i in range(len(head))]
    return [_row(head), _row(align), *(_row(r) for r in rows)]


def _ok(c: Mapping[str, Any]) -> float:
    return float(c["success_rate"])


def _ttft(quantile: str) -> Callable[[Mapping[str, Any]], float | None]:
    return lambda c: (c["ttft_ms"] or {}).get(quantile)


def latency(quantile: str) -> Callable[[Mapping[str, Any]], float | None]:
    """A cell's latency at ``quantile`` (``p50``, ``p95``, ``p99``), in milliseconds."""
    return lambda c: c["latency_ms"][quantile]


def tables(figures: Figures) -> list[str]:
    """The bench's two tables (outcomes; latency and CPU) as Markdown, each figure a range over the runs."""
    outcomes, speed = [], []
    for scenario in figures.scenarios:
        for i, policy in enumerate(figures.policies):
            name = scenario if i == 0 else ""

            def span(figure: Callable[[Mapping[str, Any]], Any], s: str = scenario, p: str = policy) -> Span:
                return figures.span(s, p, figure)

            ok = span(_ok)
            outcomes.append(
                [
                    name,
                    policy,
                    "100%" if min(ok.numbers) == 1.0 else ok.text(".1%"),
                    span(lambda c: c["attempts_per_request"]).text(".2f"),
                    span(lambda c: c["cost_ratio"]).text(".2f"),
                    span(lambda c: c["rate_limited"]).text("d"),
                    span(lambda c: c["breaker_trips"]).text("d"),
                    span(lambda c: c["move_off_s"]).text(".2f"),
                    span(lambda c: c["move_back_s"]).text(".2f"),
                ]
            )
            speed.append(
                [
                    name,
                    policy,
                    *(span(latency(q)).text(",.0f") for q in ("p50", "p95", "p99")),
                    span(_ttft("p50")).text(",.0f"),
                    span(lambda c: c["cpu_us_per_request"]).text(",.0f"),
                    span(lambda c: c["cpu_ratio_to_bare"]).text(".2f"),
                ]
            )
    return [
        "Outcomes:",
        "",
        *_table(("scenario", "policy", "ok", "att", "cost", "429", "trip", "off s", "back s"), outcomes),
        "",
        "Latency and router CPU:",
        "",
        *_table(("scenario", "policy", "p50 ms", "p95 ms", "p99 ms", "ttft p50", "cpu µs", "x bare"), speed),
    ]


def _bare(kind: str) -> Callable[[Report], float | None]:
    def cpu(report: Report) -> float | None:
        baseline = report["baseline"].get(kind)
        return None if baseline is None else float(baseline["cpu_us_per_request"])

    return cpu


def bench_block(reports: Sequence[Report], intro: str) -> str:
    """A Markdown block: ``intro`` (the command and what the runs took), the machine, the two tables."""
    figures = Figures(reports)
    bare = {kind: figures.run(_bare(kind)) for kind in ("chat", "stream")}
    took = figures.run(lambda r: r["elapsed_s"])
    head = (
        f"{intro}: {took.text(',.0f')} s in all; bare aiohttp took {bare['chat'].text(',.0f')} µs of CPU a "
        f"request and {bare['stream'].text(',.0f')} µs a stream. {machine_line(reports)}"
    )
    return "\n".join([head, "", *tables(figures)]) + "\n"
