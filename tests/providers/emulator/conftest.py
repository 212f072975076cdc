"""Fixtures for emulator tests: a running emulator and a plain aiohttp client."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from switchyard.providers.emulator import Emulator

HI = [{"role": "user", "content": "hi"}]
MODEL = {
    "onellm": "GPT-4o-mini",
    "oneai": "kimi",
    "onetoken": "gpt-4o-mini",
    "onerouter": "claude-3-5-sonnet@20240620",
}


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """A running emulator with seed 0."""
    async with Emulator(seed=0) as emulator:
        yield emulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain client session."""
    async with aiohttp.ClientSession() as session:
        yield session


def chat_url(emu: Emulator, gateway: str) -> str:
    """The chat URL of a gateway."""
    return emu.base_url(gateway) + ("/api" if gateway == "onellm" else "/chat/completions")


async def post(
    http: aiohttp.ClientSession,
    emu: Emulator,
    gateway: str,
    *,
    key: str | None = "k",
    **body: Any,
) -> tuple[int, Any, Any]:
    """POST a chat request; return (status, headers, decoded JSON body or raw bytes)."""
    payload = {"model": MODEL[gateway], "messages": HI, **body}
    headers = {} if key is None else {"Authorization": f"Bearer {key}"}
    async with http.post(chat_url(emu, gateway), json=payload, headers=headers) as response:
        raw = await response.read()
        try:
            decoded: Any = await response.json(content_type=None)
        except ValueError:
            decoded = raw
        return response.status, response.headers, decoded


async def stream_events(http: aiohttp.ClientSession, emu: Emulator, gateway: str, **body: Any) -> list[bytes]:
    """POST a streamed request; return the raw lines received until the stream ends."""
    payload = {"model": MODEL[gateway], "messages": HI, "stream": True, **body}
    lines = []
    async with http.post(
        chat_url(emu, gateway), json=payload, headers={"Authorization": "Bearer k"}
    ) as response:
        assert response.status == 200, await response.text()
        async for line in response.content:
            lines.append(line)
    return lines
