"""Every fault kind happens as configured, read back through emu.stats (on fake loop time)."""

from __future__ import annotations

import asyncio
import json
import random
import statistics

import aiohttp
import pytest
from switchyard.providers import ConfigError
from switchyard.providers.emulator import Emulator, Faults, FaultsFile, Latency, Malformed, Outage

from .conftest import HI, MODEL, chat_url, post

Loop = asyncio.AbstractEventLoop


def test_lognormal_latency_has_its_median_and_p99() -> None:
    """Lognormal latency drawn 20,000 times lands on the median and p99 it was given."""
    latency = Latency.lognormal(0.2, 1.0)
    rng = random.Random(1)
    samples = sorted(latency.sample(rng) for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(0.2, rel=0.05)
    assert samples[int(0.99 * len(samples))] == pytest.approx(1.0, rel=0.10)
    assert Latency.fixed(0.3).sample(rng) == 0.3


async def test_fixed_latency(emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop) -> None:
    """A fixed latency delays the reply by exactly that much loop time."""
    await emu.set_faults("oneai", Faults(latency=0.25))
    start = fake_time.time()
    assert (await post(http, emu, "oneai"))[0] == 200
    assert fake_time.time() - start == pytest.approx(0.25, abs=1e-3)


async def test_time_to_first_token_and_between_chunks(
    emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop
) -> None:
    """A stream's first content arrives after ttft, the rest inter_chunk apart."""
    await emu.set_faults("onetoken", Faults(ttft=0.5, inter_chunk=0.1))
    start = fake_time.time()
    arrivals = []
    payload = {"model": MODEL["onetoken"], "messages": HI, "stream": True, "max_tokens": 4}
    async with http.post(chat_url(emu, "onetoken"), json=payload, headers={"Authorization": "Bearer k"}) as r:
        async for line in r.content:
            if line.startswith(b"data: {") and json.loads(line[6:])["choices"][0]["delta"].get("content"):
                arrivals.append(round(fake_time.time() - start, 3))
    assert arrivals == [0.5, 0.6, 0.7, 0.8]


@pytest.mark.parametrize("status", [400, 402, 429, 500, 502, 503, 504])
async def test_error_rate_of_one_answers_that_status(
    emu: Emulator, http: aiohttp.ClientSession, status: int
) -> None:
    """An error rate of 1 for a status answers it every time, in the gateway's shape."""
    await emu.set_faults("oneai", Faults(errors={status: 1.0}))
    for _ in range(3):
        code, headers, body = await post(http, emu, "oneai")
        assert code == status and "message" in body["error"]
    if status == 429:
        assert headers["Retry-After"] == "1"
    stats = emu.stats("oneai")
    assert stats.statuses == {status: 3} and stats.requests == 3
    assert stats.rate_limited == (3 if status == 429 else 0)


async def test_error_rates_are_drawn_per_request(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """30% 503s over 600 requests give about 180 of them (seeded, so it repeats)."""
    await emu.set_faults("oneai", Faults(errors={503: 0.3}))
    await asyncio.gather(*(post(http, emu, "oneai") for _ in range(600)))
    stats = emu.stats("oneai")
    assert stats.statuses[503] + stats.statuses[200] == 600
    assert 140 <= stats.statuses[503] <= 220


async def test_refusing_outage_closes_the_port_and_reopens_it(
    emu: Emulator, http: aiohttp.ClientSession
) -> None:
    """outage='refuse' refuses connections (nothing is received) until it is lifted."""
    await emu.set_faults("onerouter", Faults(outage=Outage.REFUSE))
    with pytest.raises(aiohttp.ClientConnectorError):
        await post(http, emu, "onerouter")
    assert emu.stats("onerouter").requests == 0
    assert (await post(http, emu, "oneai"))[0] == 200, "the other gateways stay up"
    await emu.set_faults("onerouter", None)
    assert (await post(http, emu, "onerouter"))[0] == 200


async def test_hanging_outage_accepts_and_never_answers(
    emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop
) -> None:
    """outage='hang' accepts the request and never answers; the client's own timeout ends it."""
    await emu.set_faults("oneai", Faults(outage="hang"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(30):
            await post(http, emu, "oneai")
    stats = emu.stats("oneai")
    assert (stats.requests, stats.hung, stats.statuses) == (1, 1, {})


async def _content_lines(
    http: aiohttp.ClientSession, emu: Emulator, gateway: str, limit: float = 10
) -> tuple[list[str], BaseException | None]:
    texts: list[str] = []
    payload = {"model": MODEL[gateway], "messages": HI, "stream": True, "max_tokens": 8}
    try:
        async with asyncio.timeout(limit):
            async with http.post(
                chat_url(emu, gateway), json=payload, headers={"Authorization": "Bearer k"}
            ) as r:
                async for line in r.content:
                    if line.startswith(b"data: {"):
                        event = json.loads(line[6:])
                        if "error" in event:
                            texts.append("<error>")
                        elif event["choices"] and event["choices"][0]["delta"].get("content"):
                            texts.append(event["choices"][0]["delta"]["content"])
                    elif line.startswith(b"data: [DONE]"):
                        texts.append("<done>")
    except (TimeoutError, aiohttp.ClientPayloadError) as exc:
        return texts, exc
    return texts, None


async def test_stall_after_three_chunks(emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop) -> None:
    """stall_after=3 sends three chunks, then nothing, holding the connection open."""
    await emu.set_faults("oneai", Faults(stall_after=3))
    texts, error = await _content_lines(http, emu, "oneai")
    assert len(texts) == 3 and isinstance(error, TimeoutError)
    assert emu.stats("oneai").stalled == 1


@pytest.mark.parametrize("after", [0, 2, 5])
async def test_cut_streams(emu: Emulator, http: aiohttp.ClientSession, after: int, fake_time: Loop) -> None:
    """cut_after=N drops the connection after N chunks (0: right after the headers)."""
    await emu.set_faults("onerouter", Faults(cut_after=after))
    texts, error = await _content_lines(http, emu, "onerouter")
    assert len(texts) == after and isinstance(error, aiohttp.ClientPayloadError)
    assert emu.stats("onerouter").cut == 1


async def test_error_event_inside_a_200_stream(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """error_event_after=2 sends two chunks, an error event, and no [DONE]."""
    await emu.set_faults("onerouter", Faults(error_event_after=2))
    texts, error = await _content_lines(http, emu, "onerouter")
    assert texts[2:] == ["<error>"] and len(texts) == 3 and error is None
    stats = emu.stats("onerouter")
    assert stats.error_events == 1 and stats.statuses == {200: 1}


@pytest.mark.parametrize(
    ("kind", "content_type", "check"),
    [
        (Malformed.JSON, "application/json", lambda b: b.startswith(b"{") and not b.endswith(b"}")),
        (Malformed.HTML, "text/html", lambda b: b.startswith(b"<html>")),
        (Malformed.EMPTY, "application/json", lambda b: b == b""),
    ],
)
async def test_malformed_200s(
    emu: Emulator, http: aiohttp.ClientSession, kind: Malformed, content_type: str, check: object
) -> None:
    """malformed={kind: 1} answers a broken 200 of that kind."""
    await emu.set_faults("oneai", Faults(malformed={kind: 1.0}))
    async with http.post(
        chat_url(emu, "oneai"), json={"model": "kimi", "messages": HI}, headers={"Authorization": "Bearer k"}
    ) as r:
        body = await r.read()
        assert r.status == 200 and r.content_type == content_type
    assert check(body)  # type: ignore[operator]
    assert emu.stats("oneai").malformed == 1


async def test_malformed_stream_event(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """In a stream, malformed JSON is a data event that does not parse, and the stream ends."""
    await emu.set_faults("onetoken", Faults(malformed={"json": 1.0}))
    payload = {"model": "gpt-4o-mini", "messages": HI, "stream": True}
    async with http.post(chat_url(emu, "onetoken"), json=payload, headers={"Authorization": "Bearer k"}) as r:
        lines = [line async for line in r.content if line.startswith(b"data:")]
    assert len(lines) == 1
    with pytest.raises(json.JSONDecodeError):
        json.loads(lines[0][6:])


async def test_model_faults_override_the_gateways(emu: Emulator, http: aiohttp.ClientSession) -> None:
    """Faults set for one model apply to it alone, until cleared."""
    await emu.set_faults("oneai", Faults(errors={503: 1.0}), model="kimi")
    assert (await post(http, emu, "oneai", model="kimi"))[0] == 503
    assert (await post(http, emu, "oneai", model="glm-4"))[0] == 200
    await emu.set_faults("oneai", None, model="kimi")
    assert (await post(http, emu, "oneai", model="kimi"))[0] == 200
    assert emu.stats("oneai").by_model == {"kimi": 2, "glm-4": 1}


async def test_faults_change_on_a_schedule(
    emu: Emulator, http: aiohttp.ClientSession, fake_time: Loop
) -> None:
    """A schedule turns faults on and off at set times."""
    emu.run_schedule([(1.0, "oneai", Faults(errors={500: 1.0}), None), (2.0, "oneai", None, None)])
    seen = []
    for _ in range(3):  # on fake loop time (fake_time): the sleeps take no real time
        await asyncio.sleep(0.5)
        seen.append((await post(http, emu, "oneai"))[0])
        await asyncio.sleep(0.5)
    assert seen == [200, 500, 200]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"errors": {503: 0.7, 500: 0.5}}, "more than 1"),
        ({"errors": {418: 0.1}}, "status"),
        ({"errors": {500: 1.5}}, "from 0 to 1"),
        ({"malformed": {"xml": 0.1}}, "xml"),
        ({"latency": -1}, "non-negative"),
        ({"latency": {"median": 2, "p99": 1}}, "at least the median"),
        ({"cut_after": -1}, "whole number"),
        ({"outage": "sulk"}, "refuse"),
    ],
)
def test_bad_faults_are_refused(kwargs: dict[str, object], match: str) -> None:
    """Fault settings that make no sense raise ConfigError."""
    with pytest.raises((ConfigError, ValueError), match=match):
        Faults(**kwargs)  # type: ignore[arg-type]


async def test_refuse_is_for_whole_gateways(emu: Emulator) -> None:
    """A refusing outage cannot be set for one model, and unknown settings are refused."""
    with pytest.raises(ConfigError, match="without model"):
        await emu.set_faults("oneai", Faults(outage="refuse"), model="kimi")
    with pytest.raises(ConfigError, match="no model"):
        await emu.set_faults("oneai", Faults(), model="gpt-9")
    with pytest.raises(ConfigError, match="unknown fault setting"):
        await emu.update_faults("oneai", lateness=1)


async def test_a_faults_file_configures_everything(http: aiohttp.ClientSession) -> None:
    """A faults file sets tiers, balances, gateway and model faults, and parses strictly."""
    settings = FaultsFile.parse(
        {
            "seed": 7,
            "gateways": {
                "oneai": {"tier": "free", "retry_after": "http-date", "errors": {"503": 0.0}},
                "onetoken": {"balance_usd": 0, "latency": {"median": 0.0}},
                "onerouter": {"models": {"claude-3-5-sonnet@20240620": {"errors": {"500": 1}}}},
            },
            "schedule": [{"at": 5, "gateway": "oneai", "faults": {"errors": {"502": 1}}}],
        }
    )
    async with Emulator(seed=settings.seed) as emu:
        await emu.apply(settings)
        assert (await post(http, emu, "onetoken"))[0] == 402
        assert (await post(http, emu, "onerouter"))[0] == 500
        assert (await post(http, emu, "oneai"))[0] == 200
    with pytest.raises(ConfigError, match="unknown"):
        FaultsFile.parse({"gateways": {"oneai": {"lag": 1}}})
    with pytest.raises(ConfigError, match="tier"):
        FaultsFile.parse({"gateways": {"oneai": {"tier": "gold"}}})
