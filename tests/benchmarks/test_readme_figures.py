"""The README's figures come from results files through readme_figures, never by hand.

The results files themselves are never committed (they are a machine's, on a day),
so the README's blocks are checked two ways: the script's output from small
synthetic results files is checked here for form, and every block in the README
must carry the digest the script wrote with it (a hand edit breaks it).
"""

from __future__ import annotations

import copy
import json
import pathlib
from typing import Any

import pytest
from switchyard.benchmarks import readme_figures
from switchyard.benchmarks._bench import QUICK
from switchyard.benchmarks._figures import Span, bench_block
from switchyard.benchmarks._machine import provenance
from switchyard.benchmarks._report import build
from switchyard.benchmarks._scenarios import POLICIES, SCENARIOS, scenarios
from switchyard.benchmarks._sentences import full_summary

from ._quick import Run

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def _bench(
    run: Run, *, command: str = "--quick", scale: float = 1.0, off: float | None = 0.35
) -> dict[str, Any]:
    """A complete bench results file from the fake-time cells, its figures scaled by ``scale``."""
    cells, bare = run
    world = scenarios(QUICK.scale)
    report = build(
        provenance("bench", [command] if command else [], "switchyard bench"),
        cells,
        bare,
        settings={
            "duration_s": QUICK.duration if command else 30.0,
            "rate_per_s": 40.0,
            "requests_per_cell": 120,
            "time_scale": QUICK.scale,
            "seed": 0,
        },
        descriptions={name: s.description for name, s in world.items()},
        assumptions={},
        elapsed=80.0 * scale,
        subset=False,
        interrupted=False,
    )
    report["machine"].update(
        cores=2, cpu_model="Test CPU", python="3.11.7", load_average=[1.0 * scale, 1.0, 1.0]
    )
    for cell in report["cells"]:
        cell["attempts_per_request"] *= scale
        cell["cpu_ratio_to_bare"] *= scale
        if cell["scenario"] == "gateway-down":
            cell["move_off_s"] = off
    return report


def _replicas() -> dict[str, Any]:
    def run(rate_limited: int, round_trips: float) -> dict[str, Any]:
        return {
            "processes": 4,
            "requests": 120,
            "ok": 120,
            "attempts_per_request": 1.0 + rate_limited / 120,
            "rate_limited": rate_limited,
            "latency_ms": {"p50": 500.0, "p95": 1300.0},
            "cpu_us_per_request": 1800.0,
            "round_trips_per_request": round_trips,
        }

    return {
        "processes": 4,
        "tier": {"oneai": {"concurrency": 2}},
        "rate_per_s": 40.0,
        "runs": {"memory": run(12, 0.0), "redis": run(0, 2.0)},
    }


def _overhead(scale: float) -> dict[str, Any]:
    return {
        **provenance("overhead", [], "python -m switchyard.benchmarks.overhead"),
        "request_overhead": {
            mode: {
                "bare_cpu_us_per_request": 300.0 if mode == "plain" else 1000.0,
                "routers": {
                    variant: {"cpu_ratio": base * scale, "throughput_ratio": 0.9}
                    for variant in ("cheapest", "cheapest, tiered")
                },
            }
            for mode, base in (("plain", 1.2), ("stream", 1.4))
        },
        "decision": {
            "10": {"us_per_decision": 10.0 * scale, "ratio_to_smallest": 1.0},
            "100000": {"us_per_decision": 12.0, "ratio_to_smallest": 1.2},
        },
        "imports": {
            "aiohttp_ms": 130.0,
            "router_policies_providers_extra_ms": 50.0,
            "aiohttp_mib": 12.0,
            "router_policies_providers_extra_mib": 2.0,
        },
    }


def _telemetry() -> dict[str, Any]:
    variants = ("none", "noop", "otel", "otel-sampled", "prometheus", "logs", "all")
    return {
        **provenance("telemetry_overhead", [], "python -m switchyard.benchmarks.telemetry_overhead"),
        "per_request": {
            "mode": "chat",
            "variants": {
                v: {"cpu_us_per_request": 400.0, "ratio_to_none": 1.0 + i / 10}
                for i, v in enumerate(variants)
            },
        },
        "hook_costs": dict.fromkeys(
            ("otel_hook_us", "prometheus_hook_us", "logs_hook_us", "otel_hook_without_sdk_us"), 10.0
        ),
    }


def _write(tmp_path: pathlib.Path, name: str, data: dict[str, Any]) -> pathlib.Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize(
    ("values", "spec", "text"),
    [
        ([1.0, 1.0, 1.0], ".2f", "1.00"),
        ([1.05, 1.071, 1.06], ".2f", "1.05–1.07"),
        ([1.051, 1.054], ".2f", "1.05"),
        ([None, None], ".2f", "-"),
        ([0.45, None, 0.5], ".2f", "0.45–0.50 or -"),
        ([3, 5], "d", "3–5"),
        ([0.45, 0.46], ".0%", "45–46%"),
    ],
)
def test_a_figure_over_runs_is_its_range(values: list[float | None], spec: str, text: str) -> None:
    """One number when the runs agree at the precision shown; lo–hi when not; "or -" when only sometimes."""
    assert Span(values).text(spec) == text


def test_the_bench_block_has_every_cell_as_ranges_and_names_the_machine(quick_run: Run) -> None:
    """Both tables list every scenario x policy; figures that differ between runs are ranges."""
    block = bench_block([_bench(quick_run), _bench(quick_run, scale=1.1, off=None)], "This is it")
    assert block.startswith("This is it: 80–88 s in all;")
    assert "Measured: 2 runs on 2 cores (Test CPU), CPython 3.11.7 on Linux" in block
    assert "1-minute load average was 1.0–1.1" in block
    lines = block.splitlines()
    rows = [line for line in lines if line.startswith("| ") and "--" not in line and "scenario" not in line]
    assert len(rows) == 2 * len(SCENARIOS) * len(POLICIES)
    assert sum(line.startswith(f"| {name} |") for line in rows for name in SCENARIOS) == 2 * len(SCENARIOS)
    down = next(line for line in rows if line.startswith("| gateway-down | cheapest | 100% |"))
    assert "–" in down.split("|")[4] and down.split("|")[8].strip() == "0.35 or -"


def test_the_full_summary_words_what_happened(quick_run: Run) -> None:
    """The sentences say "never" if it never happened, the range if it always did, and how often if not."""
    always = full_summary([_bench(quick_run, command=""), _bench(quick_run, command="", scale=1.1)])
    assert "cheapest and failover left it within 0.35 s" in always
    sometimes = full_summary([_bench(quick_run, command=""), _bench(quick_run, command="", off=None)])
    assert "cheapest and failover left it within 0.35 s in 1 of 2 runs (never in the others)" in sometimes
    never = full_summary([_bench(quick_run, command="", off=None)])
    assert "cheapest and failover never left it" in never
    assert "Measured: 1 run on 2 cores" in never


def test_write_then_check_then_a_hand_edit_fails(quick_run: Run, tmp_path: pathlib.Path) -> None:
    """The script writes each block between its markers with a digest; --check passes until a hand edit."""
    readme = tmp_path / "README.md"
    readme.write_text(
        "intro\n"
        + "".join(
            f"<!-- figures:{n}:start -->\nSTALE-BLOCK\n<!-- figures:{n}:end -->\ntext\n"
            for n in readme_figures.BLOCKS
        )
    )
    files = [
        _write(tmp_path, "q1.json", _bench(quick_run)),
        _write(tmp_path, "q2.json", _bench(quick_run, scale=1.2)),
        _write(tmp_path, "f1.json", {**_bench(quick_run, command=""), "replicas": _replicas()}),
        _write(tmp_path, "o1.json", _overhead(1.0)),
        _write(tmp_path, "o2.json", _overhead(1.1)),
        _write(
            tmp_path,
            "e1.json",
            {
                **provenance("emulator_throughput", []),
                "replies_per_core_second": 3612.0,
                "observed_replies_per_s": 2950.0,
            },
        ),
        _write(tmp_path, "t1.json", _telemetry()),
        *(
            _write(
                tmp_path,
                f"i{n}.json",
                {
                    **provenance("instructions", []),
                    "instructions_per_request": {
                        "bare": 490_000.0 + n * 1000,
                        "plain": 700_000.0,
                        "bare_stream": 1_900_000.0,
                        "stream": 2_200_000.0 + n * 10_000,
                        "decision": 105_000.0,
                    },
                },
            )
            for n in (1, 2)
        ),
    ]
    args = [*map(str, files), "--readme", str(readme)]
    assert readme_figures.main(args) == 0
    text = readme.read_text()
    assert (
        "STALE-BLOCK" not in text
        and text.startswith("intro\n")
        and text.count("\ntext\n") == len(readme_figures.BLOCKS)
    )
    assert "| CheapestPerToken | yes | 1.20–1.32x | 1.40–1.54x | 0.90x |" in text
    assert "3,600 plain replies" in text
    assert "| MemoryStore | 120 | 120 | 12 | 1.10 | 500 | 1,300 | 1,800 | 0.00 |" in text
    assert "| RedisStore | 120 | 120 | 0 | 1.00 | 500 | 1,300 | 1,800 | 2.00 |" in text
    assert "takes 10–12 µs with 10 to 100,000 offers in the graph; within a run the slowest size" in text
    assert "takes 1.09–1.20x the fastest" in text
    assert "adds 50 ms to the 130 ms `import aiohttp` takes, and 2.0 MiB to its 12.0 MiB" in text
    assert "a plain `chat()` takes 400 µs with no hook; with a hook that does nothing 1.10x" in text
    assert (
        "a plain request takes 491–492k instructions with bare aiohttp and 700k through `chat()` "
        "(1.42–1.43x); a 16-token stream 1,900k and 2,210–2,220k through `stream()` (1.16–1.17x); "
        "a routing decision (10 offers) 105k." in text
    )
    resilience = text[text.index("<!-- figures:resilience:start") :]
    brownout = next(line for line in resilience.splitlines() if line.startswith("| brownout | cheapest |"))
    assert brownout.split("|")[6].strip() == "-", "attempts before the breaker opened: outages only"
    cold = next(
        line for line in resilience.splitlines() if line.startswith("| cold-start-outage | cheapest |")
    )
    assert cold.split("|")[6].strip().isdigit()
    assert readme_figures.main([*args, "--check"]) == 0
    assert readme_figures.main(["--check", "--readme", str(readme)]) == 0
    readme.write_text(text.replace("1.20–1.32x", "1.2x"))
    assert readme_figures.main(["--check", "--readme", str(readme)]) == 1
    assert readme_figures.main([*args, "--check"]) == 1


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda r: r.update(subset=True), "not a complete quick or full run"),
        (lambda r: r.update(interrupted=True), "not a complete quick or full run"),
        (lambda r: r.update(format=1), "bench results format 1"),
        (lambda r: r.pop("machine"), "not a results file with its machine"),
        (lambda r: r["machine"].update(cores=64), "results from different machines"),
    ],
)
def test_files_the_readme_cannot_quote_are_refused(
    quick_run: Run, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], change: Any, error: str
) -> None:
    """A subset, an interrupted run, an old file, or runs from two machines: a one-line error, exit 2."""
    good = _bench(quick_run)
    bad = copy.deepcopy(good)
    change(bad)
    files = [_write(tmp_path, "a.json", good), _write(tmp_path, "b.json", bad)]
    assert readme_figures.main([*map(str, files), "--print"]) == 2
    assert error in capsys.readouterr().err


def test_the_readme_blocks_are_the_scripts_own() -> None:
    """Every block the script writes is in the README once, untouched since the script wrote it."""
    text = README.read_text(encoding="utf-8")
    assert set(readme_figures.blocks(text)) == set(readme_figures.BLOCKS)
    assert readme_figures.check(text) == []


def test_an_instructions_run_that_left_a_kind_out_is_refused(tmp_path: pathlib.Path) -> None:
    """The instructions block needs every kind counted: a --kinds subset cannot feed it."""
    partial = {**provenance("instructions", []), "instructions_per_request": {"plain": 1.0, "decision": 2.0}}
    readme = tmp_path / "README.md"
    readme.write_text("<!-- figures:instructions:start -->\nx\n<!-- figures:instructions:end -->\n")
    path = _write(tmp_path, "i.json", partial)
    assert readme_figures.main([str(path), "--readme", str(readme)]) == 2
