"""The graph-scale benchmark runs end to end (figures go in notes, never into assertions)."""

from __future__ import annotations

import json
import pathlib

from switchyard.benchmarks.graph_scale import main, measure


def test_each_size_reports_build_merge_cpu_and_loop_lag() -> None:
    """Build, the first typo and each of the three refreshes report CPU time, the loop's longest lag
    (wall, CPU, CPU less the collector's pauses) and GC pauses."""
    (row,) = measure((300,), runs=1)
    assert row["offers"] == 300 and row["build_cpu_ms"] > 0 and row["first_typo_cpu_ms"] >= 0
    for refresh in ("new_ids", "new_prices", "unchanged"):
        assert row[f"{refresh}_merge_cpu_ms"] > 0 and row[f"{refresh}_refresh_cpu_ms"] > 0
        lags = (row[f"{refresh}_lag_ms"], row[f"{refresh}_lag_cpu_ms"], row[f"{refresh}_lag_cpu_not_gc_ms"])
        assert min(lags) >= 0 and row[f"{refresh}_gc_max_ms"] >= 0


def test_a_baseline_is_measured_in_its_own_process_and_compared(tmp_path: pathlib.Path) -> None:
    """--baseline REF measures that commit's providers/ and this code, and writes the ratios."""
    out = tmp_path / "figures.json"
    assert main(["--sizes", "200", "--runs", "1", "--baseline", "HEAD", "--json", str(out)]) == 0
    old, new = json.loads(out.read_text())["rows"]
    assert (old["code"], new["code"]) == ("HEAD", "this")
    assert new["ratio"]["build_cpu_ms"] > 0
