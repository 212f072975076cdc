"""The OpenAI-compatible gateways answer with tool calls, plain and streamed, as OpenAI does."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
import openai
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from switchyard.providers import ConfigError
from switchyard.providers.emulator import Emulator, Faults, count_prompt_tokens, count_tokens
from switchyard.providers.emulator._tools import arguments_for

from .conftest import HI, MODEL, post, stream_events

OPENAI_GATEWAYS = ["oneai", "onetoken", "onerouter"]


def _function(name: str, properties: dict[str, Any]) -> dict[str, Any]:
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return {"type": "function", "function": {"name": name, "strict": True, "parameters": schema}}


WEATHER = _function(
    "get_weather",
    {
        "location": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer"},
    },
)
TIME = _function("get_time", {"tz": {"type": "string"}, "dst": {"type": "boolean"}})
TOOLS = [WEATHER, TIME]
WEATHER_ARGS = {"location": "emulated", "unit": "celsius", "days": 1}
TIME_ARGS = {"tz": "emulated", "dst": True}
NAMED_TIME = {"type": "function", "function": {"name": "get_time"}}


def _events(lines: list[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line[6:]) for line in lines if line.startswith(b"data: {")]


def _assemble(events: list[dict[str, Any]]) -> ChatCompletion:
    """Each chunk through the SDK's own type, assembled by the SDK's own stream state."""
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState(input_tools=TOOLS)
    for event in events:
        state.handle_chunk(ChatCompletionChunk.model_validate(event))
    return state.get_final_completion()


@pytest.mark.parametrize("gateway", OPENAI_GATEWAYS)
async def test_plain_tool_call_is_a_chat_completion_the_sdk_validates(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str
) -> None:
    """A named tool_choice answers one call: content null, finish tool_calls, usage for the arguments."""
    status, _, body = await post(http, emu, gateway, tools=TOOLS, tool_choice=NAMED_TIME)
    assert status == 200
    reply = ChatCompletion.model_validate(body)
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    assert choice.message.role == "assistant"
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.id.startswith("call_") and len(call.id) == 29
    assert call.function.name == "get_time" and json.loads(call.function.arguments) == TIME_ARGS
    assert reply.usage is not None and reply.usage.completion_tokens == count_tokens(call.function.arguments)
    function = {"name": "get_time", "arguments": call.function.arguments}
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": call.id, "type": "function", "function": function}],
    }
    assert emu.stats(gateway).tool_calls == 1


@pytest.mark.parametrize("gateway", OPENAI_GATEWAYS)
async def test_streamed_tool_call_is_assembled_by_the_sdk(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str
) -> None:
    """Streamed: role and header first, the arguments over 3+ fragments, finish tool_calls, usage, [DONE]."""
    ask = (
        {"usage": {"include": True}}
        if gateway == "onerouter"
        else {"stream_options": {"include_usage": True}}
    )
    lines = await stream_events(http, emu, gateway, tools=TOOLS, tool_choice="required", **ask)
    assert lines[-2:] == [b"data: [DONE]\n", b"\n"]
    events = _events(lines)
    deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
    call_id = deltas[0]["tool_calls"][0]["id"]
    assert deltas[0] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "index": 0,
                "id": call_id,
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
        ],
    }
    fragments = [d["tool_calls"][0]["function"]["arguments"] for d in deltas[1:-1]]
    assert len(fragments) >= 3 and all(fragments)
    assert all(
        d["tool_calls"][0] == {"index": 0, "function": {"arguments": f}}
        for d, f in zip(deltas[1:-1], fragments, strict=True)
    )
    assert json.loads("".join(fragments)) == WEATHER_ARGS
    assert events[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "tool_calls"}
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == count_tokens(
        "".join(fragments)
    )
    final = _assemble(events)
    (call,) = final.choices[0].message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == (
        call_id,
        "get_weather",
        json.dumps(WEATHER_ARGS, separators=(",", ":")),
    )
    assert call.function.parsed_arguments == WEATHER_ARGS  # strict tools: the SDK parsed the full JSON
    assert final.choices[0].finish_reason == "tool_calls"


async def test_parallel_calls_stream_one_after_the_other_like_openai(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """tool_calls=2: two calls; streamed in order (call 1's header after call 0's last fragment)."""
    await emu.set_faults("oneai", Faults(tool_calls=2))
    _, _, body = await post(http, emu, "oneai", tools=TOOLS, tool_choice="required")
    calls = ChatCompletion.model_validate(body).choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", WEATHER_ARGS),
        ("get_time", TIME_ARGS),
    ]
    assert len({c.id for c in calls}) == 2
    events = _events(await stream_events(http, emu, "oneai", tools=TOOLS))
    indices = [e["choices"][0]["delta"]["tool_calls"][0]["index"] for e in events[:-1]]
    assert indices == sorted(indices) and indices.count(1) >= 4
    final = _assemble(events)
    assert [c.function.parsed_arguments for c in final.choices[0].message.tool_calls or []] == [
        WEATHER_ARGS,
        TIME_ARGS,
    ]
    assert emu.stats("oneai").tool_calls == 4


async def test_interleaved_parallel_calls_are_assembled_by_index(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """interleave_tool_calls=True: both headers, then fragments by turns; assembling by index gives both."""
    await emu.set_faults("onerouter", Faults(tool_calls=2, interleave_tool_calls=True))
    events = _events(await stream_events(http, emu, "onerouter", tools=TOOLS, tool_choice="required"))
    pieces = [e["choices"][0]["delta"]["tool_calls"][0] for e in events[:-1]]
    assert [p["index"] for p in pieces[:6]] == [0, 1, 0, 1, 0, 1]
    assert "id" in pieces[1] and "id" not in pieces[2]
    arguments = ["", ""]
    for piece in pieces:
        arguments[piece["index"]] += piece["function"]["arguments"]
    assert [json.loads(a) for a in arguments] == [WEATHER_ARGS, TIME_ARGS]
    # The SDK's snapshot assembles by index too (non-strict tools: no per-call done events to parse).
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for event in events:
        state.handle_chunk(ChatCompletionChunk.model_validate(event))
    calls = state.get_final_completion().choices[0].message.tool_calls or []
    assert [json.loads(c.function.arguments) for c in calls] == [WEATHER_ARGS, TIME_ARGS]


@pytest.mark.parametrize(
    ("choice", "fault", "parallel", "called"),
    [
        (None, 0, None, []),
        ("auto", 0, None, []),
        ("none", 2, None, []),
        ("auto", 1, None, ["get_weather"]),
        (None, True, None, ["get_weather"]),
        ("required", 0, None, ["get_weather"]),
        ("required", 2, None, ["get_weather", "get_time"]),
        ("required", 2, False, ["get_weather"]),
        ("auto", 5, None, ["get_weather", "get_time"]),
        (NAMED_TIME, 0, None, ["get_time"]),
        (NAMED_TIME, 2, None, ["get_time"]),
    ],
)
async def test_which_tools_are_called(
    emu: Emulator,
    http: aiohttp.ClientSession,
    choice: Any,
    fault: int,
    parallel: bool | None,
    called: list[str],
) -> None:
    """tool_choice, Faults.tool_calls and parallel_tool_calls decide the calls; no call is a text reply."""
    await emu.set_faults("onetoken", Faults(tool_calls=fault))
    extra: dict[str, Any] = {"tools": TOOLS}
    if choice is not None:
        extra["tool_choice"] = choice
    if parallel is not None:
        extra["parallel_tool_calls"] = parallel
    status, _, body = await post(http, emu, "onetoken", **extra)
    message = ChatCompletion.model_validate(body).choices[0].message
    assert status == 200 and [c.function.name for c in message.tool_calls or []] == called
    assert (message.content is None) == bool(called)


async def test_model_faults_can_ask_for_tool_calls(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A per-model fault makes that model call tools under tool_choice='auto'; others answer text."""
    await emu.set_faults("oneai", Faults(tool_calls=1), model="kimi")
    assert (await post(http, emu, "oneai", tools=TOOLS))[2]["choices"][0]["finish_reason"] == "tool_calls"
    other = (await post(http, emu, "oneai", model="glm-4", tools=TOOLS))[2]["choices"][0]
    assert isinstance(other["message"]["content"], str) and "tool_calls" not in other["message"]


async def test_max_tokens_cuts_the_arguments(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """max_tokens=3 stops the call after 3 tokens (12 characters), finish length, later calls not made."""
    await emu.set_faults("oneai", Faults(tool_calls=2))
    _, _, body = await post(http, emu, "oneai", tools=TOOLS, tool_choice="required", max_tokens=3)
    choice = body["choices"][0]
    (call,) = choice["message"]["tool_calls"]
    full = json.dumps(WEATHER_ARGS, separators=(",", ":"))
    assert call["function"]["arguments"] == full[:12] and choice["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 3
    events = _events(await stream_events(http, emu, "oneai", tools=TOOLS, max_tokens=3))
    assert events[-1]["choices"][0]["finish_reason"] == "length"


async def test_stream_faults_count_tool_call_chunks(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """error_event_after=2 sends the opening delta, two fragments, then the error event."""
    await emu.set_faults("onerouter", Faults(error_event_after=2))
    events = _events(await stream_events(http, emu, "onerouter", tools=TOOLS, tool_choice="required"))
    assert len(events) == 4 and "error" in events[-1]
    assert emu.stats("onerouter").tool_calls == 0, "a call that did not arrive whole is not counted"


async def test_the_sdk_client_calls_tools_plain_and_streamed(emu: Emulator) -> None:
    """openai.AsyncOpenAI against the emulator: create() and the .stream() helper both get the calls."""
    await emu.set_faults("oneai", Faults(tool_calls=2))
    async with openai.AsyncOpenAI(base_url=emu.base_url("oneai"), api_key="k", max_retries=0) as client:
        reply = await client.chat.completions.create(
            model=MODEL["oneai"], messages=HI, tools=TOOLS, tool_choice="required"
        )
        async with client.chat.completions.stream(
            model=MODEL["oneai"], messages=HI, tools=TOOLS, stream_options={"include_usage": True}
        ) as stream:
            done = [e.name async for e in stream if e.type == "tool_calls.function.arguments.done"]
            final = await stream.get_final_completion()
    assert [c.function.name for c in reply.choices[0].message.tool_calls or []] == ["get_weather", "get_time"]
    assert done == ["get_weather", "get_time"]
    assert [c.function.parsed_arguments for c in final.choices[0].message.tool_calls or []] == [
        WEATHER_ARGS,
        TIME_ARGS,
    ]
    assert final.usage is not None and reply.usage is not None
    assert final.usage.completion_tokens == reply.usage.completion_tokens


async def test_the_tool_result_turn(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The call goes back with its result; under 'auto' the model answers text; tools count as prompt."""
    _, _, first = await post(http, emu, "oneai", tools=TOOLS, tool_choice="required")
    message = first["choices"][0]["message"]
    assert first["usage"]["prompt_tokens"] == count_prompt_tokens(HI, TOOLS) > count_prompt_tokens(HI)
    result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "12 C, dry"}
    conversation = [*HI, message, result]
    status, _, second = await post(http, emu, "oneai", messages=conversation, tools=TOOLS)
    assert status == 200 and second["choices"][0]["finish_reason"] in {"stop", "length"}
    assert isinstance(second["choices"][0]["message"]["content"], str)
    assert second["usage"]["prompt_tokens"] == count_prompt_tokens(conversation, TOOLS)
    assert count_prompt_tokens([message]) > count_prompt_tokens([{"role": "assistant", "content": ""}])


async def test_onellm_ignores_tools(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneLLM's document has no tools: it answers text, as before (switchyard never sends them there)."""
    status, _, body = await post(http, emu, "onellm", tools=TOOLS, tool_choice="required")
    assert status == 200 and isinstance(body["content"], str) and body["finish_reason"] != "tool_calls"


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"tool_choice": "required"}, "only allowed when 'tools'"),
        ({"tools": []}, "non-empty array"),
        ({"tools": [{"type": "retrieval"}]}, "tools\\[0\\]"),
        ({"tools": [{"type": "function", "function": {}}]}, "function.name"),
        ({"tools": TOOLS, "tool_choice": "always"}, "tool_choice"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "f"}}},
            "no function named",
        ),
        ({"tools": TOOLS, "parallel_tool_calls": "yes"}, "parallel_tool_calls"),
    ],
)
async def test_malformed_tools_are_400(
    emu: Emulator, http: aiohttp.ClientSession, extra: dict[str, Any], match: str
) -> None:
    """Tools, tool_choice and parallel_tool_calls that make no sense are 400 invalid_request_error."""
    status, _, body = await post(http, emu, "oneai", **extra)
    assert status == 400 and body["error"]["type"] == "invalid_request_error"
    assert re.search(match, body["error"]["message"])


def test_arguments_follow_the_schema() -> None:
    """One value per required property: const, first enum, strings, numbers, booleans, nested objects."""
    schema = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "kind": {"enum": ["a", "b"]},
            "fixed": {"const": 7},
            "ratio": {"type": "number"},
            "count": {"type": ["integer", "null"]},
            "flag": {"type": "boolean"},
            "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
            "where": {"type": "object", "properties": {"lat": {"type": "number"}}, "required": ["lat"]},
            "either": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "optional": {"type": "string"},
        },
        "required": ["name", "kind", "fixed", "ratio", "count", "flag", "tags", "where", "either"],
    }
    assert arguments_for(schema) == {
        "name": "emulated",
        "kind": "a",
        "fixed": 7,
        "ratio": 1,
        "count": 1,
        "flag": True,
        "tags": ["emulated", "emulated"],
        "where": {"lat": 1},
        "either": 1,
    }
    assert arguments_for({"type": "object", "properties": {"x": {"type": "string"}}}) == {}
    assert arguments_for({}) == "emulated"


def test_the_tool_calls_fault_is_checked() -> None:
    """tool_calls takes True, False or a count; a faults file can set it."""
    assert Faults(tool_calls=True).tool_calls == 1 and Faults(tool_calls=False).tool_calls == 0
    assert Faults.from_dict({"tool_calls": 2, "interleave_tool_calls": True}).tool_calls == 2
    with pytest.raises(ConfigError, match="tool_calls"):
        Faults(tool_calls=-1)
    with pytest.raises(ConfigError, match="tool_calls"):
        Faults.from_dict({"tool_calls": "two"})
