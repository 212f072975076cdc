"""Models come and go at run time: remove_offers makes them unknown, add_offers brings them back."""

from __future__ import annotations

import aiohttp
import pytest
from switchyard.providers import ConfigError, Offer
from switchyard.providers.emulator import Emulator, Faults

from .conftest import post


@pytest.mark.parametrize("gateway", ["oneai", "onetoken"])
async def test_a_removed_model_is_404_model_not_found(
    emu: Emulator, http: aiohttp.ClientSession, gateway: str
) -> None:
    """After remove_offers an OpenAI-compatible gateway answers its unknown-model 404; others stay."""
    model = "gpt-4o-mini" if gateway == "onetoken" else "kimi"
    assert (await post(http, emu, gateway, model=model))[0] == 200
    emu.remove_offers(gateway, [model])
    status, _, body = await post(http, emu, gateway, model=model)
    assert status == 404 and body["error"] == {
        "message": f"The model `{model}` does not exist",
        "type": "invalid_request_error",
        "code": "model_not_found",
    }
    other = "gpt-4o-search-preview" if gateway == "onetoken" else "glm-4"
    assert (await post(http, emu, gateway, model=other))[0] == 200


async def test_onellm_answers_its_unknown_model_400(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneLLM answers a removed model with its 400 "Unknown model '...'."."""
    emu.remove_offers("onellm", ["GPT-4o"])
    status, _, body = await post(http, emu, "onellm", model="GPT-4o")
    assert (status, body) == (400, {"error": "Unknown model 'GPT-4o'."})


async def test_the_listing_follows_and_add_offers_restores(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """OneRouter's listing leaves a removed model out; add_offers serves it again."""
    model = "claude-3-5-sonnet@20240620"
    emu.remove_offers("onerouter", [model])
    async with http.get(emu.base_url("onerouter") + "/models") as response:
        assert (await response.json())["data"] == []
    assert (await post(http, emu, "onerouter"))[0] == 404
    emu.add_offers("onerouter", [Offer("claude-3.5-sonnet", model)])
    assert (await post(http, emu, "onerouter"))[0] == 200


async def test_removing_clears_the_models_faults(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """A removed model's own faults go with it; a restored one starts healthy."""
    await emu.set_faults("oneai", Faults(errors={503: 1.0}), model="kimi")
    emu.remove_offers("oneai", ["kimi"])
    with pytest.raises(ConfigError, match="no model"):
        await emu.set_faults("oneai", Faults(), model="kimi")
    emu.add_offers("oneai", [Offer("kimi", input_price=0.4, output_price=1.6)])
    assert (await post(http, emu, "oneai", model="kimi"))[0] == 200


async def test_removing_an_unknown_id_removes_nothing(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """An id the gateway does not serve raises ConfigError naming it, and no model is removed."""
    with pytest.raises(ConfigError, match="'gpt-9'"):
        emu.remove_offers("oneai", ["kimi", "gpt-9"])
    assert (await post(http, emu, "oneai", model="kimi"))[0] == 200
    emu.remove_offers("oneai", "kimi")  # one id as a plain string is one id, not its letters
    assert (await post(http, emu, "oneai", model="kimi"))[0] == 404
