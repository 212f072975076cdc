"""Tiers answer 429 with Retry-After like OneAI's, and a spent balance answers 402."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
from multidict import CIMultiDict
from switchyard.providers import Tier
from switchyard.providers._classify import parse_retry_after
from switchyard.providers.emulator import Emulator, Faults

from .conftest import post

Loop = asyncio.AbstractEventLoop


async def test_requests_per_minute(emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop) -> None:
    """Tier(rpm=3): three requests pass, the fourth is 429 until a request's worth refills (20 s)."""
    emu.set_tier("oneai", Tier(rpm=3))
    assert [(await post(http, emu, "oneai"))[0] for _ in range(3)] == [200, 200, 200]
    status, headers, body = await post(http, emu, "oneai")
    assert status == 429 and headers["Retry-After"] == "20" and "(requests)" in body["error"]["message"]
    await asyncio.sleep(19)  # fake loop time (fake_time): no real wait
    assert (await post(http, emu, "oneai"))[0] == 429
    await asyncio.sleep(1)
    assert (await post(http, emu, "oneai"))[0] == 200
    assert emu.stats("oneai").rate_limited == 2


async def test_tokens_per_minute(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Tier(tpm=100): a request costs prompt + max_tokens; what does not fit is 429 (tokens)."""
    emu.set_tier("oneai", Tier(tpm=100))
    assert (await post(http, emu, "oneai", max_tokens=80))[0] == 200
    status, headers, body = await post(http, emu, "oneai", max_tokens=80)
    assert status == 429 and "(tokens)" in body["error"]["message"] and int(headers["Retry-After"]) >= 1


async def test_concurrency(emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop) -> None:
    """Tier(concurrency=2): a third request while two are in flight is 429; never more than 2 served."""
    emu.set_tier("oneai", Tier(concurrency=2))
    await emu.set_faults("oneai", Faults(latency=1.0))
    statuses = sorted(s for s, _, _ in await asyncio.gather(*(post(http, emu, "oneai") for _ in range(3))))
    assert statuses == [200, 200, 429]
    stats = emu.stats("oneai")
    assert stats.peak_concurrency == 2 and stats.in_flight == 0


async def test_oneai_free_tier_is_its_published_numbers(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Tier.FREE admits 20 requests at once and refuses the 21st; headers tell the state."""
    emu.set_tier("oneai", Tier.FREE)
    results = [await post(http, emu, "oneai", max_tokens=1) for _ in range(21)]
    assert [s for s, _, _ in results].count(200) == 20 and results[-1][0] == 429
    headers = results[0][1]
    assert headers["x-ratelimit-limit-requests"] == "20" and headers["x-ratelimit-limit-tokens"] == "200000"
    assert headers["x-ratelimit-remaining-requests"] == "19"


@pytest.mark.parametrize("style", ["seconds", "http-date", "ms", "alternate"])
async def test_retry_after_forms(emu: Emulator, http: aiohttp.ClientSession, style: str) -> None:
    """429s say when to come back as seconds, an HTTP-date (with Date), retry-after-ms, or in turn."""
    emu.set_tier("oneai", Tier(rpm=1), retry_after=style)
    await post(http, emu, "oneai")
    waits, forms = [], []
    for _ in range(2):
        status, headers, _ = await post(http, emu, "oneai")
        assert status == 429
        forms.append(
            "date" if "GMT" in headers["Retry-After"] else "ms" if "retry-after-ms" in headers else "s"
        )
        waits.append(parse_retry_after(CIMultiDict(headers), wall_now=0.0))
    expected = {
        "seconds": ["s", "s"],
        "http-date": ["date", "date"],
        "ms": ["ms", "ms"],
        "alternate": ["s", "date"],
    }
    assert forms == expected[style]
    for wait in waits:
        assert wait is not None and 58 <= wait <= 61


async def test_a_spent_balance_answers_402(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """OneAI with a balance pays per token at its prices; once spent, 402 in OneAI's words."""
    emu.set_balance("oneai", 0.000015)
    assert (await post(http, emu, "oneai", max_tokens=5))[0] == 200  # kimi: 8 x $0.40 + 5 x $1.60 per 1M
    left = emu.balance("oneai")
    assert left is not None and left == pytest.approx(0.000015 - (8 * 0.40 + 5 * 1.60) / 1e6)
    assert (await post(http, emu, "oneai", max_tokens=5))[0] == 200
    status, _, body = await post(http, emu, "oneai", max_tokens=5)
    assert status == 402 and body["error"]["message"] == "Insufficient balance — top up your account"
    assert emu.stats("oneai").payment_required == 1
