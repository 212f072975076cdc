"""Shared fixtures."""

from __future__ import annotations

import pytest

from providers import BUILTIN_GATEWAYS, Gateway, ProviderGraph

from . import _aioresponses_compat

_aioresponses_compat.install()


@pytest.fixture(autouse=True)
def _no_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own gateway keys and URLs out of every test."""
    for name in BUILTIN_GATEWAYS:
        monkeypatch.delenv(f"{name.upper()}_API_KEY", raising=False)
        monkeypatch.delenv(f"{name.upper()}_BASE_URL", raising=False)


@pytest.fixture
def builtin_gateways() -> list[Gateway]:
    """The four built-in gateways with test keys."""
    return [Gateway.builtin(name, f"test-key-{name}") for name in BUILTIN_GATEWAYS]


@pytest.fixture
def graph(builtin_gateways: list[Gateway]) -> ProviderGraph:
    """The graph of the four shipped catalogs."""
    return ProviderGraph.from_catalogs(builtin_gateways)
