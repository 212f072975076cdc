"""The emulator throughput benchmark runs end to end (its figures go in notes, not assertions)."""

from __future__ import annotations

from switchyard.benchmarks.emulator_throughput import measure


def test_measure_reports_every_figure() -> None:
    """A small run reports observed replies/s and the server's CPU per reply, all positive."""
    result = measure(requests=300, concurrency=8)
    assert result["requests"] == 300
    assert result["observed_replies_per_s"] > 0
    assert result["server_cpu_us_per_reply"] > 0
    assert result["replies_per_core_second"] > 0
