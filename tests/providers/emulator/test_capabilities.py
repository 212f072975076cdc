"""Image, PDF and audio parts (and tools) are refused for a model whose capabilities rule them out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from switchyard.providers import Capabilities, Offer
from switchyard.providers.emulator import Emulator

from .conftest import post, stream_events

PARTS = {
    "image": {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    "PDF": {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"}},
    "audio": {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}},
}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
NOTHING = Capabilities(streaming=True, tools=False, images=False, pdf=False, audio=False)
EVERYTHING = Capabilities(streaming=True, tools=True, images=True, pdf=True, audio=True)


def _with(part: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, part]}]


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator whose gateways also serve a model that takes nothing and one that takes everything."""
    async with Emulator() as emulator:
        for gateway in ("onellm", "oneai", "onetoken", "onerouter"):
            emulator.add_offers(
                gateway, [Offer("text-only", capabilities=NOTHING), Offer("omni", capabilities=EVERYTHING)]
            )
        yield emulator


@pytest.mark.parametrize("gateway", ["oneai", "onetoken", "onerouter"])
@pytest.mark.parametrize("what", list(PARTS))
async def test_an_input_the_model_lacks_is_400_unsupported_content(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str, what: str
) -> None:
    """A part the offer marks False is 400 unsupported_content in OpenAI's shape; True is answered."""
    status, _, body = await post(http, emu, gateway, model="text-only", messages=_with(PARTS[what]))
    assert status == 400
    assert body["error"] == {
        "message": f"This model does not support {what} input.",
        "type": "invalid_request_error",
        "code": "unsupported_content",
    }
    assert (await post(http, emu, gateway, model="omni", messages=_with(PARTS[what])))[0] == 200


@pytest.mark.parametrize("what", list(PARTS))
async def test_an_unknown_capability_is_accepted(
    emu: Emulator, http: aiohttp.ClientSession, what: str
) -> None:
    """The shipped catalogs do not say (None): the part is accepted, as the router's filters assume."""
    status, _, _ = await post(http, emu, "oneai", model="kimi", messages=_with(PARTS[what]))
    assert status == 200


async def test_onellm_refuses_in_its_own_shape(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneLLM's refusal is its flat {"error": text}."""
    status, _, body = await post(http, emu, "onellm", model="text-only", messages=_with(PARTS["image"]))
    assert (status, body) == (400, {"error": "This model does not support image input."})


async def test_a_refused_stream_is_a_plain_400(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """The refusal comes before any stream starts: a 400 JSON answer, no SSE."""
    with pytest.raises(AssertionError, match="unsupported_content"):
        await stream_events(http, emu, "onetoken", model="text-only", messages=_with(PARTS["audio"]))


async def test_each_input_is_its_own_capability(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A model without image input still reads PDFs when its offer says so."""
    emu.add_offers("oneai", [Offer("reader", capabilities=Capabilities(images=False, pdf=True))])
    assert (await post(http, emu, "oneai", model="reader", messages=_with(PARTS["PDF"])))[0] == 200
    assert (await post(http, emu, "oneai", model="reader", messages=_with(PARTS["image"])))[0] == 400


async def test_tools_for_a_model_without_them_are_400(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """tools=False refuses a request with tools at the OpenAI-compatible gateways; OneLLM ignores tools."""
    status, _, body = await post(http, emu, "oneai", model="text-only", tools=[TOOL])
    assert status == 400 and body["error"]["code"] == "unsupported_parameter"
    assert (await post(http, emu, "onellm", model="text-only", tools=[TOOL]))[0] == 200
