"""The telemetry overhead benchmark runs end to end (figures go in notes, never into assertions)."""

from __future__ import annotations

import pytest
from switchyard.benchmarks.telemetry_overhead import VARIANTS, hook_costs, telemetry_overhead


@pytest.mark.parametrize("stream", [False, True])
def test_each_hook_is_measured_against_none_in_one_run(stream: bool) -> None:
    """A small interleaved run reports CPU per request for every variant, and its ratio to no hook."""
    result = telemetry_overhead(requests=40, concurrency=4, rounds=1, stream=stream)
    assert result["mode"] == ("stream" if stream else "chat")
    assert set(result["variants"]) == set(VARIANTS)
    assert result["variants"]["none"]["ratio_to_none"] == 1.0
    assert all(v["cpu_us_per_request"] > 0 for v in result["variants"].values())


def test_hook_costs_are_measured_next_to_the_sdk_alone() -> None:
    """Replaying one failed-over request's events times each hook, and OpenTelemetry's own code alone."""
    result = hook_costs(repeat=20)
    assert result["events_per_request"] == 7
    for key in ("otel_hook_us", "prometheus_hook_us", "logs_hook_us", "otel_hook_without_sdk_us"):
        assert result[key] > 0


def _results(mode: str, scale: float) -> dict[str, object]:
    """A synthetic telemetry_overhead results file (``scale`` moves every figure)."""
    from switchyard.benchmarks._machine import provenance

    head = provenance("telemetry_overhead", [], "python -m switchyard.benchmarks.telemetry_overhead")
    head["machine"].update(cores=2, cpu_model="Test CPU", python="3.11.7", load_average=[1.0, 1.0, 1.0])
    variants = {
        v: {"cpu_us_per_request": 400.0 * (1 + i / 10) * scale, "ratio_to_none": 1 + i / 10 * scale}
        for i, v in enumerate(VARIANTS)
    }
    costs = {"otel_hook_us": 200.0, "prometheus_hook_us": 10.0, "logs_hook_us": 20.0}
    costs["otel_hook_without_sdk_us"] = 15.0 * scale
    return {**head, "per_request": {"mode": mode, "variants": variants}, "hook_costs": costs}


def test_the_readme_block_reads_the_runs() -> None:
    """readme_figures writes the telemetry block from chat and stream runs, as ranges over runs."""
    from switchyard.benchmarks.readme_figures import render

    runs = [_results("chat", 1.0), _results("chat", 2.0), _results("stream", 1.0)]
    block = render({"telemetry_overhead": runs})["telemetry"]
    assert block.startswith("From `python -m switchyard.benchmarks.telemetry_overhead`")
    assert "a plain `chat()` takes 400–800 µs with no hook" in block
    assert "`OpenTelemetry` over the SDK with a no-op exporter 1.20–1.40x" in block
    assert "A stream takes 400 µs; with `OpenTelemetry` 1.20x" in block
    assert "of which its own code is 15–30 µs" in block and "Measured: 3 runs on 2 cores (Test CPU)" in block


def test_a_stream_run_alone_cannot_feed_the_block() -> None:
    """Without a chat() run the block is refused, saying what to run."""
    from switchyard.benchmarks.readme_figures import FiguresError, render

    with pytest.raises(FiguresError, match="without --stream"):
        render({"telemetry_overhead": [_results("stream", 1.0)]})


def test_main_writes_a_results_file_with_its_machine(tmp_path: object) -> None:
    """--json writes the figures under a head naming the kind, the command and the machine."""
    import json
    import pathlib

    from switchyard.benchmarks.telemetry_overhead import main

    out = pathlib.Path(str(tmp_path)) / "telemetry.json"
    assert main(["--requests", "20", "--rounds", "1", "--concurrency", "2", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["kind"] == "telemetry_overhead" and data["machine"]["cores"]
    assert data["command"].startswith("python -m switchyard.benchmarks.telemetry_overhead --requests 20")
    assert set(data["per_request"]["variants"]) == set(VARIANTS) and data["hook_costs"]["otel_hook_us"] > 0
