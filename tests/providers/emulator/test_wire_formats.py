"""The emulator speaks each gateway's wire format, checks keys, and serves each catalog."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from switchyard.providers import Gateway, ProviderGraph
from switchyard.providers.emulator import Emulator, count_prompt_tokens

from .conftest import HI, MODEL, chat_url, post, stream_events

OPENAI_GATEWAYS = ["oneai", "onetoken", "onerouter"]


@pytest.mark.parametrize("gateway", OPENAI_GATEWAYS)
async def test_openai_compatible_reply(emu: Emulator, http: aiohttp.ClientSession, gateway: str) -> None:
    """A chat.completion with deterministic text whose length follows max_tokens, and consistent usage."""
    status, _, body = await post(http, emu, gateway, max_tokens=5)
    assert status == 200 and body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "length"
    usage = body["usage"]
    assert usage["completion_tokens"] == 5 == len(choice["message"]["content"].split())
    assert usage["prompt_tokens"] == count_prompt_tokens(HI)
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    again = await post(http, emu, gateway, max_tokens=5)
    assert again[2]["choices"][0]["message"]["content"] == choice["message"]["content"]
    natural = await post(http, emu, gateway, max_tokens=500)
    assert natural[2]["choices"][0]["finish_reason"] == "stop"
    assert 16 <= natural[2]["usage"]["completion_tokens"] <= 48
    assert emu.stats(gateway).tokens == sum(
        b[2]["usage"]["total_tokens"] for b in ((0, 0, body), again, natural)
    )


async def test_onellm_flat_reply_and_its_rules(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneLLM answers its flat JSON at /api, refuses stream and stop, and takes stop_sequences."""
    status, _, body = await post(http, emu, "onellm", max_tokens=4)
    assert status == 200
    assert set(body) == {"provider", "model", "role", "content", "usage", "finish_reason"}
    assert set(body["usage"]) == {"input_tokens", "output_tokens", "total_tokens"}
    assert body["usage"]["output_tokens"] == 4
    for bad in ({"stream": True}, {"stream": False}, {"stop": ["x"]}):
        status, _, err = await post(http, emu, "onellm", **bad)
        assert status == 400 and isinstance(err["error"], str)
    full = (await post(http, emu, "onellm"))[2]["content"]
    cut_at = full.split()[3]
    status, _, body = await post(http, emu, "onellm", stop_sequences=[cut_at])
    assert status == 200 and cut_at not in body["content"] and body["finish_reason"] == "stop"


async def test_onellm_chat_path_is_configurable(http: aiohttp.ClientSession) -> None:
    """The emulator can serve OneLLM at its OpenAPI file's path instead."""
    async with Emulator(onellm_chat_path="/v1/chat/completions") as emu:
        (gw,) = [g for g in emu.gateways() if g.name == "onellm"]
        async with http.post(
            str(gw.chat_url), json={"model": "GPT-4o", "messages": HI}, headers={"Authorization": "Bearer k"}
        ) as r:
            assert r.status == 200
        async with http.post(
            emu.base_url("onellm") + "/api", json={}, headers={"Authorization": "Bearer k"}
        ) as r:
            assert r.status == 404


@pytest.mark.parametrize("gateway", ["onellm", *OPENAI_GATEWAYS])
@pytest.mark.parametrize("key", [None, "", "   "])
async def test_missing_or_empty_key_is_401_in_the_gateways_shape(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str, key: str | None
) -> None:
    """No key, or an empty one, is 401 with the gateway's own error shape."""
    status, _, body = await post(http, emu, gateway, key=key)
    assert status == 401
    if gateway == "onellm":
        assert body == {"error": "API key missing or invalid."}
    else:
        assert body["error"]["type"] == "authentication_error" and body["error"]["message"]
    assert emu.stats(gateway).statuses == {401: 1}


async def test_configured_keys_are_enforced(http: aiohttp.ClientSession) -> None:
    """With a key configured, only that key passes; emu.gateways() carries it."""
    async with Emulator(keys={"oneai": "the-only-key"}) as emu:
        assert (await post(http, emu, "oneai", key="another"))[0] == 401
        assert (await post(http, emu, "oneai", key="the-only-key"))[0] == 200
        (oneai,) = [g for g in emu.gateways() if g.name == "oneai"]
        assert oneai.api_key is not None and oneai.api_key.reveal() == "the-only-key"


@pytest.mark.parametrize(
    ("gateway", "status"), [("onellm", 400), ("oneai", 404), ("onetoken", 404), ("onerouter", 404)]
)
async def test_each_gateway_serves_only_its_own_catalog(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str, status: int
) -> None:
    """A model from another gateway's catalog is unknown here."""
    other = "deepseek-v3" if gateway != "oneai" else "gpt-4o-mini"
    code, _, _ = await post(http, emu, gateway, model=other)
    assert code == status


async def test_search_models_refuse_what_they_do_not_take(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Onetoken's search models answer 400 to temperature, as the real ones do."""
    status, _, body = await post(http, emu, "onetoken", model="gpt-4o-search-preview", temperature=0.5)
    assert status == 400 and body["error"]["code"] == "unsupported_parameter"
    assert (await post(http, emu, "onetoken", model="gpt-4o-search-preview", web_search_options={}))[0] == 200


async def test_context_window_is_enforced(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Prompt plus max_tokens over the window is 400 context_length_exceeded (qwen-max: 32,000)."""
    status, _, body = await post(http, emu, "oneai", model="qwen-max", max_tokens=32_000)
    assert status == 400 and body["error"]["code"] == "context_length_exceeded"


@pytest.mark.parametrize("gateway", OPENAI_GATEWAYS)
async def test_streams_end_with_done_and_usage_only_when_asked(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str
) -> None:
    """SSE chunks, a final usage chunk only when asked (include_usage / OneRouter's usage.include), [DONE]."""
    plain = await stream_events(http, emu, gateway, max_tokens=3)
    data = [json.loads(line[6:]) for line in plain if line.startswith(b"data: {")]
    assert plain[-2:] == [b"data: [DONE]\n", b"\n"]
    assert (
        "".join(c["choices"][0]["delta"].get("content", "") for c in data if c["choices"]).split().__len__()
        == 3
    )
    assert data[-1]["choices"][0]["finish_reason"] == "length"
    assert not any("usage" in c for c in data)
    ask = (
        {"usage": {"include": True}}
        if gateway == "onerouter"
        else {"stream_options": {"include_usage": True}}
    )
    with_usage = await stream_events(http, emu, gateway, max_tokens=3, **ask)
    last: dict[str, Any] = json.loads([line for line in with_usage if line.startswith(b"data: {")][-1][6:])
    assert last["choices"] == [] and last["usage"]["completion_tokens"] == 3
    assert ("cost" in last["usage"]) == (gateway == "onerouter")
    comments = [line for line in with_usage if line.startswith(b":")]
    assert comments == ([b": OPENROUTER PROCESSING\n"] if gateway == "onerouter" else [])


async def test_onerouter_lists_its_models(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneRouter has a models listing the provider graph can refresh from; the others have none."""
    async with http.get(emu.base_url("onerouter") + "/models") as response:
        listing = await response.json()
    (entry,) = listing["data"]
    assert entry["id"] == "claude-3-5-sonnet@20240620" and entry["pricing"] == {
        "prompt": "0.000003",
        "completion": "0.000015",
    }
    async with http.get(emu.base_url("oneai") + "/models") as response:
        assert response.status == 404
    graph = ProviderGraph.from_catalogs([g for g in emu.gateways() if g.name == "onerouter"])
    report = await graph.refresh(http)
    assert report.fetched == ("onerouter",) and emu.stats("onerouter").listings == 2  # ours, then the refresh


async def test_wrong_method_and_path(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """GET on the chat path is 405 and an unknown path 404, in the gateway's shape."""
    async with http.get(chat_url(emu, "onellm")) as r:
        assert r.status == 405 and (await r.json()) == {
            "error": "Endpoint does not support the HTTP method used."
        }
    async with http.post(emu.base_url("oneai") + "/nope") as r:
        assert r.status == 404 and "error" in await r.json()


def test_gateways_point_at_the_emulator() -> None:
    """emu.gateways() gives the four built-in gateways, with base URLs on loopback."""

    async def run() -> list[Gateway]:
        async with Emulator() as emu:
            return emu.gateways(tiers={"oneai": None})

    import asyncio

    gateways = asyncio.run(run())
    assert [g.name for g in gateways] == ["onellm", "oneai", "onetoken", "onerouter"]
    assert all(g.base_url.startswith("http://127.0.0.1:") for g in gateways)
    assert len({g.base_url.rsplit(":", 1)[1].split("/")[0] for g in gateways}) == 4, "one port each"
    assert str(gateways[0].chat_url).endswith("/api") and gateways[1].base_url.endswith("/v1")


@pytest.mark.parametrize("gateway", ["onellm", *OPENAI_GATEWAYS])
async def test_our_own_adapters_read_the_emulator(emu: Emulator, gateway: str) -> None:
    """switchyard's adapters and transport get a normalized reply from each emulated gateway."""
    from switchyard.providers import AiohttpTransport, ChatRequest, Timeouts
    from switchyard.providers.wire import adapter_for

    graph = ProviderGraph.from_catalogs(emu.gateways())
    gw, offer = graph.gateway(gateway), graph.offer(gateway, MODEL[gateway])
    adapter = adapter_for(gw)
    wire = adapter.build(ChatRequest.create(offer.model, HI, max_tokens=6), offer, gw)
    transport = AiohttpTransport()
    try:
        response = await transport.request(wire, Timeouts())
        reply = await adapter.answer(response, wire, offer, gw, wall_now=0)
        await response.aclose()
    finally:
        await transport.aclose()
    assert reply.usage.completion_tokens == 6 and reply.finish_reason == "length"
    assert (reply.cost_usd is None) == (not offer.priced)
