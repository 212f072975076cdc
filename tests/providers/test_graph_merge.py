"""Merging a live refresh into a large graph: only what changed is made again, off the event loop."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from switchyard.providers import (
    FakeClock,
    Gateway,
    MockTransport,
    Offer,
    PriceSource,
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


async def test_a_listing_that_did_not_change_keeps_every_offer_and_the_index() -> None:
    """Refreshed with the same listing, the graph keeps its version and every offer object."""
    graph = _graph(6_000)
    transport = _served(_listing(IDS), _listing(IDS))
    await graph.refresh(transport)
    version, offers = graph.version, list(graph)
    assert offers[0].price_source is PriceSource.LIVE and len(offers) == len(IDS)
    report = await graph.refresh(transport, force=True)
    assert report.fetched == ("big",)
    assert graph.version == version
    assert all(now is then for now, then in zip(graph, offers, strict=True))


async def test_a_listing_that_moved_one_price_makes_only_that_offer_again() -> None:
    """One entry's new price makes one new offer; every other offer is the object it was."""
    graph = _graph(6_000)
    moved = _listing(IDS)
    moved["data"][17]["pricing"] = {"prompt": "0.000002", "completion": "0.000002"}
    transport = _served(_listing(IDS), moved)
    await graph.refresh(transport)
    version, before = graph.version, {(o.gateway, o.gateway_model): o for o in graph}
    await graph.refresh(transport, force=True)
    assert graph.version > version
    changed = [o for o in graph if o is not before[(o.gateway, o.gateway_model)]]
    assert [(o.gateway_model, o.input_price) for o in changed] == [("vendor/m-17", 2.0)]
    assert graph.offers("m-17") == (changed[0],)


async def test_a_listing_that_dropped_and_added_ids_is_merged_as_listed() -> None:
    """Ids a listing no longer has lose their live terms or go; new ones join, in wire id order."""
    graph = _graph(6_000)
    later = [*IDS[:5_000], "vendor/new-0", "vendor/late-1", "vendor/late-0"]
    transport = _served(_listing(IDS), _listing(later, price="0.000003"))
    await graph.refresh(transport)
    await graph.refresh(transport, force=True)
    assert graph.offer("big", "vendor/m-5500").price_source is PriceSource.USER, "its own offer again"
    assert graph.offer("big", "vendor/m-10").input_price == 3.0
    with pytest.raises(UnknownModelError):
        graph.offers("new-1")
    wire = [o.gateway_model for o in graph]
    assert wire == sorted(wire) and wire.count("vendor/late-0") == 1 and graph.offers("late-1")


async def test_a_large_graph_merges_even_a_small_listing_off_the_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A graph of 6,000 offers assembles its index in a worker thread, however short the listing."""
    graph = _graph(6_000)
    real = asyncio.to_thread
    threaded: list[str] = []

    async def spy(func: Callable[..., Any], /, *args: Any) -> Any:
        threaded.append(getattr(func, "__name__", ""))
        return await real(func, *args)

    monkeypatch.setattr(asyncio, "to_thread", spy)
    await graph.refresh(_served(_listing(["vendor/m-1", "vendor/fresh"])))
    assert "assemble" in threaded
    assert graph.offer("big", "vendor/fresh").price_source is PriceSource.LIVE


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
