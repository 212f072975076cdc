"""Every bench cell at the --quick settings on fake loop time, and the type the tests read them as."""

from __future__ import annotations

import looptime
from switchyard.benchmarks._bench import QUICK, run
from switchyard.benchmarks._emuthread import InLoopEmulator
from switchyard.benchmarks._metrics import CellResult
from switchyard.benchmarks._scenarios import POLICIES, SCENARIOS
from switchyard.providers.emulator import Emulator

Run = tuple[list[CellResult], dict[str, list[float]]]


def quick_cells() -> Run:
    """Every scenario under every policy at the --quick settings, on fake time."""

    async def go() -> Run:
        async with Emulator(seed=0) as emulator:
            return await run(SCENARIOS, POLICIES, QUICK, InLoopEmulator(emulator))

    loop = looptime.new_event_loop(_enabled=False)
    try:
        with loop.looptime_enabled():
            return loop.run_until_complete(go())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
