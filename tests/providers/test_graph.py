"""The provider graph: lookups, joins, conflicts, user overrides and fallbacks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from importlib import resources
from typing import Any, Final

import pytest
from aiohttp import web
from aioresponses import aioresponses
from switchyard.providers import (
    Capabilities,
    CatalogConflictWarning,
    ConfigError,
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
from switchyard.providers.wire import ModelOffers


def test_graph_joins_one_model_across_gateways(graph: ProviderGraph) -> None:
    """gpt-4o-mini is served by OneLLM and Onetoken; DeepSeek's moving alias deepseek-chat joins nothing."""
    assert [(o.gateway, o.gateway_model) for o in graph.offers("gpt-4o-mini")] == [
        ("onellm", "GPT-4o-mini"),
        ("onetoken", "gpt-4o-mini"),
    ]
    assert [(o.gateway, o.gateway_model) for o in graph.offers("deepseek-v3")] == [("oneai", "deepseek-v3")]
    assert [(o.gateway, o.gateway_model) for o in graph.offers("deepseek-chat")] == [
        ("onellm", "DeepSeek-Chat")
    ]


@pytest.mark.parametrize(
    ("asked", "canonical"),
    [
        ("claude-3.5-sonnet-20240620", "claude-3.5-sonnet-20240620"),
        ("claude-3-5-sonnet@20240620", "claude-3.5-sonnet-20240620"),
        ("GPT-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-MINI", "gpt-4o-mini"),
        ("Sonnet-3.7", "claude-3.7-sonnet"),
        ("anthropic/claude-3-5-sonnet-20240620", "claude-3.5-sonnet-20240620"),
    ],
)
def test_lookup_by_canonical_or_gateway_id(graph: ProviderGraph, asked: str, canonical: str) -> None:
    """Any spelling a gateway or a user might use resolves to the canonical model."""
    assert graph.resolve(asked) == canonical
    assert all(o.model == canonical for o in graph.offers(asked))


def test_lookup_of_one_gateway_offer(graph: ProviderGraph) -> None:
    """offer() and by_gateway_model() find an offer by its wire id."""
    offer = graph.offer("onerouter", "claude-3-5-sonnet@20240620")
    assert offer.model == "claude-3.5-sonnet-20240620" and offer.context_window == 200_000
    assert graph.by_gateway_model("GPT-4o-mini") == (graph.offer("onellm", "GPT-4o-mini"),)
    assert graph.by_gateway_model("nope") == ()
    with pytest.raises(UnknownModelError, match="did you mean 'deepseek-v3'"):
        graph.offer("oneai", "deepseek-v33")


@pytest.mark.parametrize(
    ("asked", "suggested"),
    [
        ("gpt-4o-mimi", "gpt-4o-mini"),
        ("claude-3.5-sonet-20240620", "claude-3.5-sonnet-20240620"),
        ("deepsek-r1", "deepseek-r1"),
    ],
)
def test_unknown_model_names_the_closest_ids(graph: ProviderGraph, asked: str, suggested: str) -> None:
    """An unknown model raises UnknownModelError naming the closest known ids."""
    with pytest.raises(UnknownModelError) as info:
        graph.offers(asked)
    assert info.value.model == asked
    assert info.value.suggestions[0] == suggested
    assert f"did you mean {suggested!r}" in str(info.value)
    assert isinstance(info.value, LookupError)


def test_unknown_model_without_close_ids_says_where_to_look(graph: ProviderGraph) -> None:
    """With nothing close, the error points at `switchyard catalog`."""
    with pytest.raises(UnknownModelError, match="switchyard catalog") as info:
        graph.resolve("zzzzzzzzzzzz")
    assert info.value.suggestions == ()


def test_oneai_duplicate_is_resolved_by_the_stated_rule_and_listed(builtin_gateways: list[Gateway]) -> None:
    """deepseek-r1's two OneAI rows become one at the higher prices, listed in graph.conflicts."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = ProviderGraph.from_catalogs(builtin_gateways)
    assert caught == [], "shipped data is known and resolved: nothing to warn about"
    (conflict,) = graph.conflicts
    assert (conflict.gateway, conflict.gateway_model, len(conflict.rows)) == ("oneai", "deepseek-r1", 2)
    assert conflict.layer == "snapshot"
    offer = graph.offer("oneai", "deepseek-r1")
    assert (offer.input_price, offer.output_price, offer.price_source) == (0.80, 3.50, PriceSource.PUBLISHED)
    assert offer is conflict.kept


def test_every_shipped_conflict_records_its_rule_in_the_catalog(builtin_gateways: list[Gateway]) -> None:
    """A duplicate in a shipped catalog is silent only because that catalog's notes say how it is resolved."""
    graph = ProviderGraph.from_catalogs(builtin_gateways)
    assert graph.conflicts, "the OneAI duplicate is there"
    for conflict in graph.conflicts:
        text = (
            resources.files("switchyard.providers")
            .joinpath("catalogs", f"{conflict.gateway}.json")
            .read_text()
        )
        notes = json.loads(text)["notes"]
        assert any(
            conflict.gateway_model in note and "most conservative" in note and "Rule applied" in note
            for note in notes
        ), f"{conflict.gateway}.json does not record the rule applied to {conflict.gateway_model!r}"
        price = f"${conflict.kept.input_price:.2f}/${conflict.kept.output_price:.2f}"
        assert any(price in note for note in notes), "the notes name the terms the graph uses"


def _custom_conflict(graph_offers: list[Offer] | None = None) -> ProviderGraph:
    rows = [Offer("m", input_price=1.0, output_price=2.0), Offer("m", input_price=0.5, output_price=3.0)]
    gw = Gateway.openai_compatible("g", "http://127.0.0.1:1/v1", "k", offers=graph_offers or rows)
    return ProviderGraph.from_catalogs([gw])


def test_a_conflict_in_a_custom_gateways_offers_warns() -> None:
    """Two different rows for one id in offers the user supplies warn, and say which rule applied."""
    with pytest.warns(CatalogConflictWarning, match="g lists 'm' 2 times.*highest price of each kind"):
        graph = _custom_conflict()
    (conflict,) = graph.conflicts
    assert conflict.layer == "gateway"


def test_a_conflict_in_added_offers_warns_once(builtin_gateways: list[Gateway]) -> None:
    """Extra offers with a duplicate warn once; rebuilding for later changes does not warn again."""
    graph = ProviderGraph.from_catalogs(builtin_gateways)
    with pytest.warns(CatalogConflictWarning, match="oneai lists 'x' 2 times") as record:
        graph.add_offers(
            [
                Offer("x", input_price=1.0, output_price=1.0, gateway="oneai"),
                Offer("x", input_price=2.0, output_price=1.0, gateway="oneai"),
            ]
        )
    assert len(record) == 1
    assert [c.layer for c in graph.conflicts] == ["snapshot", "user"]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph.set_price("oneai", "deepseek-v3", 1.0, 2.0)


async def test_a_conflict_in_a_live_listing_warns(builtin_gateways: list[Gateway]) -> None:
    """A models listing with one id twice at different prices warns (layer 'live')."""
    listing = {
        "data": [
            {"id": "vendor/dup", "pricing": {"prompt": "0.000001", "completion": "0.000002"}},
            {"id": "vendor/dup", "pricing": {"prompt": "0.000003", "completion": "0.000002"}},
        ]
    }
    graph = ProviderGraph.from_catalogs([Gateway.onerouter("or-key-0001")])
    with aioresponses() as mocked:
        mocked.get("https://llm.onerouter.pro/v1/models", payload=listing)
        with pytest.warns(CatalogConflictWarning, match="vendor/dup"):
            await graph.refresh()
    (conflict,) = graph.conflicts
    assert conflict.layer == "live" and graph.offer("onerouter", "vendor/dup").input_price == 3.0


def test_conflict_rule_is_most_conservative_field_by_field() -> None:
    """Highest price of each kind, smallest context window, capabilities only where all agree."""
    gw = Gateway.openai_compatible(
        "g",
        "http://127.0.0.1:1/v1",
        "k",
        offers=[
            Offer("m", input_price=1.0, output_price=2.0, context_window=8000),
            Offer("m", input_price=0.5, output_price=3.0, context_window=4000),
        ],
    )
    with pytest.warns(CatalogConflictWarning):
        graph = ProviderGraph.from_catalogs([gw])
    offer = graph.offer("g", "m")
    assert (offer.input_price, offer.output_price, offer.context_window) == (1.0, 3.0, 4000)

    unknown = Gateway.openai_compatible(
        "u", "http://127.0.0.1:1/v1", "k", offers=[Offer("m", input_price=1.0, output_price=2.0), Offer("m")]
    )
    with pytest.warns(CatalogConflictWarning):
        assert not ProviderGraph.from_catalogs([unknown]).offer("u", "m").priced


def test_identical_duplicates_are_not_conflicts() -> None:
    """The same row listed twice is merged silently."""
    gw = Gateway.openai_compatible("g", "http://127.0.0.1:1/v1", "k", offers=[Offer("m"), Offer("m")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = ProviderGraph.from_catalogs([gw])
    assert graph.conflicts == () and len(graph) == 1


def test_custom_gateway_offers_join_builtin_ones(builtin_gateways: list[Gateway]) -> None:
    """A custom gateway's offers join the shipped ones by canonical id."""
    local = Gateway.openai_compatible(
        "local", "http://127.0.0.1:8080/v1", "k", offers=[Offer("GPT-4o-mini", "gpt-4o-mini-local", 0.1, 0.4)]
    )
    graph = ProviderGraph.from_catalogs([*builtin_gateways, local])
    assert [o.gateway for o in graph.offers("gpt-4o-mini")] == ["onellm", "onetoken", "local"]


def test_user_price_override_and_extra_offers(graph: ProviderGraph) -> None:
    """set_price gives an offer the user's numbers; add_offers adds or replaces offers."""
    version = graph.version
    offer = graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
    assert (offer.input_price, offer.output_price, offer.price_source) == (0.15, 0.60, PriceSource.USER)
    assert graph.version > version
    graph.add_offers([Offer("gpt-4o", "GPT-4o", 2.5, 10.0, 128_000, gateway="onellm")])
    replaced = graph.offer("onellm", "GPT-4o")
    assert (replaced.input_price, replaced.context_window, replaced.price_source) == (
        2.5,
        128_000,
        PriceSource.USER,
    )
    graph.add_offers([Offer("brand-new", "brand-new-v1", gateway="oneai")])
    assert graph.offers("brand-new")[0].gateway_model == "brand-new-v1"


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda g: g.set_price("nowhere", "x", 1, 1), "no gateway called 'nowhere'"),
        (lambda g: g.set_price("oneai", "deepseek-v33", 1, 1), "did you mean 'deepseek-v3'"),
        (lambda g: g.set_price("oneai", "deepseek-v3", -1, 1), "non-negative"),
        (lambda g: g.add_offers([Offer("m")]), "must name its gateway"),
        (lambda g: g.add_offers([Offer("m", gateway="nowhere")]), "no gateway called"),
    ],
)
def test_bad_overrides_are_refused(
    graph: ProviderGraph, call: Callable[[ProviderGraph], object], match: str
) -> None:
    """Overrides naming unknown gateways or offers, or bad prices, raise ConfigError."""
    with pytest.raises(ConfigError, match=match):
        call(graph)


def test_fallbacks_follow_the_configured_order(graph: ProviderGraph) -> None:
    """candidates() lists a model's offers, then each fallback's, depth-first and each once."""
    graph.set_fallbacks(
        {"claude-3.5-sonnet-20240620": ["Sonnet-3.7", "gpt-4o-mini"], "Sonnet-3.7": ["deepseek-v3"]}
    )
    assert graph.fallbacks("claude-3.5-sonnet-20240620") == (
        "claude-3.7-sonnet",
        "deepseek-v3",
        "gpt-4o-mini",
    )
    gateways = [(o.model, o.gateway) for o in graph.candidates("claude-3-5-sonnet@20240620")]
    assert gateways == [
        ("claude-3.5-sonnet-20240620", "onerouter"),
        ("claude-3.7-sonnet", "onellm"),
        ("deepseek-v3", "oneai"),
        ("gpt-4o-mini", "onellm"),
        ("gpt-4o-mini", "onetoken"),
    ]
    assert graph.candidates("kimi") == graph.offers("kimi")


def test_fallback_cycles_are_cut(graph: ProviderGraph) -> None:
    """A -> B -> A visits each model once."""
    graph.set_fallbacks({"kimi": ["glm-4"], "glm-4": ["kimi"]})
    assert graph.fallbacks("kimi") == ("glm-4",)
    assert graph.fallbacks("glm-4") == ("kimi",)


@pytest.mark.parametrize(
    ("fallbacks", "error"),
    [
        ({"gpt-4o": ["gpt-4o-mimi"]}, UnknownModelError),
        ({"gpt-4o-mimi": ["gpt-4o"]}, UnknownModelError),
        ({"gpt-4o": ["GPT-4o"]}, ConfigError),
        ({"gpt-4o": "gpt-4o-mini"}, ConfigError),
    ],
)
def test_bad_fallbacks_are_refused(
    graph: ProviderGraph, fallbacks: dict[str, object], error: type[Exception]
) -> None:
    """Fallbacks to unknown models, to the model itself, or as a bare string raise."""
    with pytest.raises(error):
        graph.set_fallbacks(fallbacks)  # type: ignore[arg-type]


def test_graph_configuration_errors() -> None:
    """No gateways, or two with one name, are refused."""
    with pytest.raises(ConfigError, match="at least one gateway"):
        ProviderGraph.from_catalogs([])
    with pytest.raises(ConfigError, match="unique"):
        ProviderGraph.from_catalogs([Gateway.onellm("k"), Gateway.onellm("k2")])


def _synthetic_graph(n: int) -> ProviderGraph:
    offers = [Offer(f"model-{i}", f"Model-{i}", 0.1 + i % 7, 0.2 + i % 5, 8192) for i in range(n)]
    gw = Gateway.openai_compatible("synthetic", "http://127.0.0.1:1/v1", "k", offers=offers)
    graph = ProviderGraph.from_catalogs([gw], fallbacks={"model-5": ["model-7", "model-3"]})
    assert len(graph) == n
    return graph


def _lines_executed(call: Callable[[], object]) -> int:
    """How many Python lines run during ``call()``: a measure of work that is not time."""
    count = 0

    def tracer(frame: object, event: str, arg: object) -> object:
        nonlocal count
        if event == "line":
            count += 1
        return tracer

    call()  # warm the canonicalizer's memo so both graphs are measured the same way
    sys.settrace(tracer)  # type: ignore[arg-type]
    try:
        call()
    finally:
        sys.settrace(None)
    return count


_OVERRIDES: Final = {"model-5": ("model-3",)}

LOOKUPS: dict[str, Callable[[ProviderGraph], object]] = {
    "offers-canonical": lambda g: g.offers("model-5"),
    "offers-other-case": lambda g: g.offers("MODEL-5"),
    "offers-normalised": lambda g: g.offers("vendor/MODEL-5"),
    "candidates-with-fallbacks": lambda g: g.candidates("model-5"),
    "tiers-with-fallbacks": lambda g: g.tiers("model-5"),
    "tiers-with-overrides": lambda g: g.tiers("model-5", _OVERRIDES),
    "offer-by-key": lambda g: g.offer("synthetic", "Model-5"),
    "by-gateway-model": lambda g: g.by_gateway_model("Model-5"),
    "resolve-gateway-id": lambda g: g.resolve("Model-5"),
}


@pytest.mark.parametrize("lookup", LOOKUPS.values(), ids=LOOKUPS.keys())
def test_lookup_cost_does_not_grow_with_the_catalog(lookup: Callable[[ProviderGraph], object]) -> None:
    """A lookup runs the same number of lines in a graph of 10 offers and one of 10,000."""
    small, large = _synthetic_graph(10), _synthetic_graph(10_000)
    assert lookup(small) == lookup(large)
    assert _lines_executed(lambda: lookup(small)) == _lines_executed(lambda: lookup(large))


def _big_listing(n: int, price: str) -> bytes:
    entries = [{"id": f"vendor/m-{i}", "pricing": {"prompt": price, "completion": price}} for i in range(n)]
    return json.dumps({"data": entries}).encode()


@contextlib.asynccontextmanager
async def _listing_server(*bodies: bytes) -> AsyncIterator[ProviderGraph]:
    """A loopback server answering /v1/models with each body in turn, and a graph of its gateway."""
    left = list(bodies)

    async def models(request: web.Request) -> web.Response:
        return web.Response(body=left.pop(0), content_type="application/json")

    app = web.Application()
    app.router.add_get("/v1/models", models)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        gw = Gateway.openai_compatible(
            "big",
            f"http://127.0.0.1:{port}/v1",
            "k",
            offers=[Offer("m-1", "vendor/m-1", input_price=9.0, output_price=9.0, context_window=4096)],
            models_path="/models",
        )
        yield ProviderGraph.from_catalogs([gw])
    finally:
        await runner.cleanup()


async def test_a_large_listing_is_merged_off_the_loop_and_a_second_one_patched() -> None:
    """6,000 entries take the worker-thread path; a refresh that only moves prices updates every price."""
    async with _listing_server(_big_listing(6_000, "0.000001"), _big_listing(6_000, "0.000002")) as graph:
        report = await graph.refresh()
        assert report.fetched == ("big",), report
        first = graph.version
        assert len(graph) == 6_000 and graph.offer("big", "vendor/m-5999").input_price == 1.0
        (m1,) = graph.offers("m-1")
        assert (m1.price_source, m1.context_window) == (PriceSource.LIVE, 4096), "laid over the offer"
        await graph.refresh(force=True)
    assert graph.version > first
    assert {o.input_price for o in graph} == {2.0}
    assert graph.resolve("vendor/m-17") == "m-17" and graph.offers("M-17")[0].gateway_model == "vendor/m-17"


async def test_a_change_made_while_a_large_listing_merges_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A price set while the worker thread assembles the index is in the index that wins."""
    real = asyncio.to_thread
    calls = 0
    async with _listing_server(_big_listing(6_000, "0.000001")) as graph:

        async def meanwhile(func: Callable[..., object], /, *args: object) -> object:
            nonlocal calls
            if getattr(func, "__name__", "") == "assemble":
                calls += 1  # the thread assembling the index: the user changes a price now
                graph.set_price("big", "vendor/m-1", 7.0, 7.0)
            return await real(func, *args)

        monkeypatch.setattr(asyncio, "to_thread", meanwhile)
        await graph.refresh()
    assert calls == 1
    assert graph.offer("big", "vendor/m-1").input_price == 7.0, "the user's price"
    assert graph.offer("big", "vendor/m-2").price_source is PriceSource.LIVE, "and the listing"


def test_every_capability_flag_is_kept_only_where_duplicate_rows_agree() -> None:
    """images, pdf, audio (any flag) survive a conflict only when every row says the same."""
    rows = [
        Offer("m", input_price=1.0, output_price=1.0, capabilities=Capabilities(images=True, pdf=False)),
        Offer("m", input_price=2.0, output_price=1.0, capabilities=Capabilities(images=False, pdf=False)),
    ]
    gw = Gateway.openai_compatible("g", "http://127.0.0.1:1/v1", "k", offers=rows)
    with pytest.warns(CatalogConflictWarning):
        caps = ProviderGraph.from_catalogs([gw]).offer("g", "m").capabilities
    assert (caps.images, caps.pdf, caps.audio) == (None, False, None)


# -- the chain walk and the fallback check, as a router uses them ----------------------------


def _tiers(
    graph: ProviderGraph, model: str, overrides: Mapping[str, tuple[str, ...]] | None = None
) -> list[str]:
    return [tier.model for tier in graph.tiers(model, overrides)]


def test_tiers_are_the_fallback_chain_with_each_models_offers(graph: ProviderGraph) -> None:
    """tiers(): the model, then its fallbacks depth-first, each once, with offers (candidates() grouped)."""
    graph.set_fallbacks(
        {"claude-3.5-sonnet-20240620": ["Sonnet-3.7", "gpt-4o-mini"], "Sonnet-3.7": ["deepseek-v3"]}
    )
    tiers = graph.tiers("claude-3-5-sonnet@20240620")
    assert [t.model for t in tiers] == [
        "claude-3.5-sonnet-20240620",
        "claude-3.7-sonnet",
        "deepseek-v3",
        "gpt-4o-mini",
    ]
    assert all(isinstance(t, ModelOffers) and t.offers == graph.offers(t.model) for t in tiers)
    assert tuple(o for t in tiers for o in t.offers) == graph.candidates("claude-3.5-sonnet-20240620")
    assert graph.tiers("kimi") == (ModelOffers("kimi", graph.offers("kimi")),)


def test_tier_overrides_replace_the_graphs_edges_for_the_models_they_name(graph: ProviderGraph) -> None:
    """Overrides (a router's own fallbacks) replace the graph's edges model by model; the rest still apply."""
    graph.set_fallbacks({"kimi": ["glm-4"], "glm-4": ["qwen-max"]})
    assert _tiers(graph, "kimi") == ["kimi", "glm-4", "qwen-max"]
    assert _tiers(graph, "kimi", {"kimi": ("deepseek-v3", "glm-4")}) == [
        "kimi",
        "deepseek-v3",
        "glm-4",
        "qwen-max",
    ]
    assert _tiers(graph, "kimi", {"glm-4": ()}) == ["kimi", "glm-4"]
    assert _tiers(graph, "kimi", {"glm-4": ("kimi",)}) == ["kimi", "glm-4"], "a cycle is cut"
    assert _tiers(graph, "kimi") == ["kimi", "glm-4", "qwen-max"], "the graph's own edges are unchanged"
    with pytest.raises(UnknownModelError, match="did you mean 'kimi'"):
        graph.tiers("kimmi")


def test_tiers_are_cached_per_graph_version_and_overrides_object(graph: ProviderGraph) -> None:
    """One call gives the same tuple until the graph changes; each overrides mapping has its own entry."""
    overrides = graph.validate_fallbacks({"deepseek-v3": ["gpt-4o-mini"]})
    first = graph.tiers("deepseek-v3", overrides)
    assert graph.tiers("deepseek-v3", overrides) is first
    assert graph.tiers("deepseek-v3", dict(overrides)) == first
    assert len(graph.tiers("deepseek-v3")) == 1, "no overrides: the graph's edges (none)"
    graph.set_price("onetoken", "gpt-4o-mini", 0.01, 0.02)
    again = graph.tiers("deepseek-v3", overrides)
    assert again is not first and again[1].offers[1].price_source is PriceSource.USER


def test_the_tier_cache_stays_bounded_when_every_call_brings_new_overrides(graph: ProviderGraph) -> None:
    """A caller passing a fresh overrides mapping each time does not grow the cache without end."""
    models = len(graph.models())
    for _ in range(models + 3_000):
        graph.tiers("kimi", {"kimi": ("glm-4",)})
    assert graph.tiers("kimi", {"kimi": ("glm-4",)})[1].model == "glm-4"
    assert len(graph._index.walks) <= models + 1_024


async def test_tiers_leave_out_a_fallback_no_gateway_serves_any_more() -> None:
    """A fallback only a past live listing had is skipped, never raised, once the next listing drops it."""
    listings = [{"data": [{"id": "vendor/new-model"}]}, {"data": []}]

    def handler(wire: WireRequest) -> Response:
        return Response(status=200, headers={}, content=json.dumps(listings.pop(0)).encode())

    gw = Gateway.openai_compatible(
        "g", "http://127.0.0.1:1/v1", "k", offers=[Offer("m")], models_path="/models"
    )
    graph = ProviderGraph.from_catalogs([gw], clock=FakeClock())
    transport = MockTransport(handler)
    await graph.refresh(transport)
    graph.set_fallbacks({"m": ["new-model"]})
    overrides = graph.validate_fallbacks({"m": ["new-model"]})
    assert _tiers(graph, "m") == _tiers(graph, "m", overrides) == ["m", "new-model"]
    await graph.refresh(transport, force=True)
    assert _tiers(graph, "m") == _tiers(graph, "m", overrides) == ["m"]
    assert graph.candidates("m") == graph.offers("m")


def test_validate_fallbacks_resolves_and_changes_nothing(graph: ProviderGraph) -> None:
    """validate_fallbacks() gives canonical ids, repeats dropped, read-only; the graph stays as it was."""
    version = graph.version
    resolved = graph.validate_fallbacks(
        {"claude-3-5-sonnet@20240620": ["Sonnet-3.7", "GPT-4o-mini", "gpt-4o-mini"]}
    )
    assert resolved == {"claude-3.5-sonnet-20240620": ("claude-3.7-sonnet", "gpt-4o-mini")}
    with pytest.raises(TypeError):
        resolved["x"] = ()  # type: ignore[index]
    assert graph.version == version and graph.fallbacks("claude-3.5-sonnet-20240620") == ()
    assert graph.validate_fallbacks({}) == {}


@pytest.mark.parametrize(
    ("fallbacks", "error", "match"),
    [
        ({"gpt-4o": ["gpt-4o-mimi"]}, UnknownModelError, "did you mean 'gpt-4o-mini'"),
        ({"gpt-4o-mimi": ["gpt-4o"]}, UnknownModelError, "gpt-4o-mimi"),
        ({"gpt-4o": ["GPT-4o"]}, ConfigError, "lists itself as its own fallback"),
        ({"gpt-4o": "gpt-4o-mini"}, ConfigError, "not the string 'gpt-4o-mini'"),
        ([("gpt-4o", ["gpt-4o-mini"])], ConfigError, "must map a model to a list of models"),
        ({"gpt-4o": 42}, ConfigError, "must be a list of model ids"),
        ({"gpt-4o": [["gpt-4o-mini"]]}, ConfigError, "must be a list of model ids"),
        ({"gpt-4o": {"gpt-4o-mini"}}, ConfigError, "must be a list of model ids"),
        ({7: ["gpt-4o-mini"]}, ConfigError, "a model id is a str"),
        ({"gpt-4o-mini": ["gpt-4o"], "GPT-4o-mini": ["deepseek-v3"]}, ConfigError, "'gpt-4o-mini' twice"),
    ],
)
def test_validate_and_set_fallbacks_refuse_the_same_things(
    graph: ProviderGraph, fallbacks: Any, error: type[Exception], match: str
) -> None:
    """One check for graph and router: each bad fallbacks raises the same error, and nothing is set."""
    with pytest.raises(error, match=match):
        graph.validate_fallbacks(fallbacks)
    version = graph.version
    with pytest.raises(error, match=match):
        graph.set_fallbacks(fallbacks)
    assert (
        graph.version == version and graph.fallbacks("gpt-4o") == () and graph.fallbacks("gpt-4o-mini") == ()
    )
