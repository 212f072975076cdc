"""The bench's cells, run once for every test that reads them."""

from __future__ import annotations

import pytest

from ._quick import Run, quick_cells


@pytest.fixture(scope="session")
def quick_run() -> Run:
    """Every scenario under every policy at the --quick settings, on fake time (once per session)."""
    return quick_cells()
