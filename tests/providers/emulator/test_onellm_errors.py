"""OneLLM's error table (400 missing, 422 wrong type), its $0.10 minimum, its silent max_tokens lowering."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from switchyard.providers import Tier
from switchyard.providers.emulator import Emulator

from .conftest import HI, MODEL, chat_url, post

MINIMUM = "A minimum balance of $0.10 is required to make API requests."


async def send(http: aiohttp.ClientSession, emu: Emulator, gateway: str, payload: Any) -> tuple[int, Any]:
    """POST ``payload`` as it is (bytes are sent raw); return (status, decoded JSON body)."""
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {"Authorization": "Bearer k", "Content-Type": "application/json"}
    async with http.post(chat_url(emu, gateway), data=data, headers=headers) as response:
        return response.status, await response.json(content_type=None)


GOOD = {"model": MODEL["onellm"], "messages": HI}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (b'{"model": "GPT-4o-mini", "messages": [', "JSON"),
        (b"\xff\xfe", "JSON"),
        ([GOOD], "JSON object"),
        ({"messages": HI}, "'model'"),
        ({"model": MODEL["onellm"]}, "'messages'"),
        ({**GOOD, "messages": [{"role": "user"}]}, "'messages[0].content'"),
        ({**GOOD, "messages": [{"content": "hi"}]}, "'messages[0].role'"),
    ],
)
async def test_invalid_json_or_a_missing_field_is_400(
    emu: Emulator, http: aiohttp.ClientSession, payload: Any, field: str
) -> None:
    """Invalid JSON or a missing required field is 400, in OneLLM's words, naming the field."""
    status, body = await send(http, emu, "onellm", payload)
    assert status == 400 and isinstance(body["error"], str)
    assert body["error"].startswith("Invalid JSON or missing required fields") and field in body["error"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": 4}, "'model'"),
        ({"messages": "hi"}, "'messages'"),
        ({"messages": []}, "'messages'"),
        ({"messages": ["hi"]}, "'messages[0]'"),
        ({"messages": [{"role": 1, "content": "hi"}]}, "'messages[0].role'"),
        ({"messages": [{"role": "user", "content": 7}]}, "'messages[0].content'"),
        ({"max_tokens": "50"}, "'max_tokens'"),
        ({"max_tokens": 5.5}, "'max_tokens'"),
        ({"max_tokens": 0}, "'max_tokens'"),
        ({"max_tokens": True}, "'max_tokens'"),
        ({"temperature": "warm"}, "'temperature'"),
        ({"temperature": 2.5}, "'temperature'"),
        ({"top_p": 1.5}, "'top_p'"),
        ({"stop_sequences": "END"}, "'stop_sequences'"),
        ({"stop_sequences": ["END", 3]}, "'stop_sequences'"),
    ],
)
async def test_a_wrong_type_or_format_is_422(
    emu: Emulator, http: aiohttp.ClientSession, change: dict[str, Any], field: str
) -> None:
    """A field of the wrong type or format is 422 (not 400), in OneLLM's words, naming the field."""
    status, body = await send(http, emu, "onellm", {**GOOD, **change})
    assert status == 422 and body["error"].startswith("Invalid type or format in the request body")
    assert field in body["error"]
    assert emu.stats("onellm").statuses == {422: 1}


async def test_well_typed_fields_pass(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The documented fields with the documented types are answered."""
    extra = {"temperature": 0, "top_p": 1, "max_tokens": 3, "stop_sequences": ["zebra"]}
    status, body = await send(http, emu, "onellm", {**GOOD, **extra})
    assert status == 200 and body["usage"]["output_tokens"] == 3


@pytest.mark.parametrize("gateway", ["oneai", "onetoken", "onerouter"])
@pytest.mark.parametrize(
    "change",
    [{"model": None}, {"messages": "hi"}, {"max_tokens": "5"}, {"temperature": 9}, {"stop": [1]}],
)
async def test_the_openai_compatible_gateways_answer_400(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str, change: dict[str, Any]
) -> None:
    """The OpenAI-compatible gateways answer every malformed body 400 invalid_request_error."""
    status, body = await send(http, emu, gateway, {"model": MODEL[gateway], "messages": HI, **change})
    assert status == 400 and body["error"]["type"] == "invalid_request_error"


async def test_under_the_minimum_balance_is_402_before_any_work(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """Under $0.10 OneLLM answers 402 in its words; nothing is charged, reserved or counted as tokens."""
    emu.set_tier("onellm", Tier(rpm=1))
    emu.set_balance("onellm", 0.0999)
    for _ in range(2):
        status, _, body = await post(http, emu, "onellm")
        assert (status, body) == (402, {"error": MINIMUM})
    stats = emu.stats("onellm")
    assert (stats.payment_required, stats.tokens, stats.in_flight) == (2, 0, 0)
    assert emu.balance("onellm") == 0.0999
    emu.set_balance("onellm", 0.10)
    assert (await post(http, emu, "onellm"))[0] == 200, "the 402s used none of the one request a minute"


async def test_the_minimum_is_onellms_alone(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneAI with $0.05 left still answers (it refuses only a spent balance)."""
    emu.set_balance("oneai", 0.05)
    assert (await post(http, emu, "oneai"))[0] == 200


async def test_max_tokens_is_lowered_to_what_the_balance_pays(http: aiohttp.ClientSession) -> None:
    """$0.10 at $20,000/1M out pays 5 tokens: max_tokens=40 answers 5 tokens, finish length, no other sign."""
    async with Emulator(default_price=(0.0, 20_000.0)) as emu:
        emu.set_balance("onellm", 0.10)
        status, headers, body = await post(http, emu, "onellm", max_tokens=40)
        assert status == 200 and set(body) == {
            "provider",
            "model",
            "role",
            "content",
            "usage",
            "finish_reason",
        }
        assert body["usage"]["output_tokens"] == 5 == len(body["content"].split())
        # How a client tells: the reply stopped for length below the max_tokens it sent.
        assert body["finish_reason"] == "length" and body["usage"]["output_tokens"] < 40
        assert not any("token" in name.lower() or "balance" in name.lower() for name in headers)
        assert emu.stats("onellm").max_tokens_lowered == 1
        assert emu.balance("onellm") == pytest.approx(0.0)
        assert (await post(http, emu, "onellm", max_tokens=40))[0] == 402, "spent: under the minimum now"


@pytest.mark.parametrize(
    ("sent", "tokens", "lowered"),
    [(None, 5, 1), (3, 3, 0), (5, 5, 0)],
)
async def test_lowering_only_when_the_balance_cannot_pay(
    http: aiohttp.ClientSession, sent: int | None, tokens: int, lowered: int
) -> None:
    """No max_tokens is lowered to the 5 affordable ones; 3 or 5 fit and are kept (not counted lowered)."""
    async with Emulator(default_price=(0.0, 20_000.0)) as emu:
        emu.set_balance("onellm", 0.10)
        extra = {} if sent is None else {"max_tokens": sent}
        _, _, body = await post(http, emu, "onellm", **extra)
        assert body["usage"]["output_tokens"] == tokens and body["finish_reason"] == "length"
        assert emu.stats("onellm").max_tokens_lowered == lowered


async def test_the_prompt_is_paid_first(http: aiohttp.ClientSession) -> None:
    """With a priced prompt the balance pays the prompt first: 8 prompt tokens at $1,000/1M leave 4."""
    async with Emulator(default_price=(1_000.0, 20_000.0)) as emu:
        emu.set_balance("onellm", 0.10)
        _, _, body = await post(http, emu, "onellm", max_tokens=40)
        assert body["usage"] == {"input_tokens": 8, "output_tokens": 4, "total_tokens": 12}
