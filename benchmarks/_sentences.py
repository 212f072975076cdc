"""The README's sentences of figures: the full run's headlines, the overhead, the emulator, telemetry.

Each sentence is worded from the figures themselves: a move that never happened
says so, one that happened in some runs says in how many (see ``_figures`` for
how a figure over several runs reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._figures import Figures, Report, Span, latency, machine_line, runs

__all__ = ["emulator_block", "full_summary", "overhead_block", "replicas_block", "telemetry_block"]


def _when(span: Span, done: str, never: str) -> str:
    """How a move off or back reads over the runs: ``done`` (``{s}``: its seconds) when it always happened,
    ``never`` when it never did, and ``done`` in so many of the runs otherwise."""
    if span.never:
        return never
    if span.always:
        return done.format(s=span.text(".2f"))
    shown = span.text(".2f").removesuffix(" or -")
    return done.format(s=shown) + f" in {len(span.numbers)} of {len(span.values)} runs (never in the others)"


def _off(c: Mapping[str, Any]) -> float | None:
    value: float | None = c["move_off_s"]
    return value


def _back(c: Mapping[str, Any]) -> float | None:
    value: float | None = c["move_back_s"]
    return value


def _share(cell: Mapping[str, Any], gateway: str, impaired: bool) -> float | None:
    """``gateway``'s mean share of the cell's attempts: over the whole cell, or (``impaired``) over the
    bins inside its impairment after the first (the policy's time to react left out)."""
    shares: Sequence[float] = cell["shares"][gateway]
    if not impaired:
        return sum(shares) / len(shares)
    width = cell["bin_seconds"]
    span = next((i for i in cell["impairments"] if i["gateway"] == gateway), None)
    if span is None:
        return None
    inside = [
        v
        for k, v in enumerate(shares)
        if k * width >= span["start"] + width and (k + 1) * width <= span["end"]
    ]
    return sum(inside) / len(inside) if inside else None


def _cut(f: Figures, scenario: str, gateway: str, name: str) -> str:
    """How the latency policy cut ``gateway``'s share of its attempts while it was impaired."""
    healthy = f.span("healthy", "latency", lambda c: _share(c, gateway, impaired=False))
    degraded = f.span(scenario, "latency", lambda c: _share(c, gateway, impaired=True))
    if healthy.never or degraded.never:
        return ""
    return f", cutting {name}'s share of its attempts from {healthy.text('.0%')} to {degraded.text('.0%')}"


def _who(
    f: Figures,
    scenario: str,
    policies: Sequence[str],
    figure: Callable[[Mapping[str, Any]], float | None],
    done: str,
    never: str,
) -> str:
    """``"cheapest and failover <what>"`` when the policies' figures read the same, else one clause each."""
    said = {p: _when(f.span(scenario, p, figure), done, never) for p in policies}
    if len(set(said.values())) == 1:
        return f"{' and '.join(policies)} {said[policies[0]]}"
    return " and ".join(f"{p} {text}" for p, text in said.items())


def full_summary(reports: Sequence[Report]) -> str:
    """Sentences on the full runs' headline figures, each worded from the figures themselves."""
    f = Figures(reports)
    both = ("cheapest", "failover")
    has = set(f.scenarios)
    minutes = f.run(lambda r: r["elapsed_s"] / 60)
    worst = min((c["success_rate"], s, p) for (s, p), cells in f.cells.items() for c in cells)
    answered = (
        "every cell answered every request in every run"
        if worst[0] == 1.0
        else f"the lowest success rate was {worst[0]:.1%} ({worst[1]} / {worst[2]})"
    )
    lines = [
        "The full run (`switchyard bench`, 30 s cells, 1,200 requests each) took "
        f"{minutes.text('.0f')} minutes; {answered}."
    ]
    if "gateway-down" in has:
        trips = f.span("gateway-down", both, lambda c: c["breaker_trips"])
        at_oneai = f.span("gateway-down", both, lambda c: c["tried"].get("oneai") if "tried" in c else None)
        tried = "" if at_oneai.never else f"; {at_oneai.text(',d')} attempts at OneAI in all"
        text = (
            "With OneAI refusing connections, "
            + _who(f, "gateway-down", both, _off, "left it within {s} s", "never left it")
            + f" ({trips.text('d')} breaker trips{tried}), and the latency policy "
            + _when(f.span("gateway-down", "latency", _off), "within {s} s", "never")
            + _cut(f, "gateway-down", "oneai", "OneAI")
        )
        if "down-recovering" in has:
            text += "; once it recovered, " + _who(
                f, "down-recovering", both, _back, "came back to it {s} s later", "did not come back to it"
            )
        lines.append(text + ".")
    if "brownout" in has:
        att = f.span("brownout", both, lambda c: c["attempts_per_request"])
        lines.append(
            f"A 30% brownout of OneAI cost cheapest and failover {att.text('.2f')} attempts a request; "
            + _who(
                f,
                "brownout",
                both,
                _off,
                "left it within {s} s",
                "never left it (its breaker opens at half the calls failing)",
            )
            + ", and the latency policy "
            + _when(
                f.span("brownout", "latency", _off),
                "left it within {s} s",
                "never moved off it (its share of twenty attempts kept coming back to half its healthy "
                "share)",
            )
            + _cut(f, "brownout", "oneai", "OneAI")
            + "."
        )
    if "429-storm" in has:
        n429 = f.span("429-storm", both, lambda c: c["rate_limited"])
        lines.append(
            f"The 429 storm brought cheapest and failover {n429.text('d')} 429s; "
            + _who(f, "429-storm", both, _off, "left OneAI within {s} s", "never left OneAI")
            + "."
        )
    if "latency-shift" in has:
        lines.append(
            "The latency policy "
            + _when(
                f.span("latency-shift", "latency", _off),
                "left the slowed Onetoken within {s} s",
                "never moved off the slowed Onetoken",
            )
            + _cut(f, "latency-shift", "onetoken", "Onetoken")
            + ", and, believing its recovery gradually (peak-EWMA, 10 s decay), "
            + _when(
                f.span("latency-shift", "latency", _back),
                "came back to it {s} s after it recovered",
                "did not come back to it within the cell",
            )
            + "."
        )
    if "stalled-cut-streams" in has:
        p95 = f.span("stalled-cut-streams", both, latency("p95"))
        latency_p95 = f.span("stalled-cut-streams", "latency", latency("p95"))
        lines.append(
            f"Stalled and cut streams had a p95 of {p95.text('.1f', 1 / 1000)} s under cheapest and failover "
            f"and {latency_p95.text('.1f', 1 / 1000)} s under the latency policy (the stall limit is 5 s)."
        )
    plain = f.every(lambda c: c["cpu_ratio_to_bare"], stream=False)
    streams = f.every(lambda c: c["cpu_ratio_to_bare"], stream=True)
    lines.append(
        f"Router CPU per request was {plain.text('.1f')}x bare aiohttp's for plain requests and "
        f"{streams.text('.1f')}x for streams (every cell of every run)."
    )
    head, *rest = lines
    return "\n".join([f"{head} {machine_line(reports)}", "", *(f"- {line}" for line in rest)]) + "\n"


def _field(*path: str) -> Callable[[Report], float]:
    def get(report: Report) -> float:
        value: Any = report
        for key in path:
            value = value[key]
        return float(value)

    return get


def _ratio(top: Callable[[Report], float], bottom: Callable[[Report], float]) -> Callable[[Report], float]:
    return lambda r: top(r) / bottom(r)


_POLICY_NAMES = {
    "cheapest": "CheapestPerToken",
    "latency": "LowestLatency",
    "failover": "FailoverOn5xx",
    "ratelimit": "RateLimitAware(CheapestPerToken)",
}


def _decision_spread(report: Report) -> float:
    times = [float(v["us_per_decision"]) for v in report["decision"].values()]
    return max(times) / min(times)


def overhead_block(reports: Sequence[Report]) -> str:
    """The overhead benchmark's figures: a table of CPU per request against bare aiohttp
    (each policy, with and without a tier; plain and streamed), then the decision and imports."""
    request = reports[0]["request_overhead"]
    rows = [
        "| policy | tier | plain: CPU vs bare | stream: CPU vs bare | plain: throughput vs bare |",
        "|---|---|---|---|---|",
    ]
    for variant in request["plain"]["routers"]:
        policy, _, tiered = variant.partition(", ")
        plain = runs(reports, _field("request_overhead", "plain", "routers", variant, "cpu_ratio"))
        stream = runs(reports, _field("request_overhead", "stream", "routers", variant, "cpu_ratio"))
        tput = runs(reports, _field("request_overhead", "plain", "routers", variant, "throughput_ratio"))
        rows.append(
            f"| {_POLICY_NAMES.get(policy, policy)} | {'yes' if tiered else 'no'} | {plain.text('.2f')}x "
            f"| {stream.text('.2f')}x | {tput.text('.2f')}x |"
        )
    bare_plain = runs(reports, _field("request_overhead", "plain", "bare_cpu_us_per_request"))
    bare_stream = runs(reports, _field("request_overhead", "stream", "bare_cpu_us_per_request"))
    sizes = sorted(reports[0]["decision"], key=int)
    each = Span(float(v["us_per_decision"]) for r in reports for v in r["decision"].values())
    spread = runs(reports, _decision_spread)
    ours_ms, aiohttp_ms = (
        _field("imports", "router_policies_providers_extra_ms"),
        _field("imports", "aiohttp_ms"),
    )
    ours_mib, aiohttp_mib = (
        _field("imports", "router_policies_providers_extra_mib"),
        _field("imports", "aiohttp_mib"),
    )
    return (
        "\n".join(rows)
        + "\n\n"
        + "From `python -m switchyard.benchmarks.overhead`: client CPU per request as a ratio to bare "
        f"aiohttp's in the same rounds (bare: {bare_plain.text(',.0f')} µs plain, "
        f"{bare_stream.text(',.0f')} µs streamed), the median of each run's rounds. "
        "A routing decision (create the request and plan it; CPU time, in a running event loop) "
        f"takes {each.text(',.0f')} µs with "
        f"{int(sizes[0]):,} to {int(sizes[-1]):,} offers in the graph; within a run the slowest size "
        f"takes {spread.text('.2f')}x the fastest. "
        "Importing the router, policies and providers (bytecode compiled) adds "
        f"{runs(reports, ours_ms).text(',.0f')} ms to the {runs(reports, aiohttp_ms).text(',.0f')} ms "
        f"`import aiohttp` takes, and {runs(reports, ours_mib).text('.1f')} MiB to its "
        f"{runs(reports, aiohttp_mib).text('.1f')} MiB. {machine_line(reports)}\n"
    )


def _of_store(store: str, get: Callable[[Mapping[str, Any]], Any]) -> Callable[[Report], Any]:
    return lambda report: get(report["replicas"]["runs"][store])


def replicas_block(reports: Sequence[Report]) -> str:
    """The ``replicas`` scenario (several processes, one tiered account) on memory stores and on
    Redis, as a table of ranges over the runs that have it.

    Raises:
        ValueError: no run has the scenario (it needs redis-server on PATH).
    """
    with_it = [r for r in reports if r.get("replicas")]
    if not with_it:
        raise ValueError("no run has the replicas scenario: run switchyard bench with redis-server on PATH")
    first = with_it[0]["replicas"]
    tier = ", ".join(f"{g} {limits['concurrency']} in flight" for g, limits in first["tier"].items())
    columns: Sequence[tuple[str, Callable[[Mapping[str, Any]], Any], str]] = (
        ("requests", lambda r: r["requests"], ",.0f"),
        ("answered", lambda r: r["ok"], ",.0f"),
        ("429s", lambda r: r["rate_limited"], ",.0f"),
        ("attempts per request", lambda r: r["attempts_per_request"], ".2f"),
        ("p50 ms", lambda r: r["latency_ms"]["p50"], ",.0f"),
        ("p95 ms", lambda r: r["latency_ms"]["p95"], ",.0f"),
        ("CPU µs per request", lambda r: r["cpu_us_per_request"], ",.0f"),
        ("Redis round trips per request", lambda r: r["round_trips_per_request"], ".2f"),
    )
    rows = ["| store | " + " | ".join(name for name, _, _ in columns) + " |", "|:--|" + "--:|" * len(columns)]
    for store in ("memory", "redis"):
        cells = [runs(with_it, _of_store(store, get)).text(spec) for _, get, spec in columns]
        rows.append(f"| {'MemoryStore' if store == 'memory' else 'RedisStore'} | " + " | ".join(cells) + " |")
    return (
        f"`switchyard bench`'s replicas scenario: {first['processes']} processes send "
        f"{first['rate_per_s']:g} requests a second between them to one account ({tier}), each on its "
        "own MemoryStore, then all on one RedisStore; every figure the range over the runs. "
        + machine_line(with_it)
        + "\n\n"
        + "\n".join(rows)
        + "\n"
    )


def emulator_block(reports: Sequence[Report]) -> str:
    """The emulator's throughput in one sentence."""
    per_core = runs(reports, lambda r: round(r["replies_per_core_second"], -2))
    observed = runs(reports, lambda r: round(r["observed_replies_per_s"], -2))
    return (
        f"One core of emulator serves {per_core.text(',.0f')} plain replies per second of its own CPU "
        f"({observed.text(',.0f')} a second observed, with the client on the other core), from "
        f"`python -m switchyard.benchmarks.emulator_throughput`. {machine_line(reports)}\n"
    )


def telemetry_block(reports: Sequence[Report]) -> str:
    """The telemetry hooks' cost: per request against no hook (chat, and streams where run), and
    each hook replaying one request's events.

    Raises:
        ValueError: no run measured ``chat()`` (``--stream`` runs alone).
    """
    chat = [r for r in reports if r["per_request"]["mode"] == "chat"]
    streams = [r for r in reports if r["per_request"]["mode"] == "stream"]
    if not chat:
        raise ValueError("no telemetry_overhead run of chat(): run it without --stream too")

    def x(runs_of: Sequence[Report], variant: str) -> str:
        return runs(runs_of, _field("per_request", "variants", variant, "ratio_to_none")).text(".2f") + "x"

    def cpu(runs_of: Sequence[Report]) -> str:
        return runs(runs_of, _field("per_request", "variants", "none", "cpu_us_per_request")).text(",.0f")

    def alone(hook: str) -> str:
        return runs(reports, _field("hook_costs", f"{hook}_us")).text(",.0f") + " µs"

    text = (
        "From `python -m switchyard.benchmarks.telemetry_overhead` (client CPU per request, the median "
        f"of interleaved rounds): a plain `chat()` takes {cpu(chat)} µs with no hook; with a hook that "
        f"does nothing {x(chat, 'noop')} that, `Prometheus` {x(chat, 'prometheus')}, `Logs` "
        f"{x(chat, 'logs')}, `OpenTelemetry` over the SDK with a no-op exporter {x(chat, 'otel')} "
        f"({x(chat, 'otel-sampled')} with one trace in ten sampled), all three {x(chat, 'all')}."
    )
    if streams:
        text += (
            f" A stream takes {cpu(streams)} µs; with `OpenTelemetry` {x(streams, 'otel')}, all three "
            f"{x(streams, 'all')}."
        )
    return (
        f"{text} Replaying one failed-over request's events, which times the hooks alone: `Prometheus` "
        f"{alone('prometheus_hook')}, `Logs` {alone('logs_hook')}, `OpenTelemetry` {alone('otel_hook')}, "
        f"of which its own code is {alone('otel_hook_without_sdk')} (the same replay over the API's "
        f"no-op providers). {machine_line(reports)}\n"
    )


_COUNTED = ("bare", "plain", "bare_stream", "stream", "decision")


def instructions_block(reports: Sequence[Report]) -> str:
    """The client's instructions per request, counted by callgrind (the figures noise cannot move).

    Raises:
        ValueError: a run did not count every kind (``--kinds`` left some out).
    """
    for report in reports:
        missing = [k for k in _COUNTED if k not in report["instructions_per_request"]]
        if missing:
            raise ValueError(f"an instructions run without {', '.join(missing)}: run it without --kinds")

    def counted(kind: str) -> str:
        return runs(reports, lambda r: r["instructions_per_request"][kind] / 1000).text(",.0f") + "k"

    def ratio(kind: str, base: str) -> str:
        figure = runs(
            reports, lambda r: r["instructions_per_request"][kind] / r["instructions_per_request"][base]
        )
        return figure.text(".2f") + "x"

    return (
        "Counted by `python -m switchyard.benchmarks.instructions` (callgrind, the client process "
        "only, 8 requests in flight): a plain request takes "
        f"{counted('bare')} instructions with bare aiohttp and {counted('plain')} through `chat()` "
        f"({ratio('plain', 'bare')}); a 16-token stream {counted('bare_stream')} and "
        f"{counted('stream')} through `stream()` ({ratio('stream', 'bare_stream')}); a routing "
        f"decision (10 offers) {counted('decision')}. {machine_line(reports)}\n"
    )
