"""RedisStore against a real redis-server: two stores stand for two processes sharing one namespace.

Real time (the server's clock decides), kept short; the fleet of real processes is in
``test_redis_fleet.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from switchyard.providers import ConfigError, Tier
from switchyard.router import (
    Account,
    Admitted,
    BreakerConfig,
    BreakerState,
    MemoryStore,
    RedisStore,
    Reported,
    Store,
    Verdict,
)

from .._redis import RedisServer, free_port

S, F, N, R = Verdict.SUCCESS, Verdict.FAILURE, Verdict.NEUTRAL, Verdict.REFUSED
CONFIG = BreakerConfig(jitter=0.0)
OPEN = Account("g", None, None)


def _now() -> float:
    return asyncio.get_running_loop().time()


@contextlib.asynccontextmanager
async def _stores(
    server: RedisServer, namespace: str, n: int = 2, **kw: Any
) -> AsyncIterator[list[RedisStore]]:
    """``n`` stores on one namespace (``timeout`` generous: these tests are not about slowness)."""
    kw.setdefault("timeout", 0.5)
    stores = [RedisStore(server.url, namespace=namespace, seed=i, **kw) for i in range(n)]
    try:
        yield stores
    finally:
        for store in stores:
            await store.aclose()


async def _admit(
    store: Store, account: Account = OPEN, tokens: int = 10, config: BreakerConfig = CONFIG
) -> Admitted:
    return await store.admit(account, tokens, "m", config, _now())


async def _end(
    store: Store, admitted: Admitted, verdicts: tuple[Verdict, Verdict], **kw: Any
) -> list[Reported]:
    """Settle and record one admitted call; what the record reported."""
    assert admitted.reservation is not None and admitted.permit is not None
    config = kw.pop("config", CONFIG)
    reported = await store.record(
        admitted.permit, config, verdicts, _now(), kw.pop("latency", 0.01), kw.pop("reason", "X")
    )
    await store.settle(admitted.reservation, kw.pop("used", 10), None, _now())
    return reported


async def test_two_processes_share_one_concurrency_cap(redis_server: RedisServer, namespace: str) -> None:
    """A tier's concurrency is the fleet's: what one store holds the other cannot take until settled."""
    account = Account("g", Tier(concurrency=2), None)
    async with _stores(redis_server, namespace) as (a, b):
        first, second = await _admit(a, account), await _admit(b, account)
        assert first.reservation is not None and second.reservation is not None
        third = await _admit(b, account)
        assert third.reservation is None and third.deferral is not None
        assert third.deferral.limit == "concurrency"
        # Nobody in b will hear a's release: the deferral says when to ask again, soon.
        assert third.deferral.until is not None and third.deferral.until - _now() <= 0.1
        assert b.snapshot(account, _now()).in_flight == 2
        await _end(a, first, (S, S))
        await a.aclose()  # sends what is queued
        fourth = await _admit(b, account)
        assert fourth.reservation is not None
        await _end(b, second, (S, S))
        await _end(b, fourth, (S, S))


async def test_requests_per_minute_are_shared(redis_server: RedisServer, namespace: str) -> None:
    """Three requests a minute between two stores: the fourth waits 20 s, and peek says so without I/O."""
    account = Account("g", Tier(rpm=3), None)
    async with _stores(redis_server, namespace) as (a, b):
        for store in (a, b, a):
            assert (await _admit(store, account)).reservation is not None
        fourth = await _admit(b, account)
        assert fourth.deferral is not None and fourth.deferral.limit == "requests/min"
        assert fourth.deferral.until == pytest.approx(_now() + 20.0, abs=0.5)
        peeked = b.peek(account, 10, _now())
        assert peeked is not None and peeked.limit == "requests/min"


async def test_tokens_are_corrected_to_real_usage(redis_server: RedisServer, namespace: str) -> None:
    """A reservation's unused tokens go back to the fleet's bucket when it is settled."""
    account = Account("g", Tier(tpm=1000), None)
    async with _stores(redis_server, namespace) as (a, b):
        first = await _admit(a, account, tokens=600)
        assert first.reservation is not None
        refused = await _admit(b, account, tokens=600)
        assert refused.deferral is not None and refused.deferral.limit == "tokens/min"
        await _end(a, first, (S, S), used=100)
        await a.aclose()
        again = await _admit(b, account, tokens=600)
        assert again.reservation is not None
        assert b.snapshot(account, _now()).tokens_left == pytest.approx(300, abs=5)


async def test_a_429_closes_the_account_for_the_fleet(redis_server: RedisServer, namespace: str) -> None:
    """One process's Retry-After keeps the others off the account until then."""
    account = Account("g", Tier(rpm=100), None)
    async with _stores(redis_server, namespace) as (a, b):
        await a.close_until(account, _now() + 5.0, _now())
        assert a.peek(account, 1, _now()) is not None  # at once, here
        await a.aclose()
        refused = await _admit(b, account)
        assert refused.deferral is not None and refused.deferral.limit == "Retry-After"
        assert refused.deferral.until == pytest.approx(_now() + 5.0, abs=0.2)


async def test_a_breaker_opened_by_one_process_refuses_the_others(
    redis_server: RedisServer, namespace: str
) -> None:
    """Three failures in a row at one store open the shared breakers; the other store is refused."""
    config = BreakerConfig(consecutive_failures=3, jitter=0.0)
    async with _stores(redis_server, namespace) as (a, b):
        reported: list[Reported] = []
        for _ in range(3):
            reported = await _end(a, await _admit(a, config=config), (F, F), config=config)
        assert [(r.gateway_model, r.transition.after, r.transition.reason) for r in reported] == [
            (None, BreakerState.OPEN, "3 failures in a row: X"),
            ("m", BreakerState.OPEN, "3 failures in a row: X"),
        ]
        refused = await _admit(b, config=config)
        assert refused.reservation is None and refused.permit is None and refused.deferral is None
        assert b.breaker("g", None, config).state is BreakerState.OPEN
        assert not b.breaker("g", "m", config).would_allow(_now())


async def test_one_probe_is_in_flight_across_the_fleet(redis_server: RedisServer, namespace: str) -> None:
    """After the break, the first store to ask gets the probe; the other is refused until it succeeds."""
    config = BreakerConfig(consecutive_failures=1, base_break=0.2, jitter=0.0)
    async with _stores(redis_server, namespace) as (a, b):
        await _end(a, await _admit(a, config=config), (F, F), config=config)
        await asyncio.sleep(0.25)  # real-time: the break is timed by redis-server's clock (TIME)
        probe = await _admit(a, config=config)
        assert probe.permit is not None and probe.permit.gateway_permission.probe
        assert [r.transition.after for r in probe.reported] == [BreakerState.HALF_OPEN] * 2
        refused = await _admit(b, config=config)
        assert refused.permit is None
        assert b.breaker("g", None, config).state is BreakerState.HALF_OPEN
        assert b.breaker("g", None, config).probes_in_flight == 1
        closed = await _end(a, probe, (S, S), config=config)
        assert [(r.transition.after, r.transition.reason) for r in closed] == [
            (BreakerState.CLOSED, "a probe succeeded")
        ] * 2
        assert (await _admit(b, config=config)).permit is not None


async def _script(store: Store, config: BreakerConfig) -> list[tuple[str | None, str, str, float | None]]:
    """A run of outcomes through ``store``: what its breakers reported (until relative to now)."""
    out: list[tuple[str | None, str, str, float | None]] = []

    def note(reported: list[Reported]) -> None:
        now = _now()
        for r in reported:
            t = r.transition
            out.append(
                (r.gateway_model, t.before.value, t.after.value, None if t.until is None else t.until - now)
            )

    for verdicts in ((S, S), (F, F), (S, F), (F, F)):  # 2 of 4 calls failed at the gateway, 3 at the model
        note(await _end(store, await _admit(store, config=config), verdicts, config=config))
    for wait in (0.25, 0.25):  # two slow failed probes: the second break is twice the first
        await asyncio.sleep(wait)  # real-time: the break is timed by redis-server's clock (TIME)
        probe = await _admit(store, config=config)
        note(probe.reported)
        note(await _end(store, probe, (F, F), latency=2.0, config=config))
    await asyncio.sleep(0.45)  # real-time: the break is timed by redis-server's clock (TIME)
    probe = await _admit(store, config=config)
    note(probe.reported)
    note(await _end(store, probe, (S, S), config=config))
    note(await _end(store, await _admit(store, config=config), (S, S), latency=1.0, config=config))
    note(
        await _end(
            store, await _admit(store, config=config), (R, N), reason="AuthenticationError", config=config
        )
    )
    return out


async def test_its_breakers_move_as_the_memory_stores_do(redis_server: RedisServer, namespace: str) -> None:
    """The same outcomes give the same transitions, worded alike, in a RedisStore and a MemoryStore:
    the failure ratio, half-open probes, slow trips growing the break, slow calls, a refused account."""
    config = BreakerConfig(min_calls=4, consecutive_failures=5, base_break=0.2, jitter=0.0, slow_call=0.5)
    memory = await _script(MemoryStore(seed=0), config)
    async with _stores(redis_server, namespace, n=1) as (redis,):
        shared = await _script(redis, config)
    assert [row[:3] for row in shared] == [row[:3] for row in memory]
    assert [row[3] for row in shared] == pytest.approx([row[3] for row in memory], abs=0.05)
    reasons = {row[2] for row in shared}
    assert reasons == {"open", "half_open", "closed"}
    assert len(shared) == 15


async def test_every_key_has_a_ttl_and_expires(redis_server: RedisServer, namespace: str) -> None:
    """Each key the scripts write has a time to live; left alone, the namespace empties."""
    config = BreakerConfig(window=1.0, max_break=1.0, base_break=0.2, consecutive_failures=1, jitter=0.0)
    account = Account("g", Tier(rpm=6000, tpm=600_000, concurrency=5), None)
    async with _stores(redis_server, namespace, n=1, lease=0.5) as (store,):
        ok = await store.admit(account, 100, "m", config, _now())
        await _end(store, ok, (S, S), config=config)
        failed = await store.admit(account, 100, "m", config, _now())
        await store.close_until(account, _now() + 0.3, _now())
        await store.aclose()
        held = redis_server.keys(namespace)
        await _end(store, failed, (F, F), config=config)
    keys = {**held, **redis_server.keys(namespace)}
    assert {k.rpartition("}")[2] for k in keys} == {
        ":acct",
        ":slots",
        ":gw:st",
        ":gw:win",
        ":m:m:st",
        ":m:m:win",
    }
    assert all(0 < ttl <= 3_000 for ttl in [*held.values(), *redis_server.keys(namespace).values()]), keys
    for _ in range(60):
        if not redis_server.keys(namespace):
            break
        await asyncio.sleep(0.1)  # real-time: keys expire by redis-server's own TTL clock
    assert redis_server.keys(namespace) == {}


async def test_an_admission_its_caller_abandoned_is_given_back(
    redis_server: RedisServer, namespace: str
) -> None:
    """Cancelled while its script runs, an admission's slot is given back when the answer comes."""
    account = Account("g", Tier(concurrency=1), None)
    async with _stores(redis_server, namespace, n=1) as (store,):
        task = asyncio.create_task(store.admit(account, 10, "m", CONFIG, _now()))
        await asyncio.sleep(0)  # it queues its script...
        task.cancel()  # ...and is cancelled before the answer
        with pytest.raises(asyncio.CancelledError):
            await task
    assert redis_server.command("ZCARD", f"switchyard:{{{namespace}:g}}:slots") == 0


async def test_without_redis_it_holds_the_tier_divided_by_the_replicas(
    namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listening: admissions are local, at a quarter of the tier for four replicas; one warning,
    one store.fallback notice, and the password appears nowhere."""
    account = Account("g", Tier(concurrency=8), None)
    store = RedisStore(f"redis://:hunter2@127.0.0.1:{free_port()}", namespace=namespace, replicas=4)
    with caplog.at_level(logging.INFO, logger="switchyard"):
        admitted = [await _admit(store, account) for _ in range(3)]
    await store.aclose()
    assert [a.reservation is not None for a in admitted] == [True, True, False]
    assert admitted[2].deferral is not None and admitted[2].deferral.limit == "concurrency"
    notices = [n.name for a in admitted for n in a.notices]
    assert notices == ["store.fallback"]
    warnings = [r for r in caplog.records if r.name == "switchyard" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "hunter2" not in caplog.text and "hunter2" not in repr(store) and "hunter2" not in str(notices)


async def test_a_stalled_redis_costs_one_timeout_then_nothing(own_redis: RedisServer, namespace: str) -> None:
    """A paused server: one admission waits out the timeout, the next are local at once; resumed, the
    store reconnects and says so."""
    account = Account("g", Tier(concurrency=8), None)
    store = RedisStore(own_redis.url, namespace=namespace, timeout=0.05)
    try:
        assert (await _admit(store, account)).reservation is not None
        own_redis.pause()
        loop = asyncio.get_running_loop()
        started = loop.time()
        first = await _admit(store, account)
        second = await _admit(store, account)
        took = loop.time() - started
        assert first.reservation is not None and second.reservation is not None
        assert took < 0.3 and store.fallbacks == 2
        assert [n.name for n in first.notices] == ["store.fallback"]
        own_redis.resume()
        for _ in range(100):
            if store.available:
                break
            await asyncio.sleep(0.05)  # real-time: the reconnect waits on a real socket to a resumed server
        assert store.available
        third = await _admit(store, account)
        assert [n.name for n in third.notices] == ["store.recovered"]
        assert store.fallbacks == 2
    finally:
        own_redis.resume()
        await store.aclose()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"namespace": ""}, "namespace"),
        ({"namespace": "a b"}, "namespace"),
        ({"namespace": "x", "replicas": 0}, "replicas"),
        ({"namespace": "x", "timeout": 0}, "timeout"),
        ({"namespace": "x", "lease": float("inf")}, "lease"),
        ({"namespace": "x", "refresh": -1}, "refresh"),
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Each bad setting is a ConfigError naming it."""
    with pytest.raises(ConfigError, match=message):
        RedisStore("redis://127.0.0.1:1", **kwargs)


def test_a_url_must_name_redis() -> None:
    """Only redis://, rediss:// and unix:// URLs are taken."""
    with pytest.raises(ConfigError, match="redis://"):
        RedisStore("http://127.0.0.1:6379", namespace="x")
