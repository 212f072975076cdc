"""ChatRequest: bad input is a typed error before anything is sent."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from switchyard.providers import ChatRequest, Message, ValidationError
from switchyard.providers._request import SAMPLING_PARAMS

HI = [{"role": "user", "content": "hi"}]


def test_a_valid_request_keeps_its_values_frozen() -> None:
    """Messages and parameters are validated and frozen."""
    request = ChatRequest.create(
        "gpt-4o-mini",
        [{"role": "developer", "content": "be brief"}, *HI],
        temperature=0.2,
        stop="END",
        tools=[{"type": "function", "function": {"name": "f", "parameters": {}}}],
    )
    assert request.messages[0] == Message(role="developer", content="be brief")
    assert request.stop == ("END",)
    assert request.sampling() == {
        "temperature": 0.2,
        "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
    }
    with pytest.raises(TypeError):
        request.tools[0]["type"] = "x"  # type: ignore[index]


def test_every_sampling_parameter_set_is_in_sampling_in_order_and_json_ready() -> None:
    """sampling() holds each parameter the request sets, in SAMPLING_PARAMS order, thawed; a
    request made directly (or evolved) derives it the same way."""
    every: dict[str, Any] = {
        "temperature": 0.5,
        "top_p": 1,
        "max_tokens": 16,
        "stop": ["a", "b"],
        "seed": 3,
        "frequency_penalty": 0,
        "presence_penalty": -1,
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_object"},
        "web_search_options": {"search_context_size": "low"},
        "user": "u-1",
    }
    assert set(every) == set(SAMPLING_PARAMS)
    request = ChatRequest.create("m", HI, **every)
    sampling = request.sampling()
    assert list(sampling) == list(SAMPLING_PARAMS)
    assert sampling == {**every, "top_p": 1.0, "frequency_penalty": 0.0, "presence_penalty": -1.0}
    assert type(sampling["stop"]) is list and type(sampling["tools"][0]["function"]) is dict
    assert ChatRequest(request.model, request.messages, max_tokens=5, user="x").sampling() == {
        "max_tokens": 5,
        "user": "x",
    }


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"max_tokens": 16},
        {"user": "u", "max_cost_usd": 0.5, "seed": 1, "temperature": 0.1},  # not in SAMPLING_PARAMS order
        {"response_format": {"type": "text"}, "stop": "x"},
        {"response_format": {"type": "json_object"}, "web_search_options": {}},
        {"tool_choice": "auto", "tools": [{"type": "function", "function": {"name": "f"}}]},
    ],
)
def test_create_builds_what_direct_construction_and_evolve_build(params: dict[str, Any]) -> None:
    """create() fills the instance without __init__; the value, sampling() in its order, needs and
    the instance's fields are the same as ChatRequest(...) and attrs.evolve() derive."""
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "see"},
                {"type": "image_url", "image_url": {"url": "https://x/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        *HI,
    ]
    for msgs in (HI, messages):
        created = ChatRequest.create("m", msgs, **params)
        fields = {a.name: getattr(created, a.name) for a in attrs.fields(ChatRequest) if a.init}
        for other in (ChatRequest(**fields), attrs.evolve(created)):
            assert other == created
            assert list(other.sampling().items()) == list(created.sampling().items())
            assert other.needs == created.needs
            assert vars(other) == vars(created)
            assert list(vars(other)) == list(vars(created))
    assert ChatRequest.create("m", messages, **params).needs >= {"images", "tools"}


@pytest.mark.parametrize(
    ("params", "param", "match"),
    [
        ({"temprature": 0.5}, "temprature", "did you mean 'temperature'"),
        ({"n": 2}, "n", "known parameters"),
        ({"temperature": 2.5}, "temperature", "from 0 to 2"),
        ({"temperature": float("nan")}, "temperature", "number"),
        ({"temperature": "hot"}, "temperature", "number"),
        ({"top_p": 1.5}, "top_p", "from 0 to 1"),
        ({"max_tokens": 0}, "max_tokens", "above 0"),
        ({"max_tokens": 1.5}, "max_tokens", "whole number"),
        ({"max_tokens": True}, "max_tokens", "whole number"),
        ({"stop": []}, "stop", "1 to 4"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "1 to 4"),
        ({"stop": [""]}, "stop", "non-empty"),
        ({"frequency_penalty": 3}, "frequency_penalty", "from -2 to 2"),
        ({"seed": 1.5}, "seed", "whole number"),
        ({"tools": [{"type": "function"}]}, "tools", "type"),
        ({"tools": [{"type": "function", "function": {}}]}, "tools", "name"),
        ({"tool_choice": "auto"}, "tool_choice", "needs tools"),
        ({"tool_choice": "always"}, "tool_choice", "none"),
        ({"response_format": "json"}, "response_format", "dict"),
        ({"max_cost_usd": -1}, "max_cost_usd", "from 0"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, Any], param: str, match: str) -> None:
    """Each out-of-range, mistyped or unknown parameter raises ValidationError naming it."""
    with pytest.raises(ValidationError, match=match) as info:
        ChatRequest.create("m", HI, **params)
    assert info.value.param == param


@pytest.mark.parametrize(
    ("messages", "match"),
    [
        ([], "must not be empty"),
        ("hi", "list of message dicts"),
        ({"role": "user", "content": "hi"}, "list of message dicts"),
        (["hi"], "must be a dict"),
        ([{"role": "robot", "content": "x"}], "role must be one of"),
        ([{"role": "user"}], "has no content"),
        ([{"role": "user", "content": 5}], "string or a list of parts"),
        ([{"role": "user", "content": []}], "empty list"),
        ([{"role": "user", "content": [{"text": "x"}]}], "with a 'type'"),
        ([{"role": "user", "content": "x", "colour": "red"}], "unknown keys"),
        ([{"role": "tool", "content": "42"}], "tool_call_id"),
        ([{"role": "user", "content": "x", "tool_calls": [{"id": "1"}]}], "assistant message"),
        ([{"role": "system", "content": "you are"}], "at least one user"),
    ],
)
def test_bad_messages_are_refused(messages: Any, match: str) -> None:
    """Message shape and roles are checked, with the message's index in the error."""
    with pytest.raises(ValidationError, match=match) as info:
        ChatRequest.create("m", messages)
    assert info.value.param == "messages"


def test_assistant_tool_calls_may_have_no_content() -> None:
    """An assistant message carrying tool calls needs no content; its tool answer follows."""
    request = ChatRequest.create(
        "m",
        [
            *HI,
            {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function"}]},
            {"role": "tool", "content": "42", "tool_call_id": "c1"},
        ],
    )
    assert request.needs == {"tools"}


@pytest.mark.parametrize(
    ("params", "messages", "needs"),
    [
        ({}, HI, set()),
        ({"response_format": {"type": "json_object"}}, HI, {"json_mode"}),
        ({"response_format": {"type": "text"}}, HI, set()),
        ({"web_search_options": {}}, HI, {"web_search"}),
        ({}, [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}], {"images"}),
    ],
)
def test_needs_say_what_a_target_must_carry(params: dict[str, Any], messages: Any, needs: set[str]) -> None:
    """needs lists the features whose absence would change the answer."""
    assert ChatRequest.create("m", messages, **params).needs == needs


def test_text_joins_text_parts() -> None:
    """Message.text joins text parts and leaves images out."""
    message = Message.parse(
        {
            "role": "user",
            "content": [{"type": "text", "text": "a"}, {"type": "image_url"}, {"type": "text", "text": "b"}],
        },
        0,
    )
    assert message.text == "a\nb" and message.has_non_text
