"""Merging a live refresh into a large graph, off the event loop."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from switchyard.providers import (
    FakeClock,
    Gateway,
    MockTransport,
    Offer,
    ProviderGraph,
    Response,
    UnknownModelError,
    WireRequest,
)


def _listing(ids: list[str], price: str = "0.000001", window: int = 8_192) -> dict[str, Any]:
    entry = {"context_length": window, "pricing": {"prompt": price, "completion": price}}
    return {"data": [{"id": i, **entry} for i in ids]}


def _served(*listings: dict[str, Any]) -> MockTransport:
    """A transport answering each models listing request with the next of ``listings``."""
    left = list(listings)

    def handler(wire: WireRequest) -> Response:
        return Response(status=200, headers={}, content=json.dumps(left.pop(0)).encode())

    return MockTransport(handler)


def _graph(n: int) -> ProviderGraph:
    """A custom gateway selling ``n`` vendor-prefixed offers, with a models listing."""
    offers = [Offer(f"vendor/m-{i}", input_price=9.0, output_price=9.0) for i in range(n)]
    gateway = Gateway.openai_compatible(
        "big", "http://127.0.0.1:1/v1", "k", offers=offers, models_path="/models"
    )
    return ProviderGraph.from_catalogs([gateway], clock=FakeClock())


IDS = [f"vendor/m-{i}" for i in range(6_000)] + [f"vendor/new-{i}" for i in range(60)]


async def test_after_a_large_refresh_a_typo_sorts_nothing_on_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """New ids' "did you mean" index is made in worker threads and ready when refresh() returns: neither
    the refresh nor an unknown id after it sorts ids in the event loop's thread."""
    import builtins

    from switchyard.providers import _suggest

    graph = _graph(6_000)
    graph.offers("m-1")
    loop_thread = threading.current_thread()
    on_loop: list[int] = []

    def spy(items: object, /, **options: object) -> list[object]:
        done: list[object] = builtins.sorted(items, **options)  # type: ignore[call-overload]
        if threading.current_thread() is loop_thread:
            on_loop.append(len(done))
        return done

    monkeypatch.setattr(_suggest, "sorted", spy, raising=False)
    await graph.refresh(_served(_listing(IDS)))
    with pytest.raises(UnknownModelError, match="did you mean 'new-17'"):
        graph.resolve("new-17x")
    assert not on_loop
