"""Canonical ids: one normalisation joins the same model across gateways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from switchyard.providers import ConfigError, Gateway, ProviderGraph, UnknownModelError
from switchyard.providers._canonical import Canonicalizer
from switchyard.providers._catalog import known_models, moving_aliases, shipped_canonicalizer, snapshot

GATEWAYS = ["onellm", "oneai", "onetoken", "onerouter"]
SHIPPED_IDS = [(g, o.gateway_model) for g in GATEWAYS for o in snapshot(g)]


@pytest.mark.parametrize(("gateway", "model_id"), SHIPPED_IDS)
def test_every_shipped_id_reaches_a_known_canonical_model(gateway: str, model_id: str) -> None:
    """Each shipped gateway id normalises to a canonical model listed in canonical.json."""
    canon = shipped_canonicalizer()
    assert canon(model_id) in known_models(), f"{gateway}:{model_id} -> {canon(model_id)}"


def test_every_known_model_is_served_and_is_a_fixed_point() -> None:
    """No canonical model is dead data, and canonical ids normalise to themselves."""
    canon = shipped_canonicalizer()
    served = {canon(m) for _, m in SHIPPED_IDS}
    assert served == set(known_models())
    for model in known_models():
        assert canon(model) == model


def test_alias_targets_are_known_models() -> None:
    """Every alias points at a canonical model that exists."""
    assert set(shipped_canonicalizer().aliases.values()) <= set(known_models())


@pytest.mark.parametrize(
    ("model_id", "canonical"),
    [
        ("GPT-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("claude-3-5-sonnet@20240620", "claude-3.5-sonnet-20240620"),
        ("claude-3-5-sonnet-20240620", "claude-3.5-sonnet-20240620"),
        ("anthropic/claude-3.5-sonnet@2024-06-20", "claude-3.5-sonnet-20240620"),
        ("anthropic/claude-3.5-sonnet", "claude-3.5-sonnet"),
        ("Sonnet-3.7", "claude-3.7-sonnet"),
        ("claude-3-7-sonnet-20250219", "claude-3.7-sonnet-20250219"),
        ("Haiku-3.5", "claude-3.5-haiku"),
        ("Opus-4", "claude-opus-4"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("GPT-o3-Mini", "o3-mini"),
        ("GPT-o3-DeepResearch", "o3-deep-research"),
        ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini-20240718"),
        ("gpt-4o@20240513", "gpt-4o-20240513"),
        ("DeepSeek-Chat", "deepseek-chat"),
        ("DeepSeek-Reasoner", "deepseek-reasoner"),
        ("2.0-Flash-lite", "gemini-2.0-flash-lite"),
        ("Ministral-8B-24.10", "ministral-8b-2410"),
        ("  Mistral-Large ", "mistral-large"),
    ],
)
def test_joins(model_id: str, canonical: str) -> None:
    """Spellings of one model from different gateways meet at one canonical id."""
    assert shipped_canonicalizer()(model_id) == canonical


@pytest.mark.parametrize(
    ("one", "other"),
    [
        ("claude-3-5-sonnet@20240620", "claude-3-5-sonnet-20241022"),
        ("gpt-4o-2024-05-13", "gpt-4o"),
        ("claude-3-5-sonnet@20240620", "claude-3.5-sonnet"),
        ("gpt-4o-2024-05-13", "gpt-4o-2024-08-06"),
    ],
)
def test_pinned_snapshots_are_never_merged(one: str, other: str) -> None:
    """A pinned snapshot is its own canonical model: not another date's, not the undated name's."""
    canon = shipped_canonicalizer()
    assert canon(one) != canon(other)


def test_a_request_for_another_snapshot_is_not_routed_to_onerouters() -> None:
    """Asking for Claude 3.5 Sonnet 20241022 does not resolve to OneRouter's pinned 20240620."""
    graph = ProviderGraph.from_catalogs([Gateway.onerouter("k")])
    assert graph.resolve("claude-3-5-sonnet@20240620") == "claude-3.5-sonnet-20240620"
    with pytest.raises(UnknownModelError):
        graph.resolve("claude-3-5-sonnet-20241022")


@pytest.mark.parametrize(
    ("vendor_alias", "versioned"), [("DeepSeek-Chat", "deepseek-v3"), ("DeepSeek-Reasoner", "deepseek-r1")]
)
def test_deepseek_moving_aliases_follow_one_rule(vendor_alias: str, versioned: str) -> None:
    """deepseek-chat and deepseek-reasoner alike are their own canonical models, joined to no version."""
    canon = shipped_canonicalizer()
    assert canon(vendor_alias) == vendor_alias.casefold()
    assert canon(vendor_alias) != canon(versioned)
    assert vendor_alias.casefold() in moving_aliases()


def test_user_aliases_lay_over_the_shipped_table() -> None:
    """Extra aliases override shipped ones without touching the shipped table."""
    canon = shipped_canonicalizer().with_aliases({"DeepSeek-Chat": "deepseek-v3"})
    assert canon("DeepSeek-Chat") == "deepseek-v3"
    assert shipped_canonicalizer()("DeepSeek-Chat") == "deepseek-chat"


@pytest.mark.parametrize(
    ("aliases", "match"),
    [({"a": "b", "b": "c"}, "itself an alias"), ({"a": "Not-Canonical"}, "canonical form")],
)
def test_alias_table_must_be_flat_and_canonical(aliases: dict[str, str], match: str) -> None:
    """A chained alias or a non-canonical target is refused."""
    with pytest.raises(ConfigError, match=match):
        Canonicalizer(aliases)


@given(st.text(alphabet="abcXYZ0123456789-.@/ ", max_size=30))
def test_normalisation_is_idempotent(model_id: str) -> None:
    """Normalising twice gives what normalising once gives."""
    canon = shipped_canonicalizer()
    assert canon(canon(model_id)) == canon(model_id)
