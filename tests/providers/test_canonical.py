"""Canonical ids: one normalisation joins the same model across gateways."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from providers import Canonicalizer, ConfigError, known_models, shipped_canonicalizer
from providers._catalog import snapshot

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
        ("claude-3-5-sonnet@20240620", "claude-3.5-sonnet"),
        ("claude-3-5-sonnet-20240620", "claude-3.5-sonnet"),
        ("anthropic/claude-3.5-sonnet", "claude-3.5-sonnet"),
        ("Sonnet-3.7", "claude-3.7-sonnet"),
        ("claude-3-7-sonnet-20250219", "claude-3.7-sonnet"),
        ("Haiku-3.5", "claude-3.5-haiku"),
        ("Opus-4", "claude-opus-4"),
        ("claude-sonnet-4-5", "claude-sonnet-4.5"),
        ("GPT-o3-Mini", "o3-mini"),
        ("GPT-o3-DeepResearch", "o3-deep-research"),
        ("openai/gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("DeepSeek-Chat", "deepseek-v3"),
        ("DeepSeek-Reasoner", "deepseek-reasoner"),
        ("2.0-Flash-lite", "gemini-2.0-flash-lite"),
        ("Ministral-8B-24.10", "ministral-8b-2410"),
        ("  Mistral-Large ", "mistral-large"),
    ],
)
def test_joins(model_id: str, canonical: str) -> None:
    """Spellings of one model from different gateways meet at one canonical id."""
    assert shipped_canonicalizer()(model_id) == canonical


def test_deepseek_reasoner_is_not_r1() -> None:
    """DeepSeek's 'deepseek-reasoner' alias left R1 in 2025, so it is not joined to deepseek-r1."""
    canon = shipped_canonicalizer()
    assert canon("DeepSeek-Reasoner") != canon("deepseek-r1")


def test_user_aliases_lay_over_the_shipped_table() -> None:
    """Extra aliases override shipped ones without touching the shipped table."""
    canon = shipped_canonicalizer().with_aliases({"DeepSeek-Chat": "deepseek-chat"})
    assert canon("DeepSeek-Chat") == "deepseek-chat"
    assert shipped_canonicalizer()("DeepSeek-Chat") == "deepseek-v3"


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
