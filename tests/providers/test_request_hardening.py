"""Every malformed call is a ValidationError from ChatRequest.create, before anything is sent."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from switchyard.providers import (
    ChatRequest,
    Gateway,
    MockTransport,
    Offer,
    ProviderGraph,
    Response,
    ValidationError,
    WireRequest,
)
from switchyard.providers.wire import adapter_for
from switchyard.router import Router

HI = [{"role": "user", "content": "hi"}]
LONE = "caf\udce9"  # what bytes.decode("utf-8", "surrogateescape") leaves for a Latin-1 byte


class Opaque:
    """An object JSON cannot carry."""


def _tool(name: str = "f", parameters: object = None) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def _cycle() -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object"}
    schema["properties"] = {"self": schema}
    return schema


def _deep(levels: int) -> list[Any]:
    value: list[Any] = []
    for _ in range(levels):
        value = [value]
    return value


def _user(content: object) -> list[dict[str, Any]]:
    return [{"role": "user", "content": content}]


# (messages, params, param, words the message must hold); one row per kind of input probing found.
CASES: list[Any] = [
    # A float parameter given an int too large for a float (OverflowError before).
    pytest.param(HI, {"temperature": 10**400}, "temperature", "integer of", id="huge-temperature"),
    pytest.param(HI, {"top_p": -(10**400)}, "top_p", "integer of", id="huge-top_p"),
    pytest.param(HI, {"max_cost_usd": 10**400}, "max_cost_usd", "integer of", id="huge-max_cost_usd"),
    pytest.param(HI, {"max_tokens": 10**400}, "max_tokens", "at most 2**63-1", id="huge-max_tokens"),
    pytest.param(HI, {"seed": 2**64}, "seed", "64-bit", id="huge-seed"),
    # Sets, bytes and objects (TypeError at encode time before).
    pytest.param(
        _user([{"type": "image_url", "image_url": {"url": b"\x89PNG"}}]),
        {},
        "messages",
        "messages[0].content[0].image_url.url is bytes",
        id="bytes-in-a-content-part",
    ),
    pytest.param(
        HI,
        {"tools": [_tool(parameters={"type": "object", "required": {"x"}})]},
        "tools",
        "tools[0].function.parameters.required is a set",
        id="set-in-tools",
    ),
    pytest.param(
        HI,
        {"response_format": {"type": "json_schema", "json_schema": {"schema": Opaque()}}},
        "response_format",
        "response_format.json_schema.schema is a Opaque object",
        id="object-in-response_format",
    ),
    pytest.param(
        HI,
        {"web_search_options": {"user_location": {1, 2}}},
        "web_search_options",
        "is a set",
        id="set-search",
    ),
    pytest.param(
        HI,
        {"tools": [_tool(parameters={1: "x"})]},
        "tools",
        "has a int key 1; JSON keys are strings",
        id="int-key-in-tools",
    ),
    # Lone surrogates (UnicodeEncodeError at encode time before).
    pytest.param(_user(LONE), {}, "messages", "messages[0].content has a lone surrogate", id="lone-content"),
    pytest.param(
        _user([{"type": "text", "text": LONE}]),
        {},
        "messages",
        "messages[0].content[0].text has a lone surrogate",
        id="lone-text-part",
    ),
    pytest.param(HI, {"stop": ["ok", LONE]}, "stop", "stop[1] has a lone surrogate", id="lone-stop"),
    pytest.param(HI, {"user": LONE}, "user", "user has a lone surrogate", id="lone-user"),
    pytest.param(
        HI,
        {"tools": [_tool(parameters={"description": LONE})]},
        "tools",
        "tools[0].function.parameters.description has a lone surrogate",
        id="lone-in-tools",
    ),
    pytest.param(
        [{"role": "user", "content": "hi", "name": LONE}],
        {},
        "messages",
        "messages[0].name has a lone surrogate",
        id="lone-name",
    ),
    pytest.param(
        [*HI, {"role": "tool", "content": "42", "tool_call_id": LONE}],
        {},
        "messages",
        "messages[1].tool_call_id has a lone surrogate",
        id="lone-tool_call_id",
    ),
    pytest.param(
        HI, {"response_format": {LONE: "x"}}, "response_format", "has a lone surrogate", id="lone-key"
    ),
    # Cycles and deep nesting (RecursionError before).
    pytest.param(
        HI,
        {"tools": [_tool(parameters=_cycle())]},
        "tools",
        "tools[0].function.parameters contains itself (at tools[0].function.parameters.properties.self)",
        id="cycle-in-tools",
    ),
    pytest.param(
        HI,
        {"response_format": {"type": "json_schema", "json_schema": _deep(1000)}},
        "response_format",
        "nests deeper than 64 levels",
        id="1000-deep-response_format",
    ),
    pytest.param(
        _user([{"type": "image_url", "image_url": _deep(1000)}]),
        {},
        "messages",
        "nests deeper than 64 levels",
        id="1000-deep-content-part",
    ),
    # NaN and Infinity anywhere (invalid JSON on the wire before).
    pytest.param(
        HI,
        {"tools": [_tool(parameters={"properties": {"x": {"maximum": float("inf")}}})]},
        "tools",
        "tools[0].function.parameters.properties.x.maximum is inf; JSON has no NaN or Infinity",
        id="inf-in-tools",
    ),
    pytest.param(
        HI,
        {"response_format": {"type": "json_schema", "json_schema": {"x": float("nan")}}},
        "response_format",
        "response_format.json_schema.x is nan",
        id="nan-in-response_format",
    ),
    pytest.param(
        _user([{"type": "input_audio", "input_audio": {"seconds": float("-inf")}}]),
        {},
        "messages",
        "messages[0].content[0].input_audio.seconds is -inf",
        id="inf-in-content-part",
    ),
    pytest.param(
        HI,
        {
            "tools": [_tool()],
            "tool_choice": {"type": "function", "function": {"name": "f", "x": float("nan")}},
        },
        "tool_choice",
        "tool_choice.function.x is nan",
        id="nan-in-tool_choice",
    ),
    # A tool_choice naming no tool of tools (sent, and refused upstream, before).
    pytest.param(
        HI,
        {
            "tools": [_tool("get_weather")],
            "tool_choice": {"type": "function", "function": {"name": "get_wether"}},
        },
        "tool_choice",
        "names the tool 'get_wether', which is not in tools; did you mean 'get_weather'?",
        id="tool_choice-names-no-tool",
    ),
    pytest.param(
        HI, {"tool_choice": "none"}, "tool_choice", "tool_choice needs tools", id="tool_choice-alone"
    ),
    # tool_call_id on a message that is not a tool message (sent before).
    pytest.param(
        [{"role": "user", "content": "hi", "tool_call_id": "call_1"}],
        {},
        "messages",
        "messages[0] is a user message with a 'tool_call_id'",
        id="tool_call_id-on-a-user-message",
    ),
]


@pytest.mark.parametrize(("messages", "params", "param", "words"), CASES)
def test_malformed_input_is_a_validation_error(
    messages: Any, params: dict[str, Any], param: str, words: str
) -> None:
    """create() raises ValidationError naming the parameter, the path and what was wrong."""
    with pytest.raises(ValidationError) as info:
        ChatRequest.create("gpt-4o-mini", messages, **params)
    assert info.value.param == param
    assert words in str(info.value)


def test_a_message_value_built_directly_is_checked_too() -> None:
    """A Message constructed by hand (never parsed) is checked like the dict it stands for."""
    from switchyard.providers import Message

    with pytest.raises(ValidationError, match="lone surrogate") as info:
        ChatRequest.create("gpt-4o-mini", [Message("user", LONE)])
    assert info.value.param == "messages"


def test_the_wire_encoder_refuses_nan_rather_than_writing_invalid_json() -> None:
    """A NaN that skipped validation (a hand-evolved request) is a ValueError, never the bare token NaN."""
    gateway = Gateway.openai_compatible("a", "http://a.test/v1", "k", offers=[Offer("m")])
    offer = ProviderGraph.from_catalogs([gateway]).offer("a", "m")
    request = attrs.evolve(ChatRequest.create("m", HI), temperature=float("nan"))
    with pytest.raises(ValueError, match="not JSON compliant"):
        adapter_for(gateway).build(request, offer, gateway)


def test_valid_unusual_input_still_goes_through_as_strict_json() -> None:
    """Non-ASCII text, nested schemas, big-but-safe ints and a named tool_choice all pass and encode."""
    gateway = Gateway.openai_compatible("a", "http://a.test/v1", "k", offers=[Offer("m")])
    offer = ProviderGraph.from_catalogs([gateway]).offer("a", "m")
    schema = {"type": "object", "properties": {"n": {"type": "integer", "maximum": 2**63 - 1}}}
    request = ChatRequest.create(
        "m",
        [{"role": "user", "content": "héllo 👋", "name": "zoë"}],
        tools=[_tool("f", schema)],
        tool_choice={"type": "function", "function": {"name": "f"}},
        response_format={"type": "json_schema", "json_schema": {"schema": _deep(60)}},
        stop=("ß",),
        seed=-(2**63),
    )
    body = json.loads(adapter_for(gateway).build(request, offer, gateway).body)
    assert body["messages"][0]["content"] == "héllo 👋"
    assert body["tools"][0]["function"]["parameters"] == schema
    assert body["tool_choice"] == {"type": "function", "function": {"name": "f"}}


def test_a_default_response_format_is_dropped_where_it_cannot_go() -> None:
    """response_format 'text' needs nothing: OneLLM leaves it out (and says so) instead of failing."""
    gateway = Gateway.builtin("onellm", "key-onellm-123456")
    offer = ProviderGraph.from_catalogs([gateway]).offers("gpt-4o-mini")[0]
    request = ChatRequest.create("gpt-4o-mini", HI, response_format={"type": "text"})
    wire = adapter_for(gateway).build(request, offer, gateway)
    assert "response_format" not in wire.json() and wire.dropped == ("response_format",)


def _router() -> tuple[Router, MockTransport]:
    gateway = Gateway.openai_compatible(
        "a", "http://a.test/v1", "k", offers=[Offer("m", input_price=0.1, output_price=0.1)]
    )

    def handler(wire: WireRequest) -> Response:
        raise AssertionError("nothing may be sent for a malformed call")

    transport = MockTransport(handler)
    return Router(ProviderGraph.from_catalogs([gateway]), transport=transport), transport


@pytest.mark.parametrize(("messages", "params", "param", "words"), CASES)
async def test_chat_and_explain_refuse_the_same_input_alike_and_send_nothing(
    messages: Any, params: dict[str, Any], param: str, words: str
) -> None:
    """Router.chat and Router.explain raise the same ValidationError; the transport sees no request."""
    router, transport = _router()
    async with router:
        with pytest.raises(ValidationError) as from_chat:
            await router.chat("m", messages, **params)
        with pytest.raises(ValidationError) as from_explain:
            router.explain("m", messages, **params)
    assert type(from_chat.value) is type(from_explain.value)
    assert (str(from_chat.value), from_chat.value.param) == (str(from_explain.value), param)
    assert words in str(from_chat.value)
    assert transport.requests == []
