"""The shipped catalog snapshots agree with the gateways' own documents."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from switchyard.providers import CatalogError, PriceSource
from switchyard.providers._catalog import parse_canonical, snapshot

# OneLLM's document, section "Models", in its order (shared/seeds/000).
ONELLM_IDS = [
    "GPT-5",
    "GPT-5-Mini",
    "GPT-5-Nano",
    "GPT-5-Chat-Latest",
    "GPT-4.1",
    "GPT-4.1-Mini",
    "GPT-4.1-Nano",
    "GPT-o3",
    "GPT-o3-pro",
    "GPT-o3-DeepResearch",
    "GPT-o3-Mini",
    "GPT-o4-mini",
    "GPT-4o",
    "GPT-4o-mini",
    "GPT-o1",
    "GPT-o1-Mini",
    "Opus-4",
    "Sonnet-4",
    "Haiku-3.5",
    "Opus-3",
    "Sonnet-3.7",
    "Haiku-3",
    "DeepSeek-Reasoner",
    "DeepSeek-Chat",
    "2.5-Flash-preview",
    "2.5-Pro-preview",
    "2.0-Flash",
    "2.0-Flash-lite",
    "1.5-Flash",
    "1.5-Flash-8B",
    "1.5-Pro",
    "Mistral-Medium-3",
    "Magistral-Medium",
    "Codestral",
    "Devstral-Medium",
    "Mistral-Saba",
    "Mistral-Large",
    "Pixtral-Large",
    "Ministral-8B-24.10",
    "Ministral-3B-24.10",
    "Mistral-Small-3.2",
    "Magistral-Small",
    "Devstral-Small",
    "Pixtral-12B",
    "Mistral-NeMo",
    "Mistral-7B",
    "Mixtral-8x7B",
    "Mixtral-8x22B",
]

# OneAI's "Available Models" table, row by row (shared/seeds/001).
ONEAI_ROWS = [
    ("deepseek-v4-pro", 128_000, 1.00, 4.00),
    ("deepseek-v4-flash", 128_000, 0.30, 1.20),
    ("deepseek-r1", 128_000, 0.80, 3.50),
    ("deepseek-v3", 128_000, 0.50, 2.19),
    ("deepseek-r1", 128_000, 0.55, 2.19),
    ("qwen-coder", 128_000, 0.40, 1.60),
    ("qwen-max", 32_000, 0.60, 2.40),
    ("kimi", 128_000, 0.40, 1.60),
    ("minimax-m1", 1_000_000, 0.35, 1.40),
    ("glm-4", 128_000, 0.30, 1.20),
]

GATEWAYS = ["onellm", "oneai", "onetoken", "onerouter"]


def test_onellm_snapshot_has_all_48_ids_in_document_order() -> None:
    """Every OneLLM id of its document is shipped, none added, none streaming, none priced."""
    offers = snapshot("onellm")
    assert [o.gateway_model for o in offers] == ONELLM_IDS
    assert len(offers) == 48
    assert all(o.capabilities.streaming is False for o in offers)
    assert all(o.price_source is PriceSource.UNKNOWN and o.input_price is None for o in offers)


def test_oneai_snapshot_is_its_table_exactly() -> None:
    """Every OneAI row is shipped with its published prices and context window, duplicate included."""
    offers = snapshot("oneai")
    assert [(o.gateway_model, o.context_window, o.input_price, o.output_price) for o in offers] == ONEAI_ROWS
    assert {o.price_source for o in offers} == {PriceSource.PUBLISHED}
    assert all(o.capabilities.streaming for o in offers)


def test_onetoken_search_models_are_flagged() -> None:
    """Onetoken's search models have web search and drop temperature; gpt-4o-mini does not."""
    offers = {o.gateway_model: o for o in snapshot("onetoken")}
    assert set(offers) == {"gpt-4o-mini", "gpt-4o-search-preview", "gpt-4o-mini-search-preview"}
    for name in ("gpt-4o-search-preview", "gpt-4o-mini-search-preview"):
        caps = offers[name].capabilities
        assert caps.web_search is True
        assert "temperature" in caps.unsupported_params
    assert offers["gpt-4o-mini"].capabilities.web_search is None
    assert not offers["gpt-4o-mini"].capabilities.unsupported_params


def test_onerouter_reference_price_names_its_source() -> None:
    """OneRouter's documented model carries a reference price with its source named."""
    (offer,) = snapshot("onerouter")
    assert offer.gateway_model == "claude-3-5-sonnet@20240620"
    assert offer.price_source is PriceSource.REFERENCE
    assert offer.price_reference and "Anthropic" in offer.price_reference
    assert (offer.input_price, offer.output_price) == (3.0, 15.0)


@pytest.mark.parametrize("name", GATEWAYS)
def test_prices_are_honest(name: str) -> None:
    """Only OneAI publishes; a reference names its source; an unknown price is None, never 0."""
    for offer in snapshot(name):
        assert offer.gateway == name
        if offer.price_source is PriceSource.UNKNOWN:
            assert offer.input_price is None and offer.output_price is None
        else:
            assert offer.input_price is not None and offer.output_price is not None
        if offer.price_source is PriceSource.PUBLISHED:
            assert name == "oneai"
        if offer.price_source is PriceSource.REFERENCE:
            assert offer.price_reference
        assert offer.price_source not in (PriceSource.LIVE, PriceSource.USER)


def test_only_oneai_publishes_prices() -> None:
    """Published prices come from OneAI alone."""
    published = {n for n in GATEWAYS for o in snapshot(n) if o.price_source is PriceSource.PUBLISHED}
    assert published == {"oneai"}


def _canonical(aliases: dict[str, str], notes: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "models": {"m": {"vendor": "V"}},
        "moving_aliases": ["deepseek-chat"],
        "notes": notes or {},
        "aliases": aliases,
    }


@pytest.mark.parametrize(
    ("aliases", "notes", "rule"),
    [
        ({"deepseek-chat": "deepseek-v3"}, None, "moving_aliases"),
        ({"DeepSeek-V3": "deepseek-chat"}, None, "moving_aliases"),
        ({"claude-3-5-sonnet@20240620": "claude-3.5-sonnet"}, None, "snapshots"),
        ({"claude-3-5-sonnet@20240620": "claude-3.5-sonnet-20241022"}, None, "snapshots"),
        ({"gpt-4o": "gpt-4o-20240806"}, None, "snapshots"),
    ],
)
def test_canonical_data_refuses_aliases_that_break_its_rules(
    aliases: dict[str, str], notes: dict[str, str] | None, rule: str
) -> None:
    """The loader refuses a joined moving alias, a merged snapshot, or an unnoted undated-to-dated alias."""
    with pytest.raises(CatalogError, match=rule):
        parse_canonical(_canonical(aliases, notes))


def test_canonical_data_takes_aliases_that_keep_its_rules() -> None:
    """A respelled snapshot and an undated id pointed at a snapshot with a note are accepted."""
    data = parse_canonical(
        _canonical(
            {"claude-3-5-sonnet-v1@2024-06-20": "claude-3.5-sonnet-20240620", "GPT-4o": "gpt-4o-20240806"},
            {"gpt-4o": "OpenAI's models page: gpt-4o points to gpt-4o-2024-08-06."},
        )
    )
    assert data.canonicalizer("claude-3-5-sonnet-v1@20240620") == "claude-3.5-sonnet-20240620"
    assert data.canonicalizer("gpt-4o") == "gpt-4o-20240806"
    assert data.moving_aliases == {"deepseek-chat"}


def test_shipped_canonical_data_states_its_rules() -> None:
    """canonical.json writes out the snapshot and moving-alias rules the loader applies."""
    data = json.loads(
        resources.files("switchyard.providers").joinpath("catalogs", "canonical.json").read_text()
    )
    assert {"snapshots", "moving_aliases"} <= set(data["rules"])
    assert {"deepseek-chat", "deepseek-reasoner"} <= set(data["moving_aliases"])
