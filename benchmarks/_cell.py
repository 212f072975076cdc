"""One cell of the benchmark: one scenario under one policy, driven (``_driver``), measured (``_metrics``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from ._driver import Settings, drive
from ._emuthread import EmulatorHost
from ._metrics import CellResult, measure
from ._scenarios import Scenario

__all__ = ["run_cell"]


async def run_cell(
    emu: EmulatorHost,
    scenario: Scenario,
    policy: str,
    settings: Settings,
    baseline_shares: Mapping[str, float] | None = None,
    progress: Callable[[], None] | None = None,
) -> CellResult:
    """Run one scenario under one policy and measure it.

    ``baseline_shares``: the policy's gateway shares in the healthy cell, which moving
    off a degraded gateway and back is measured against.
    """
    observed = await drive(emu, scenario, policy, settings, progress)
    return measure(scenario, policy, settings.duration * scenario.length, observed, baseline_shares)
