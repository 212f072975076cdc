"""Live refresh: a gateway's models listing merged with source 'live', cached with a TTL."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses
from switchyard.providers import (
    CatalogError,
    ConfigError,
    FakeClock,
    Gateway,
    MalformedReply,
    MockTransport,
    Offer,
    PriceSource,
    ProviderGraph,
    Response,
    Secret,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
    WireRequest,
)
from switchyard.providers import _listing as listing_module
from switchyard.providers._listing import fetch_listing, listing_request, parse_listing
from yarl import URL

ROUTER_MODELS = "https://llm.onerouter.pro/v1/models"
ROUTER_API_MODELS = "https://llm.onerouter.pro/api/v1/models"  # "Additional endpoints like /api/v1/models"
KEY = "or-secret-key-0001"

LISTING: dict[str, Any] = {
    "data": [
        {
            "id": "claude-3-5-sonnet@20240620",
            "context_length": 200000,
            "pricing": {"prompt": "0.0000024", "completion": "0.000012"},
        },
        {
            "id": "anthropic/claude-3-7-sonnet-20250219",
            "pricing": {"prompt": "0.000003", "completion": "0.000015"},
        },
        {"id": "openai/gpt-4o-mini", "context_length": 128000},
        {"id": "openrouter/auto", "pricing": {"prompt": "-1", "completion": "-1"}},
        {"name": "no id here"},
        "not an object",
    ]
}


def _graph(clock: FakeClock | None = None, ttl: float = 600.0) -> ProviderGraph:
    return ProviderGraph.from_catalogs([Gateway.onerouter(KEY)], clock=clock, refresh_ttl=ttl)


def _requests(mocked: aioresponses) -> list[Any]:
    return [call for calls in mocked.requests.values() for call in calls]


async def test_refresh_merges_live_prices_and_new_models() -> None:
    """Listed prices (USD per token) become USD per 1M with source 'live'; new models join by canonical id."""
    graph = _graph()
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, payload=LISTING)
        report = await graph.refresh()
    assert report.fetched == ("onerouter",) and not report.failed
    assert report.skipped_entries == {"onerouter": 2}

    sonnet = graph.offer("onerouter", "claude-3-5-sonnet@20240620")
    assert (sonnet.input_price, sonnet.output_price, sonnet.price_source) == (2.4, 12.0, PriceSource.LIVE)
    assert sonnet.capabilities.streaming is True  # snapshot knowledge kept
    (new,) = graph.offers("claude-3.7-sonnet-20250219")  # a snapshot: not OneLLM's undated Sonnet-3.7
    assert (new.gateway_model, new.input_price, new.output_price) == (
        "anthropic/claude-3-7-sonnet-20250219",
        3.0,
        15.0,
    )
    (mini,) = graph.offers("gpt-4o-mini")
    assert mini.price_source is PriceSource.UNKNOWN and mini.context_window == 128_000
    (auto,) = graph.offers("openrouter/auto")
    assert not auto.priced, "OneRouter's -1 means 'varies', never a negative or zero price"


async def test_refresh_sends_the_key_only_to_its_own_listing() -> None:
    """The listing is read at base_url + /models with the gateway's own key, redirects not followed."""
    graph = ProviderGraph.from_catalogs([Gateway.onerouter(KEY), Gateway.oneai("oneai-key-0002")])
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, payload=LISTING)
        await graph.refresh()
    (call,) = _requests(mocked)
    assert call.kwargs["headers"]["Authorization"] == f"Bearer {KEY}"
    assert call.kwargs["allow_redirects"] is False


async def test_redirect_is_refused_and_the_key_stays_home() -> None:
    """A 3xx from the listing is a failure; nothing is sent to the other origin."""
    graph = _graph()
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, status=302, headers={"Location": "https://evil.example/models"})
        report = await graph.refresh()
    assert "HTTP 302" in report.failed["onerouter"]
    assert [str(url) for (_, url) in mocked.requests] == [ROUTER_MODELS]


async def test_fresh_listing_is_not_fetched_again_until_the_ttl_passes() -> None:
    """Within the TTL a refresh is served from the cache; after it, the listing is fetched again."""
    clock = FakeClock()
    graph = _graph(clock, ttl=600)
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, payload=LISTING, repeat=True)
        assert (await graph.refresh()).fetched == ("onerouter",)
        clock.advance(599)
        assert (await graph.refresh()).cached == ("onerouter",)
        assert len(_requests(mocked)) == 1
        assert (await graph.refresh(force=True)).fetched == ("onerouter",)
        clock.advance(601)
        assert (await graph.refresh()).fetched == ("onerouter",)
        assert len(_requests(mocked)) == 3


@pytest.mark.parametrize(
    ("mock", "reason"),
    [
        ({"status": 500, "body": "oops"}, "HTTP 500"),
        ({"status": 401, "payload": {"error": {"message": "bad key"}}}, "HTTP 401"),
        ({"status": 200, "body": "<html>maintenance</html>"}, "not JSON"),
        ({"status": 200, "payload": {"models": []}}, "no 'data' list"),
        ({"exception": aiohttp.ClientConnectionError("refused")}, "could not be read"),
        ({"exception": TimeoutError()}, "timed out"),
    ],
)
async def test_failed_refresh_keeps_the_last_good_listing(
    mock: dict[str, Any], reason: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A failing listing is reported and logged, never raised, and the last good data stays."""
    clock = FakeClock()
    graph = _graph(clock, ttl=60)
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, payload=LISTING)
        await graph.refresh()
        clock.advance(61)
        mocked.get(ROUTER_MODELS, **mock)
        with caplog.at_level(logging.WARNING, logger="switchyard.catalog"):
            report = await graph.refresh()
    assert reason in report.failed["onerouter"]
    assert KEY not in report.failed["onerouter"] and KEY not in caplog.text
    assert "onerouter" in caplog.text
    assert graph.offer("onerouter", "claude-3-5-sonnet@20240620").price_source is PriceSource.LIVE


async def test_lookups_answer_while_a_refresh_is_in_flight() -> None:
    """Routing never waits for a refresh: lookups serve the snapshot until the new index is swapped in."""
    graph = _graph()
    release = asyncio.Event()
    entered = asyncio.Event()

    async def slow_listing(url: Any, **kwargs: Any) -> CallbackResult:
        entered.set()
        await release.wait()
        return CallbackResult(payload=LISTING)

    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, callback=slow_listing)
        task = asyncio.create_task(graph.refresh())
        await entered.wait()
        during = graph.offer("onerouter", "claude-3-5-sonnet@20240620")
        assert during.price_source is PriceSource.REFERENCE
        release.set()
        await task
    assert graph.offer("onerouter", "claude-3-5-sonnet@20240620").price_source is PriceSource.LIVE


async def test_user_prices_outlive_a_refresh() -> None:
    """A user's price override beats the live listing."""
    graph = _graph()
    graph.set_price("onerouter", "claude-3-5-sonnet@20240620", 1.0, 5.0)
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, payload=LISTING)
        await graph.refresh()
    offer = graph.offer("onerouter", "claude-3-5-sonnet@20240620")
    assert (offer.input_price, offer.output_price, offer.price_source) == (1.0, 5.0, PriceSource.USER)


async def test_a_session_passed_in_is_used_and_left_open() -> None:
    """refresh() uses the caller's session and does not close it."""
    graph = _graph()
    async with aiohttp.ClientSession() as session:
        with aioresponses() as mocked:
            mocked.get(ROUTER_MODELS, payload=LISTING)
            await graph.refresh(session)
        assert not session.closed


async def test_gateways_without_a_listing_are_not_asked() -> None:
    """Only gateways with a models listing are refreshed; a custom one opts in with models_path."""
    custom = Gateway.openai_compatible(
        "local", "http://127.0.0.1:8080/v1", Secret("local-key-3"), offers=[Offer("m")], models_path="/models"
    )
    graph = ProviderGraph.from_catalogs([Gateway.onetoken("k"), custom])
    with aioresponses() as mocked:
        mocked.get("http://127.0.0.1:8080/v1/models", payload={"data": [{"id": "m2"}]})
        report = await graph.refresh()
    assert report.fetched == ("local",)
    assert {str(url) for (_, url) in mocked.requests} == {"http://127.0.0.1:8080/v1/models"}
    assert graph.offers("m2")[0].gateway == "local"


async def test_default_listing_falls_back_from_models_to_api_v1_models() -> None:
    """OneRouter's listing is read at base_url + /models, and after a 404 at its documented /api/v1/models."""
    graph = _graph()
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, status=404, payload={"error": {"message": "Not Found"}})
        mocked.get(ROUTER_API_MODELS, payload=LISTING)
        report = await graph.refresh()
    assert report.fetched == ("onerouter",) and not report.failed
    assert [str(url) for (_, url) in mocked.requests] == [ROUTER_MODELS, ROUTER_API_MODELS]
    for call in _requests(mocked):
        assert call.kwargs["headers"]["Authorization"] == f"Bearer {KEY}"
        assert call.kwargs["allow_redirects"] is False
    assert graph.offer("onerouter", "claude-3-5-sonnet@20240620").price_source is PriceSource.LIVE


@pytest.mark.parametrize(("status", "fetched"), [(200, True), (404, False)])
async def test_a_configured_models_path_is_used_alone(status: int, fetched: bool) -> None:
    """Gateway.onerouter(models_path=...) reads that path under base_url alone, even after a 404."""
    url = "https://llm.onerouter.pro/v1/catalog/models"
    graph = ProviderGraph.from_catalogs([Gateway.onerouter(KEY, models_path="/catalog/models")])
    with aioresponses() as mocked:
        mocked.get(url, status=status, payload=LISTING)
        report = await graph.refresh()
    assert [str(u) for (_, u) in mocked.requests] == [url]
    assert report.fetched == (("onerouter",) if fetched else ())
    assert fetched or "HTTP 404" in report.failed["onerouter"]


async def test_the_listing_fallback_stays_on_the_gateways_origin() -> None:
    """The fallback path is on the gateway's own scheme, host and port, whatever the base_url's path."""
    base = "http://127.0.0.1:8443/onerouter/v1"
    graph = ProviderGraph.from_catalogs([Gateway.onerouter(KEY, base_url=base)])
    with aioresponses() as mocked:
        mocked.get(base + "/models", status=404)
        mocked.get("http://127.0.0.1:8443/api/v1/models", payload=LISTING)
        report = await graph.refresh()
    assert report.fetched == ("onerouter",)
    assert [str(url) for (_, url) in mocked.requests] == [
        base + "/models",
        "http://127.0.0.1:8443/api/v1/models",
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models_fallback_paths": ["//evil.example/models"]}, "own origin"),
        ({"models_fallback_paths": ["https://evil.example/models"]}, "starting with '/'"),
        ({"models_fallback_paths": ["api/v1/models"]}, "starting with '/'"),
        ({"models_fallback_paths": "/api/v1/models"}, "list of paths"),
        ({"models_path": None, "models_fallback_paths": ["/api/v1/models"]}, "give a models_path"),
    ],
)
def test_a_listing_path_cannot_name_another_origin(kwargs: dict[str, Any], match: str) -> None:
    """A fallback listing path is a path on the gateway's origin, after a models_path; others are refused."""
    with pytest.raises(ConfigError, match=match):
        Gateway.openai_compatible(
            "local",
            "http://127.0.0.1:8080/v1",
            "k",
            offers=[Offer("m")],
            **{"models_path": "/models", **kwargs},
        )


@pytest.mark.parametrize(
    "mock",
    [
        {"status": 500, "body": "oops"},
        {"status": 302, "headers": {"Location": ROUTER_API_MODELS}},
        {"status": 401, "payload": {"error": {"message": "bad key"}}},
    ],
)
async def test_only_a_404_moves_on_to_the_next_listing_path(mock: dict[str, Any]) -> None:
    """Any failure other than a 404 at the first path is reported as it is, and the next path is not tried."""
    graph = _graph()
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, **mock)
        report = await graph.refresh()
    assert f"HTTP {mock['status']}" in report.failed["onerouter"]
    assert [str(url) for (_, url) in mocked.requests] == [ROUTER_MODELS]


async def test_a_listing_missing_at_every_path_is_one_failure() -> None:
    """When every listing path answers 404 the failure names the paths tried, never the key."""
    graph = _graph()
    with aioresponses() as mocked:
        mocked.get(ROUTER_MODELS, status=404)
        mocked.get(ROUTER_API_MODELS, status=404)
        report = await graph.refresh()
    reason = report.failed["onerouter"]
    assert "HTTP 404" in reason and "/v1/models" in reason and "/api/v1/models" in reason
    assert KEY not in reason


@pytest.mark.parametrize(
    ("pricing", "expected"),
    [
        ({"prompt": "0.000003", "completion": "0.000015"}, (3.0, 15.0)),
        ({"prompt": 0.0000005, "completion": 0.0000015}, (0.5, 1.5)),
        ({"prompt": "0", "completion": "0"}, (0.0, 0.0)),
        ({"prompt": "-1", "completion": "0.00001"}, (None, None)),
        ({"prompt": "abc", "completion": "0.00001"}, (None, None)),
        ({"prompt": "0.000001"}, (None, None)),
        (None, (None, None)),
    ],
)
def test_listing_prices_convert_exactly(
    pricing: dict[str, Any] | None, expected: tuple[float | None, ...]
) -> None:
    """Per-token prices convert to per-million exactly; a partial or invalid price stays unknown."""
    (offer,), _ = parse_listing("g", {"data": [{"id": "m", "pricing": pricing}]})
    assert (offer.input_price, offer.output_price) == expected


def test_listing_context_length_must_be_positive_int() -> None:
    """A context length that is not a positive whole number is ignored."""
    offers, _ = parse_listing(
        "g", {"data": [{"id": "a", "context_length": -1}, {"id": "b", "context_length": "8k"}]}
    )
    assert [o.context_window for o in offers] == [None, None]
    assert re.search("unknown", offers[0].price_source.value)


# -- through the transport ------------------------------------------------------------------


def _serving(listings: dict[str, Any]) -> tuple[MockTransport, list[WireRequest]]:
    """A MockTransport answering GET requests for the given URLs with those listings, 404 otherwise."""
    seen: list[WireRequest] = []

    def handler(wire: WireRequest) -> Response:
        seen.append(wire)
        payload = listings.get(str(wire.url)) if wire.method == "GET" else None
        if payload is None:
            return Response(status=404, headers={}, content=b'{"error": "not found"}')
        return Response(
            status=200, headers={"Content-Type": "application/json"}, content=json.dumps(payload).encode()
        )

    return MockTransport(handler), seen


async def test_refresh_reads_the_listing_through_a_mock_transport() -> None:
    """A Transport passed to refresh() serves the listing: no aiohttp, and the transport is left open."""
    graph = _graph()
    transport, seen = _serving({ROUTER_MODELS: LISTING})
    report = await graph.refresh(transport)
    assert report.fetched == ("onerouter",) and report.skipped_entries == {"onerouter": 2}
    sonnet = graph.offer("onerouter", "claude-3-5-sonnet@20240620")
    assert (sonnet.input_price, sonnet.price_source) == (2.4, PriceSource.LIVE)
    (wire,) = seen
    assert (wire.method, str(wire.url), wire.body) == ("GET", ROUTER_MODELS, b"")
    assert wire.headers["Accept"] == "application/json"
    assert not transport.closed


async def test_each_listing_request_carries_its_own_key_to_its_own_origin_only() -> None:
    """Every listing GET holds its gateway's key, for that gateway's origin; a keyless gateway sends none."""
    local = Gateway.openai_compatible(
        "local", "http://127.0.0.1:8080/v1", Secret("local-key-3"), offers=[Offer("m")], models_path="/models"
    )
    bare = Gateway.openai_compatible(
        "bare", "http://127.0.0.1:9090/v1", None, offers=[Offer("m")], models_path="/models"
    )
    graph = ProviderGraph.from_catalogs([Gateway.onerouter(KEY), local, bare])
    transport, seen = _serving(
        {
            ROUTER_API_MODELS: LISTING,  # after a 404 at /v1/models: the fallback path, same origin
            "http://127.0.0.1:8080/v1/models": {"data": [{"id": "m2"}]},
            "http://127.0.0.1:9090/v1/models": {"data": [{"id": "m3"}]},
        }
    )
    report = await graph.refresh(transport)
    assert sorted(report.fetched) == ["bare", "local", "onerouter"], report
    keys = {"onerouter": f"Bearer {KEY}", "local": "Bearer local-key-3"}
    assert len(seen) == 4
    for wire in seen:
        assert wire.url.origin() == wire.key_origin == graph.gateway(wire.gateway).origin
        assert wire.headers.get("Authorization") == keys.get(wire.gateway)
        assert KEY not in repr(wire) and "local-key-3" not in repr(wire)
    assert [str(w.url) for w in seen if w.gateway == "onerouter"] == [ROUTER_MODELS, ROUTER_API_MODELS]


def test_a_listing_request_for_another_origin_is_refused() -> None:
    """listing_request() will not put a gateway's key on a request to another origin."""
    gateway = Gateway.onerouter(KEY)
    assert listing_request(gateway, URL(ROUTER_MODELS)).headers["Authorization"] == f"Bearer {KEY}"
    with pytest.raises(CatalogError, match="not on the gateway's own origin") as info:
        listing_request(gateway, URL("https://evil.example/models"))
    assert KEY not in str(info.value)


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            UpstreamConnectionError("onerouter", detail="could not connect"),
            "could not be read: could not connect",
        ),
        (UpstreamTimeout("onerouter", detail="no response within 10s"), "timed out after 10s"),
        (
            MalformedReply("onerouter", status=200, detail="the reply is larger than 64 MiB"),
            "larger than 64 MiB",
        ),
    ],
)
async def test_the_transports_errors_become_catalog_errors_chained_to_them(
    error: UpstreamError, reason: str
) -> None:
    """The transport maps network failures once; the listing reports them, chained to the UpstreamError."""

    def failing(wire: WireRequest) -> Response:
        raise error

    graph = _graph()
    report = await graph.refresh(MockTransport(failing))
    assert reason in report.failed["onerouter"] and not report.fetched
    with pytest.raises(CatalogError, match=reason) as info:
        await fetch_listing(MockTransport(failing), Gateway.onerouter(KEY), 10.0)
    assert info.value.__cause__ is error


async def test_a_listing_that_never_answers_times_out(fake_time: asyncio.AbstractEventLoop) -> None:
    """A transport that never answers is bounded by refresh()'s timeout, on fake time."""

    async def stalled(wire: WireRequest) -> Response:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    report = await _graph().refresh(MockTransport(stalled), timeout=5)
    assert "timed out after 5s" in report.failed["onerouter"]


async def test_a_listing_over_the_size_cap_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listing body over the cap is a failure, not a partial listing."""
    monkeypatch.setattr(listing_module, "_MAX_LISTING_BYTES", 100)
    transport, _ = _serving({ROUTER_MODELS: LISTING})
    report = await _graph().refresh(transport)
    assert "larger than 100 bytes" in report.failed["onerouter"]


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), True])
async def test_a_bad_timeout_is_refused(timeout: float) -> None:
    """refresh() refuses a timeout that is not a positive number of seconds before sending anything."""
    transport, seen = _serving({ROUTER_MODELS: LISTING})
    with pytest.raises(ConfigError, match="timeout must be a positive number"):
        await _graph().refresh(transport, timeout=timeout)
    assert seen == []


@pytest.mark.parametrize(("entries", "threaded"), [(3, False), (4_000, True)])
async def test_a_large_listing_is_parsed_off_the_event_loop(
    entries: int, threaded: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A listing body over 256 KiB is decoded and parsed in a worker thread; a small one inline."""
    import asyncio as asyncio_module

    calls: list[object] = []
    real = asyncio_module.to_thread

    async def recording(func: Any, /, *args: Any, **kwargs: Any) -> Any:
        calls.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio_module, "to_thread", recording)
    listing = {
        "data": [
            {
                "id": f"vendor/model-{i:05d}-" + "x" * 40,
                "pricing": {"prompt": "0.000001", "completion": "0.000002"},
            }
            for i in range(entries)
        ]
    }
    graph = _graph()
    transport, _ = _serving({ROUTER_MODELS: listing})
    report = await graph.refresh(transport)
    assert report.fetched == ("onerouter",)
    assert bool(calls) is threaded
