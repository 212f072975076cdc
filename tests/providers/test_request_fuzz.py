"""Fuzzing ChatRequest.create: anything is either a ValidationError or a strict-JSON body on every gateway."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from switchyard.providers import ChatRequest, Gateway, Offer, ProviderGraph, ValidationError
from switchyard.providers.wire import Wire, adapter_for

GATEWAYS = ("onellm", "oneai", "onetoken", "onerouter")


class Opaque:
    """An object JSON cannot carry."""

    def __repr__(self) -> str:
        return "Opaque()"


@pytest.fixture(scope="module")
def targets() -> list[tuple[Gateway, Offer]]:
    """One offer of each built-in gateway, plus a search model that drops sampling parameters."""
    graph = ProviderGraph.from_catalogs([Gateway.builtin(n, f"key-{n}-123456") for n in GATEWAYS])
    offers = [o for m in graph.models() for o in graph.offers(m)]
    chosen = {o.gateway: o for o in reversed(offers)}  # the first offer of each gateway
    chosen["search"] = next(
        o for o in offers if o.capabilities.web_search and o.capabilities.unsupported_params
    )
    assert set(chosen) == {*GATEWAYS, "search"}
    return [(graph.gateway(o.gateway or ""), o) for o in chosen.values()]


# Text with everything in it, lone surrogates included; and text without them.
TEXT = st.text(alphabet=st.characters(exclude_categories=()), max_size=6)
GOOD_TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=6)
NAMES = ("f", "g", "get_weather")


def _past_str_limit() -> int:
    """An int too long for str() (Python's 4300-digit limit), so json cannot even write it."""
    return 10**5000


HUGE = st.one_of(
    st.sampled_from([10**400, -(10**400), 2**63, 2**64, -(2**63) - 1]), st.builds(_past_str_limit)
)


def _cycle() -> dict[str, Any]:
    value: dict[str, Any] = {"type": "object"}
    value["items"] = [value]
    return value


def _deep() -> list[Any]:
    value: list[Any] = []
    for _ in range(1000):
        value = [value]
    return value


# Strict JSON; and JSON-ish values with anything in them: sets, bytes, objects, NaN, Infinity,
# ints past int64 or past str(), lone surrogates, non-str keys, cycles, 1,000-deep nesting.
JSON = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**63), 2**64 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        GOOD_TEXT,
    ),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(GOOD_TEXT, inner, max_size=3)),
    max_leaves=8,
)
JSON_OBJECT = st.dictionaries(GOOD_TEXT, JSON, max_size=3)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    HUGE,
    st.floats(),  # nan and both infinities included
    TEXT,
    st.binary(max_size=3),
    st.builds(Opaque),
    st.builds(_cycle),
    st.builds(_deep),
)
KEY = st.one_of(TEXT, TEXT, st.integers(), st.none(), st.binary(max_size=2))
ANYTHING = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(KEY, inner, max_size=3),
        st.sets(st.one_of(st.integers(), TEXT), max_size=2),
        st.frozensets(st.integers(), max_size=2),
    ),
    max_leaves=8,
)
ANY_OBJECT = st.one_of(st.dictionaries(KEY, ANYTHING, max_size=3), ANYTHING)


def _tool(name: st.SearchStrategy[Any], value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries(
        {
            "type": st.just("function"),
            "function": st.fixed_dictionaries(
                {"name": name}, optional={"parameters": value, "description": value}
            ),
        }
    )


def _messages(text: st.SearchStrategy[Any], value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists of plain, tool, tool-calling and multi-part messages, built from ``text`` and ``value``."""
    part = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": text}),
        st.fixed_dictionaries(
            {"type": st.sampled_from(["image_url", "input_audio", "file"])},
            optional={"image_url": value, "input_audio": value, "file": value},
        ),
    )
    content = st.one_of(text, st.lists(part, min_size=1, max_size=3))
    plain = st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant"]), "content": content},
        optional={"name": text},
    )
    tool = st.fixed_dictionaries({"role": st.just("tool"), "content": content, "tool_call_id": text})
    calls = st.fixed_dictionaries(
        {
            "role": st.just("assistant"),
            "content": st.none(),
            "tool_calls": st.lists(value, min_size=1, max_size=2),
        }
    )
    return st.lists(st.one_of(plain, plain, tool, calls), min_size=1, max_size=3)


def _number(low: float, high: float) -> tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]:
    good = st.one_of(st.floats(low, high), st.integers(int(max(low, -1e6)), int(min(high, 1e6))))
    return good, st.one_of(st.floats(), st.integers(), HUGE, ANYTHING)


# Per parameter: (well-formed values, values with anything anywhere in them).
PARAMS: dict[str, tuple[st.SearchStrategy[Any], st.SearchStrategy[Any]]] = {
    "temperature": _number(0, 2),
    "top_p": _number(0, 1),
    "max_tokens": (st.integers(1, 2**63 - 1), st.one_of(st.integers(), HUGE, ANYTHING)),
    "stop": (
        st.one_of(GOOD_TEXT.filter(bool), st.lists(GOOD_TEXT.filter(bool), min_size=1, max_size=4)),
        st.one_of(TEXT, st.lists(TEXT, max_size=5), ANYTHING),
    ),
    "seed": (st.integers(-(2**63), 2**63 - 1), st.one_of(HUGE, ANYTHING)),
    "frequency_penalty": _number(-2, 2),
    "presence_penalty": _number(-2, 2),
    "tools": (
        st.lists(_tool(st.sampled_from(NAMES), JSON_OBJECT), min_size=1, max_size=2),
        st.one_of(st.lists(_tool(st.one_of(TEXT, ANYTHING), ANY_OBJECT), min_size=1, max_size=2), ANYTHING),
    ),
    "tool_choice": (
        st.one_of(
            st.sampled_from(["none", "auto", "required"]),
            st.fixed_dictionaries(
                {
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries({"name": st.sampled_from(NAMES)}),
                }
            ),
        ),
        st.one_of(
            st.fixed_dictionaries(
                {
                    "type": st.just("function"),
                    "function": st.fixed_dictionaries({"name": st.one_of(TEXT, ANYTHING)}),
                },
                optional={"extra": ANYTHING},
            ),
            ANYTHING,
        ),
    ),
    "response_format": (
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "json_object", "json_schema"])},
            optional={"json_schema": JSON_OBJECT},
        ),
        st.one_of(st.fixed_dictionaries({"type": TEXT}, optional={"json_schema": ANY_OBJECT}), ANYTHING),
    ),
    "web_search_options": (JSON_OBJECT, ANY_OBJECT),
    "user": (GOOD_TEXT, st.one_of(TEXT, ANYTHING)),
    "max_cost_usd": _number(0, math.inf),
}
GOOD_MESSAGES = _messages(GOOD_TEXT, JSON)
BAD_MESSAGES = st.one_of(
    _messages(st.one_of(TEXT, ANYTHING), ANYTHING),
    st.lists(
        st.dictionaries(st.sampled_from(["role", "content", "name", "tool_call_id", "tool_calls"]), ANYTHING),
        min_size=1,
        max_size=3,
    ),
    ANYTHING,
)


@st.composite
def calls(draw: st.DrawFn) -> tuple[Any, Any, dict[str, Any]]:
    """A well-formed call with, most of the time, one argument (model, messages or a parameter) spoilt."""
    model: Any = "gpt-4o-mini"
    messages = draw(GOOD_MESSAGES)
    params = draw(st.fixed_dictionaries({}, optional={name: good for name, (good, _) in PARAMS.items()}))
    spoil = draw(st.sampled_from([None, None, None, "model", "messages", "messages", *PARAMS]))
    if spoil == "model":
        model = draw(st.one_of(TEXT, ANYTHING))
    elif spoil == "messages":
        messages = draw(BAD_MESSAGES)
    elif spoil is not None:
        params[spoil] = draw(PARAMS[spoil][1])
    return model, messages, params


def _refuse(constant: str) -> None:
    raise AssertionError(f"the body holds {constant}, which strict JSON does not have")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(call=calls())
def test_any_input_is_a_validation_error_or_strict_json_on_every_gateway(
    targets: list[tuple[Gateway, Offer]], call: tuple[Any, Any, dict[str, Any]]
) -> None:
    """No input gets past create() unless every built-in gateway's body for it is strict JSON."""
    model, messages, params = call
    try:
        request = ChatRequest.create(model, messages, **params)
    except ValidationError as exc:
        event(f"refused ({exc.param})")
        return
    event("accepted")
    for gateway, offer in targets:
        adapter = adapter_for(gateway)
        if adapter.unmet(request, offer):
            continue  # the router never sends it there; the adapter refuses (tested elsewhere)
        for stream in (False, True) if gateway.wire is Wire.OPENAI else (False,):
            body = adapter.build(request, offer, gateway, stream=stream).body
            decoded = json.loads(body, parse_constant=_refuse)
            json.dumps(decoded, allow_nan=False)
