"""The overhead benchmark runs end to end (figures go in notes, never into assertions)."""

from __future__ import annotations

import shutil

import pytest
from switchyard.benchmarks.overhead import POLICIES, decision_times, import_costs, request_overhead
from switchyard.benchmarks.store_overhead import store_overhead

from .._redis import MISSING


def test_request_overhead_reports_both_sides() -> None:
    """A small interleaved run reports, plain and streamed, CPU per request and throughput of every
    policy with and without a tier against bare aiohttp, as ratios with their range."""
    result = request_overhead(requests=60, concurrency=8, rounds=1)
    for mode in ("plain", "stream"):
        assert result[mode]["bare_cpu_us_per_request"] > 0
        assert set(result[mode]["routers"]) == {
            f"{policy}{tiered}" for policy in POLICIES for tiered in ("", ", tiered")
        }
        for figures in result[mode]["routers"].values():
            low, high = figures["cpu_ratio_range"]
            assert 0 < low <= figures["cpu_ratio"] <= high and figures["throughput_ratio"] > 0


def test_decision_times_cover_each_size() -> None:
    """Routing decisions are timed for each catalog size, with the ratio to the smallest."""
    result = decision_times(sizes=(8, 400), repeat=20)
    assert set(result) == {"8", "400"} and result["8"]["ratio_to_smallest"] == 1.0


def test_import_costs_are_measured() -> None:
    """Import time and memory are measured next to aiohttp's."""
    result = import_costs(samples=1)
    assert result["aiohttp_ms"] > 0 and result["router_policies_providers_extra_mib"] > 0


def test_store_overhead_compares_redis_with_memory() -> None:
    """A small run on a real redis-server: latency and CPU per request for both stores, tiered and not."""
    if shutil.which("redis-server") is None:
        pytest.skip(MISSING)
    result = store_overhead(requests=100, concurrency=8, rounds=1)
    for variant in ("tiered", "untiered"):
        figures = result[variant]
        assert figures["memory_cpu_us_per_request"] > 0 and figures["redis_cpu_us_per_request"] > 0
        assert figures["cpu_ratio"] > 0 and figures["redis_counters"]["round_trips"] > 0


def test_json_costs_time_the_standard_library_at_least() -> None:
    """The JSON measurement times stdlib json (and orjson or msgspec only where installed)."""
    from switchyard.benchmarks.json_codecs import json_costs

    result = json_costs(number=20, repeat=1)
    stdlib = result["json"]
    assert result["stream_events"] > 1
    assert stdlib["plain_us"] == stdlib["encode_request_us"] + stdlib["decode_reply_us"] > 0
