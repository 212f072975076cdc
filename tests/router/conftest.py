"""Fixtures: the emulator and a graph of its four gateways, with prices for the shared models."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A running emulator."""
    async with Emulator(seed=0) as emulator:
        yield emulator


@pytest.fixture
def graph(emu: Emulator) -> ProviderGraph:
    """The emulator's four gateways; gpt-4o-mini priced by the user at both its gateways.

    OneLLM sells GPT-4o-mini at $0.10/$0.40 and Onetoken at $0.15/$0.60 per 1M, so
    OneLLM is the cheaper.
    """
    graph = ProviderGraph.from_catalogs(emu.gateways())
    graph.set_price("onellm", "GPT-4o-mini", 0.10, 0.40)
    graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
    return graph
