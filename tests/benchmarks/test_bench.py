"""`switchyard bench`: its cells on fake loop time, its figures' arithmetic, and the command end to end.

The cells run here on fake loop time (the emulator on the test's own loop), at the
``--quick`` settings, so what the router did is checked for every scenario and
policy without sleeping; their CPU figures then mean nothing and are not checked.
One test runs the real command in a subprocess, for a fraction of a second per cell.
"""

from __future__ import annotations

import asyncio
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st
from switchyard.benchmarks._bench import QUICK, cells_planned, run
from switchyard.benchmarks._driver import Settings
from switchyard.benchmarks._emuthread import InLoopEmulator
from switchyard.benchmarks._metrics import HOLD, CellResult, _move_times, _percentiles, _shares
from switchyard.benchmarks._plots import write_plots
from switchyard.benchmarks._scenarios import GATEWAYS, POLICIES, SCENARIOS, Impairment, scenarios
from switchyard.benchmarks._tables import cpu_ratio, tables
from switchyard.providers.emulator import Emulator

from .._redis import MISSING
from ._quick import Run

Loop = asyncio.AbstractEventLoop


def test_every_cell_runs_and_its_counts_agree_with_the_emulator(
    quick_run: Run,
) -> None:
    """Every cell runs; each one's attempts that reached a gateway are exactly what the emulator received."""
    cells, bare = quick_run
    assert [(c.scenario, c.policy) for c in cells] == [(s, p) for s in SCENARIOS for p in POLICIES]
    assert set(bare) == {"chat", "stream"} and all(len(runs) == 2 for runs in bare.values())
    world = scenarios(QUICK.scale)
    for c in cells:
        scenario = world[c.scenario]
        assert c.requests == round(QUICK.requests * scenario.length) + scenario.burst
        assert QUICK.requests == 120
        assert c.counts_agree, (c.scenario, c.policy, c.counts_router, c.counts_emulator)
        assert sum(c.counts_emulator.values()) > 0
        assert c.attempts >= c.succeeded
        for i in range(len(c.shares["oneai"])):
            total = sum(c.shares[g][i] for g in GATEWAYS)
            assert total == pytest.approx(1.0) or total == 0.0


def test_the_failure_scenarios_do_what_they_say(
    quick_run: Run,
) -> None:
    """Healthy needs one attempt; a dead gateway costs attempts and trips; a storm sends 429s; cut
    streams restart; every policy that fails over keeps gateway-down at >= 99.9%."""
    cells, _ = quick_run
    by = {(c.scenario, c.policy): c for c in cells}
    for policy in POLICIES:
        healthy = by["healthy", policy]
        assert healthy.success_rate == 1.0 and healthy.attempts_per_request == 1.0
        down = by["gateway-down", policy]
        assert down.success_rate >= 0.999, down.errors
        assert down.counts_emulator["oneai"] == 0, "nothing reaches a gateway that refuses connections"
        assert by["down-recovering", policy].success_rate >= 0.999
        assert by["brownout", policy].success_rate >= 0.999
        assert by["429-storm", policy].success_rate >= 0.999
    for policy in ("cheapest", "failover"):  # both send everything to OneAI when it is healthy
        assert by["healthy", policy].counts_emulator["oneai"] == 120
        assert by["healthy", policy].cost_ratio == pytest.approx(1.0)
        down = by["gateway-down", policy]
        assert down.attempts_per_request > 1.0 and down.breaker_trips >= 1
        assert down.move_off_s is not None and down.move_off_s <= 1.0
        recovering = by["down-recovering", policy]
        assert recovering.move_back_s is not None, "back on OneAI after it recovers"
        assert recovering.counts_emulator["oneai"] > 0
        assert by["brownout", policy].attempts_per_request > 1.1
        assert by["429-storm", policy].rate_limited >= 1
        streams = by["stalled-cut-streams", policy]
        assert streams.restarts >= 1 and streams.success_rate >= 0.999
        assert streams.ttft_ms is not None and streams.ttft_ms["p50"] is not None
    latency = by["latency-shift", "latency"]
    assert latency.move_off_s is not None, "the latency policy moves off the slowed gateway"
    assert latency.degraded_s == pytest.approx((0.75, 1.5)) and by["healthy", "latency"].degraded_s is None
    assert by["healthy", "latency"].cost_ratio > 1.0  # type: ignore[operator]  # pays for speed


async def test_a_subset_runs_healthy_first_for_the_move_times(fake_time: Loop) -> None:
    """Asking for one degraded scenario also runs healthy (its baseline shares), first."""
    settings = Settings(duration=1.0, rate=20.0)
    async with Emulator(seed=0) as emulator:
        cells, bare = await run(["brownout"], ["latency"], settings, InLoopEmulator(emulator))
    assert [(c.scenario, c.policy) for c in cells] == [("healthy", "latency"), ("brownout", "latency")]
    assert set(bare) == {"chat"}
    assert cells_planned(["brownout"], ["latency"]) == (2, 2)
    assert cells_planned(list(SCENARIOS), list(POLICIES)) == (len(SCENARIOS) * len(POLICIES), 4)


def test_shares_and_move_times() -> None:
    """Shares are per slice of the run; moving off and back is measured against half the healthy share."""
    started = [(0.05, "oneai"), (0.06, "onetoken"), (0.5, "onetoken"), (0.96, "oneai")]
    shares = _shares(started, duration=1.0)
    assert shares["oneai"][1] == 0.5 and shares["onetoken"][1] == 0.5
    assert shares["onetoken"][10] == 1.0 and shares["oneai"][19] == 1.0
    assert shares["oneai"][5] == 0.0 and shares["onellm"] == [0.0] * 20
    world = scenarios(1 / 30)
    recovering = world["down-recovering"]  # OneAI down for the first half (0.5 s of 1 s)
    # An attempt every 10 ms: OneAI's for the first ten and one probe at 0.3, then 4 in 5 from 0.6.
    started = [
        (i / 100, "oneai" if i < 10 or i == 30 or (i >= 60 and i % 5 < 4) else "onerouter")
        for i in range(100)
    ]
    off, back = _move_times(recovering, started, 1.0, {"oneai": 0.9}, window=10)
    assert off == pytest.approx(0.15), (
        "under half of 0.9 from the window 0.06-0.15 (4 of 10) on; a probe is 1"
    )
    assert back == pytest.approx(0.15), "after 0.5, the first window back over half: 0.56-0.65, 5 of 10"
    # Moving off must hold for a tenth of the degraded period (0.05 s here). Back over half during the hold
    # (0.16-0.21): the fall at 0.15 did not last, the one after the blip did.
    dip = [(at, "oneai" if 0.16 <= at < 0.21 else name) for at, name in started]
    assert _move_times(recovering, dip, 1.0, {"oneai": 0.9}, window=10)[0] == pytest.approx(0.26)
    # Back over half after the move held (a probe that succeeds, a rate limit's refill): the move stands.
    late = [(at, "oneai" if 0.26 <= at < 0.3 else name) for at, name in started]
    assert _move_times(recovering, late, 1.0, {"oneai": 0.9}, window=10)[0] == pytest.approx(0.15)
    never = [(i / 100, "oneai" if i % 10 < 7 else "onerouter") for i in range(100)]  # fails over, stays on
    assert _move_times(world["brownout"], never, 1.0, {"oneai": 1.0}, window=10) == (None, None)
    assert _move_times(recovering, started, 1.0, {"oneai": 0.01}) == (None, None), (
        "never used: nothing to move"
    )
    assert _move_times(world["healthy"], started, 1.0, {"oneai": 0.9}) == (None, None)


def test_moving_off_cannot_be_the_end_of_the_cell() -> None:
    """A share that falls under half only in the degraded period's last tenth has not moved off (the brownout
    cell that once reported "off 29.87" of 30 s): it cannot hold; one that falls earlier and stays has."""
    brownout = scenarios(1.0)["brownout"]  # OneAI degraded from 0 s to the end, 30 s

    def attempts(last_oneai: int) -> list[tuple[float, str]]:
        # 40 a second; OneAI takes 7 in 10 (its healthy share 1.0: half is 0.5) until attempt last_oneai.
        return [(i / 40, "oneai" if i < last_oneai and i % 10 < 7 else "onerouter") for i in range(1200)]

    assert _move_times(brownout, attempts(1195), 30.0, {"oneai": 1.0}) == (None, None)
    assert _move_times(brownout, attempts(1100), 30.0, {"oneai": 1.0}) == (None, None), "2.5 s < a tenth"
    off, _ = _move_times(brownout, attempts(1040), 30.0, {"oneai": 1.0})
    assert off is not None and 26.0 < off < 26.5, "under half from 26 s on: 4 s, over a tenth of 30 s"
    assert _move_times(brownout, attempts(1200), 30.0, {"oneai": 1.0}) == (None, None), "never moved"


@given(
    st.lists(st.sampled_from(["oneai", "onerouter"]), min_size=0, max_size=300),
    st.floats(min_value=0.05, max_value=1.0),
)
def test_off_is_never_in_the_last_tenth_of_the_degraded_period(names: list[str], healthy: float) -> None:
    """Whatever the attempts, off falls within the degraded period, before its last tenth."""
    world = scenarios(0.1)
    started = [(3.0 * i / max(len(names), 1), name) for i, name in enumerate(names)]
    for name in ("brownout", "down-recovering", "latency-shift"):
        scenario = world[name]
        assert scenario.degraded is not None
        _, begin, end = scenario.degraded
        since, until = begin * 3.0, (1.0 if end is None else end) * 3.0
        off, _ = _move_times(scenario, started, 3.0, {"oneai": healthy, "onetoken": healthy}, window=5)
        assert off is None or 0.0 <= off <= (until - since) * (1 - HOLD) + 1e-9


def test_impairments_say_what_breaks_when() -> None:
    """Each scenario's impaired gateways and spans, in seconds of the run, for the plots."""
    world = scenarios(1.0)
    assert world["healthy"].impairments(30.0) == ()
    assert world["down-recovering"].impairments(30.0) == (
        Impairment("oneai", "refuses connections", 0.0, 15.0),
    )
    assert world["latency-shift"].impairments(30.0) == (Impairment("onetoken", "turns 6x slower", 7.5, 15.0),)
    storm = world["429-storm"].impairments(3.0)
    assert [(i.gateway, i.start, i.end) for i in storm] == [("oneai", 0.0, 3.0)], "a tier impairs too"
    assert [i.gateway for i in world["stalled-cut-streams"].impairments(30.0)] == ["oneai", "onerouter"]


def test_a_cell_round_trips_through_json(quick_run: Run) -> None:
    """CellResult.from_json(cell.to_json()) is the same cell, so a results file redraws the same report."""
    cells, _ = quick_run
    for cell in cells:
        assert CellResult.from_json(json.loads(json.dumps(cell.to_json()))) == cell


def test_percentiles() -> None:
    """p50/p95/p99 in milliseconds; none without samples."""
    assert _percentiles([]) == {"p50": None, "p95": None, "p99": None}
    assert _percentiles([0.2]) == {"p50": 200.0, "p95": 200.0, "p99": 200.0}
    got = _percentiles([i / 1000 for i in range(1, 101)])
    assert got["p50"] == pytest.approx(50.5) and got["p99"] == pytest.approx(99.01)


def test_settings_scale_time_and_the_storm() -> None:
    """A 3 s cell stands for 30 s: delays scale by 0.1, and so does the storm's tier."""
    assert QUICK.scale == pytest.approx(0.1) and QUICK.requests == 120
    assert scenarios(1.0)["429-storm"].changes[0].tier.rpm == 300  # type: ignore[union-attr]
    assert scenarios(0.1)["429-storm"].changes[0].tier.rpm == 30  # type: ignore[union-attr]


def test_tables_fit_80_columns_and_plots_are_written(quick_run: Run, tmp_path: pathlib.Path) -> None:
    """Both tables render within 80 columns; the plots are PNG files."""
    from rich.console import Console

    cells, bare = quick_run
    console = Console(width=200, record=True, color_system=None)
    for t in tables(cells, bare):
        console.print(t)
    text = console.export_text()
    assert max(len(line.rstrip()) for line in text.splitlines()) <= 80
    assert "stalled-cut-streams" in text and "…" not in text
    stream = next(c for c in cells if c.stream)
    assert cpu_ratio(stream, {"chat": [1.0]}) is None
    assert cpu_ratio(stream, {"stream": [stream.cpu_us_per_request / 2] * 2}) == pytest.approx(2.0)
    written = write_plots(tmp_path, cells)
    assert {p.name for p in written} == {
        "latency_cdf.png",
        "traffic_share.png",
        "cost_vs_p95.png",
        "ttft.png",
    }
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_the_command_end_to_end(tmp_path: pathlib.Path) -> None:
    """`switchyard bench` (short cells) exits 0, writes results.json (with its command and machine), the plots
    and report.html; counts agree."""
    out = tmp_path / "out"
    exe = pathlib.Path(sys.executable).parent / "switchyard"
    done = subprocess.run(
        [
            str(exe),
            "bench",
            "--duration",
            "0.4",
            "--rate",
            "40",
            "--out",
            str(out),
            "--scenario",
            "gateway-down",
            "--scenario",
            "stalled-cut-streams",
            "--policy",
            "cheapest",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((out / "results.json").read_text())
    assert [(c["scenario"], c["policy"]) for c in report["cells"]] == [
        ("healthy", "cheapest"),
        ("gateway-down", "cheapest"),
        ("stalled-cut-streams", "cheapest"),
    ]
    assert all(c["counts_agree"] for c in report["cells"])
    assert report["command"] == (
        "switchyard bench --scenario gateway-down --scenario stalled-cut-streams --policy cheapest "
        "--duration 0.4 --rate 40"
    )
    assert report["machine"]["cores"] >= 1 and report["machine"]["python"]
    assert report["subset"] is True and report["interrupted"] is False
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "gateway-down" in page and "stalled-cut-streams" in page and '="http' not in page
    assert set(report["baseline"]) == {"chat", "stream"}
    assert all(c["cpu_ratio_to_bare"] > 0 for c in report["cells"])
    assert len(list(out.glob("*.png"))) >= 3
    assert "switchyard bench: outcomes" in done.stdout and "gateway-down" in done.stdout
    # Piped (no terminal): one plain line per finished cell, as it finishes, not a silent run.
    lines = [line for line in done.stderr.splitlines() if line.startswith("cell ")]
    assert lines[0].startswith("cell 1/7 done: bare aiohttp chat (before)")
    assert [line.split(" done: ")[1].rsplit(" (", 1)[0] for line in lines[2:5]] == [
        "healthy / cheapest",
        "gateway-down / cheapest",
        "stalled-cut-streams / cheapest",
    ]
    assert lines[-1].startswith("cell 7/7 done: ")


def test_ctrl_c_writes_the_finished_cells_and_exits_130(tmp_path: pathlib.Path) -> None:
    """SIGINT to a real `switchyard bench`: the running cell finishes, its results are written, exit 130."""
    out = tmp_path / "out"
    exe = pathlib.Path(sys.executable).parent / "switchyard"
    args = ["bench", "--duration", "0.4", "--rate", "40", "--out", str(out), "--policy", "cheapest"]
    proc = subprocess.Popen([str(exe), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:  # piped: one line per finished cell
        seen.append(line)
        if "done: healthy / cheapest" in line:
            proc.send_signal(signal.SIGINT)
            break
    _, rest = proc.communicate(timeout=120)
    stderr = "".join(seen) + rest
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    report = json.loads((out / "results.json").read_text())
    names = [(c["scenario"], c["policy"]) for c in report["cells"]]
    assert names[0] == ("healthy", "cheapest") and 1 <= len(names) <= 2
    assert list(out.glob("*.png"))


def _bench(tmp_path: pathlib.Path, *args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    exe = pathlib.Path(sys.executable).parent / "switchyard"
    env = None if path is None else {**os.environ, "PATH": path}
    return subprocess.run(
        [str(exe), "bench", "--duration", "0.6", "--rate", "40", "--out", str(tmp_path / "out"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        env=env,
    )


def test_the_replicas_scenario_runs_on_memory_stores_and_on_redis(tmp_path: pathlib.Path) -> None:
    """`--scenario replicas`: four processes, on memory stores then on one Redis; its table and JSON."""
    if shutil.which("redis-server") is None:
        pytest.skip(MISSING)
    done = _bench(tmp_path, "--scenario", "replicas")
    assert done.returncode == 0, done.stderr
    replicas = json.loads((tmp_path / "out" / "results.json").read_text())["replicas"]
    assert set(replicas["runs"]) == {"memory", "redis"} and replicas["processes"] == 4
    for figures in replicas["runs"].values():
        assert figures["requests"] == 24 and figures["ok"] == 24
    assert replicas["runs"]["redis"]["round_trips_per_request"] > 0
    assert "switchyard bench: replicas (4 processes" in done.stdout
    assert [
        line.split(" done: ")[1].rsplit(" (", 1)[0] for line in done.stderr.splitlines() if " done: " in line
    ] == [
        "replicas / memory",
        "replicas / redis",
    ]


def test_without_redis_server_the_replicas_scenario_is_skipped_in_one_line(tmp_path: pathlib.Path) -> None:
    """No redis-server on the PATH: one line says the scenario was skipped and why; the run succeeds."""
    done = _bench(tmp_path, "--scenario", "replicas", path=str(pathlib.Path(sys.executable).parent))
    assert done.returncode == 0, done.stderr
    skipped = [line for line in done.stderr.splitlines() if "replicas" in line]
    assert skipped == [
        "switchyard bench: replicas skipped: redis-server is not on PATH (install Redis to run it, "
        "e.g. apt-get install redis-server)"
    ]
    report = json.loads((tmp_path / "out" / "results.json").read_text())
    assert report["replicas"] == {"skipped": "redis-server is not on PATH"}
