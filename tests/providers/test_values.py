"""The values: Tier, Offer, Capabilities, Gateway and Secret."""

from __future__ import annotations

import attrs
import pytest
from switchyard.providers import Capabilities, ConfigError, Gateway, Offer, PriceSource, Secret, Tier
from switchyard.providers.wire import Wire


def test_tier_presets_are_oneais_published_numbers() -> None:
    """Tier.FREE and Tier.PRO carry OneAI's published RPM, TPM and concurrency."""
    assert Tier(rpm=20, tpm=200_000, concurrency=2) == Tier.FREE
    assert Tier(rpm=200, tpm=2_000_000, concurrency=10) == Tier.PRO
    assert Tier().unlimited and not Tier.FREE.unlimited


@pytest.mark.parametrize(
    "kwargs", [{"rpm": 0}, {"tpm": -5}, {"concurrency": 1.5}, {"rpm": True}, {"rpm": "20"}]
)
def test_tier_rejects_non_positive_or_non_integer_limits(kwargs: dict[str, object]) -> None:
    """A tier limit must be a positive whole number or None."""
    with pytest.raises(ConfigError, match="Tier"):
        Tier(**kwargs)  # type: ignore[arg-type]


def test_offer_defaults_gateway_model_and_price_source() -> None:
    """gateway_model defaults to model; a priced offer is 'user', an unpriced one 'unknown'."""
    priced = Offer("gpt-4o-mini", input_price=0.15, output_price=0.6)
    assert priced.gateway_model == "gpt-4o-mini"
    assert priced.price_source is PriceSource.USER
    unpriced = Offer("gpt-4o-mini", "GPT-4o-mini")
    assert unpriced.gateway_model == "GPT-4o-mini"
    assert unpriced.price_source is PriceSource.UNKNOWN
    assert unpriced.cost_usd(1000, 1000) is None


def test_offer_cost_is_per_million_tokens() -> None:
    """cost_usd multiplies tokens by USD per million tokens."""
    offer = Offer("m", input_price=1.0, output_price=4.0)
    assert offer.cost_usd(1_000_000, 500_000) == pytest.approx(3.0)
    assert Offer("free", input_price=0, output_price=0).cost_usd(10, 10) == 0.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_price": 1.0}, "both"),
        ({"input_price": -1.0, "output_price": 1.0}, "non-negative"),
        ({"input_price": float("nan"), "output_price": 1.0}, "finite"),
        ({"input_price": "1", "output_price": 1.0}, "number"),
        ({"input_price": 1.0, "output_price": 2.0, "price_source": "reference"}, "name its source"),
        ({"input_price": 1.0, "output_price": 2.0, "price_source": "unknown"}, "must not carry"),
        ({"price_source": "published"}, "needs both prices"),
        ({"price_source": "guess"}, "price_source must be one of"),
        ({"context_window": 0}, "context_window"),
        ({"context_window": 12.5}, "context_window"),
    ],
)
def test_offer_rejects_inconsistent_values(kwargs: dict[str, object], match: str) -> None:
    """An offer with a half price, a bad number, or a source that contradicts it is refused."""
    with pytest.raises(ConfigError, match=match):
        Offer("m", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("model", ["", "   "])
def test_offer_needs_a_model_id(model: str) -> None:
    """An empty model id is refused."""
    with pytest.raises(ConfigError, match="model"):
        Offer(model)


def test_offer_evolves_and_serialises() -> None:
    """attrs.evolve keeps validation, and to_json has exactly the catalog keys."""
    offer = attrs.evolve(Offer("m", input_price=1, output_price=2), gateway="g")
    assert offer.gateway == "g"
    assert set(offer.to_json()) == {
        "gateway",
        "gateway_model",
        "model",
        "input_price",
        "output_price",
        "price_source",
        "context_window",
        "capabilities",
    }
    with pytest.raises(ConfigError):
        attrs.evolve(offer, input_price=None)


def test_capabilities_are_tristate_and_round_trip() -> None:
    """Capabilities take True/False/None only and survive to_json/from_json."""
    caps = Capabilities(streaming=True, web_search=True, unsupported_params={"temperature"})
    assert Capabilities.from_json(caps.to_json()) == caps
    with pytest.raises(ConfigError):
        Capabilities(streaming="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown capabilities"):
        Capabilities.from_json({"vision": True})
    with pytest.raises(ConfigError, match="collection"):
        Capabilities(unsupported_params="temperature")


@pytest.mark.parametrize(
    ("factory", "base_url", "chat_path", "wire", "models_path"),
    [
        (Gateway.onellm, "https://onellm.dev", "/api", Wire.ONELLM, None),
        (Gateway.oneai, "https://api.oneai.io/v1", "/chat/completions", Wire.OPENAI, None),
        (Gateway.onetoken, "https://onetoken.one/v1", "/chat/completions", Wire.OPENAI, None),
        (Gateway.onerouter, "https://llm.onerouter.pro/v1", "/chat/completions", Wire.OPENAI, "/models"),
    ],
)
def test_builtin_gateways_follow_their_documents(
    factory: object, base_url: str, chat_path: str, wire: Wire, models_path: str | None
) -> None:
    """Each built-in gateway has its documented base URL, chat path and wire format."""
    gw = factory("k")  # type: ignore[operator]
    assert (gw.base_url, gw.chat_path, gw.wire, gw.models_path) == (base_url, chat_path, wire, models_path)
    assert str(gw.chat_url) == base_url + chat_path
    assert gw.catalog == gw.name and gw.offers is None


def test_onellm_chat_path_is_configurable() -> None:
    """OneLLM's chat path can follow its OpenAPI file instead of its document."""
    gw = Gateway.onellm("k", base_url="http://127.0.0.1:9000/", chat_path="/v1/chat/completions")
    assert str(gw.chat_url) == "http://127.0.0.1:9000/v1/chat/completions"


def test_gateway_key_comes_from_argument_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key given wins; otherwise $<NAME>_API_KEY; otherwise none."""
    assert Gateway.oneai().api_key is None
    monkeypatch.setenv("ONEAI_API_KEY", "env-key-123")
    assert Gateway.oneai().api_key == Secret("env-key-123")
    assert Gateway.oneai("arg-key").api_key == Secret("arg-key")
    monkeypatch.setenv("MY_GW_API_KEY", "custom-env-key")
    custom = Gateway.openai_compatible("my-gw", "http://127.0.0.1:1/v1", None, offers=[Offer("m")])
    assert custom.api_key == Secret("custom-env-key")


def test_no_repr_shows_a_key() -> None:
    """Neither a Gateway's nor a Secret's repr, str or format shows the key."""
    key = "sk-very-secret-value-42"
    gw = Gateway.oneai(key, tier=Tier.PRO)
    for text in (
        repr(gw),
        str(gw),
        repr(gw.api_key),
        str(gw.api_key),
        f"{gw.api_key}",
        repr(attrs.asdict(gw)),
    ):
        assert key not in text
    assert gw.api_key is not None and gw.api_key.reveal() == key


@pytest.mark.parametrize("bad", ["", "two words", "line\nbreak", "tab\there"])
def test_gateway_rejects_keys_that_break_a_header(bad: str) -> None:
    """An empty key or one with whitespace is refused without echoing it."""
    with pytest.raises(ConfigError) as info:
        Gateway.oneai(bad)
    assert not bad.strip() or bad not in str(info.value)


@pytest.mark.parametrize(
    "url", ["ftp://example.com", "api.oneai.io/v1", "https://", "https://h/v1?x=1", "https://u:p@h/v1"]
)
def test_gateway_rejects_bad_base_urls(url: str) -> None:
    """A base URL must be http(s) with a host and nothing after the path."""
    with pytest.raises(ConfigError, match="base_url"):
        Gateway.oneai("k", base_url=url)


def test_openai_compatible_binds_its_offers() -> None:
    """A custom gateway's offers carry its name and it needs at least one."""
    gw = Gateway.openai_compatible(
        "local",
        "http://127.0.0.1:8080/v1",
        "k",
        offers=[Offer("llama-3-70b", input_price=0.5, output_price=0.7)],
    )
    assert gw.offers is not None and {o.gateway for o in gw.offers} == {"local"}
    with pytest.raises(ConfigError, match="at least one offer"):
        Gateway.openai_compatible("local", "http://127.0.0.1:8080/v1", "k", offers=[])
    with pytest.raises(ConfigError, match="gateway name"):
        Gateway.openai_compatible("bad name", "http://127.0.0.1:8080/v1", "k", offers=[Offer("m")])


def test_builtin_by_name_refuses_unknown_names() -> None:
    """Gateway.builtin knows exactly the four gateways."""
    assert Gateway.builtin("onerouter", "k").name == "onerouter"
    with pytest.raises(ConfigError, match="oneai, onetoken, onerouter"):
        Gateway.builtin("openai")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"chat_path": "api"}, "chat_path"),
        ({"chat_path": "/api?x=1"}, "chat_path"),
        ({"models_path": "models"}, "models_path"),
    ],
)
def test_gateway_paths_must_be_absolute_paths(kwargs: dict[str, str], field: str) -> None:
    """chat_path and models_path start with '/' and carry no query."""
    with pytest.raises(ConfigError, match=field):
        Gateway.openai_compatible("g", "http://127.0.0.1:1/v1", "k", offers=[Offer("m")], **kwargs)
