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
