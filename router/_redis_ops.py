"""The operations of a :class:`~._redis.RedisStore` that go to Redis: each builds its script's keys
and arguments, queues it on the lane, and reads its answer (``_redis_lua.py`` has the scripts).

Admission and a record that may change a breaker's state wait for their answer (bounded
by the link); a settle, a 429's closure and a record that cannot change a state are written
and nobody waits for them. Every answer also updates the mirrors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Final

from ..policies import Deferral, Reservation
from ._breaker import BreakerConfig, Permission
from ._redis_link import Unavailable
from ._redis_lua import breaker_keys
from ._redis_mirror import Reply, seconds, transition
from ._redis_parts import Held, Parts, Pass, limits
from ._store import Account, Admitted, Reported, Verdict

__all__ = ["admit", "close", "record", "settle"]

_NONE: list[Reported] = []  # shared and never appended to: "no transitions"
_CODES: Final = {Verdict.SUCCESS: "S", Verdict.FAILURE: "F", Verdict.NEUTRAL: "N", Verdict.REFUSED: "R"}
_DECISIVE: Final = (Verdict.FAILURE, Verdict.REFUSED)


async def admit(
    parts: Parts,
    account: Account,
    tokens: int,
    model: str,
    config: BreakerConfig,
    member: str,
    gate: Reservation,
) -> Admitted:
    """The admit script: reserve on the account and take both breakers' permission, or neither.

    Raises:
        Unavailable: Redis is down or did not answer in time.
    """
    gateway, tier = account.gateway, account.tier
    rpm, tpm, cap = limits(tier)
    base = parts.base(gateway)
    g_state, g_probes, _ = breaker_keys(base, None)
    m_state, m_probes, _ = breaker_keys(base, model)
    keys = (f"{base}:acct", f"{base}:slots", g_state, g_probes, m_state, m_probes)
    args = (
        rpm,
        tpm,
        cap,
        tokens,
        member,
        parts.leases.lease,
        config.probes,
        config.window + config.max_break,
    )

    abandoned = False

    def learn(reply: Reply, at: float) -> None:
        parts.mirrors.account(gateway).learn(reply[9:14], at)
        parts.mirrors.learn(gateway, model, config, reply[14:18], reply[18:22], at)
        if abandoned:
            _undo(parts, reply, account, model, tokens, member, config)

    link = parts.link
    future = link.ask("admit", keys, args, learn)
    try:
        reply = await link.wait(future)
    except BaseException:
        # Cancelled (or no answer): whatever Redis grants, now or when its answer comes, goes back.
        if future.done() and not future.cancelled() and (answered := future.result()) is not None:
            _undo(parts, answered, account, model, tokens, member, config)
        else:
            abandoned = True
        raise
    at = asyncio.get_running_loop().time()
    reported = [
        Reported(gateway, which, t)
        for which, code in ((None, reply[5]), (model, reply[8]))
        if (t := transition(code, b"o", at, 0, 0, "", config)) is not None
    ] or _NONE
    status = reply[0]
    if status == b"defer":
        limit = reply[1].decode()
        until = at + seconds(reply[2])
        if limit == "concurrency":  # nobody here hears when another process frees one: ask again soon
            until = min(until, at + parts.poll * parts.rng.uniform(0.5, 1.5))
        return Admitted(None, None, Deferral(gateway, limit, until), reported, link.take_notices())
    if status != b"ok":
        return Admitted(None, None, None, reported, link.take_notices())
    g_probe, m_probe = reply[3] == b"1", reply[6] == b"1"
    if cap:
        parts.leases.hold(f"{base}:slots", member)
    if g_probe:
        parts.leases.hold(g_probes, f"{member}:g")
    if m_probe:
        parts.leases.hold(m_probes, f"{member}:m")
    reservation = Held(gateway, tokens, gate=gate, tier=tier, member=member if rpm or tpm or cap else "")
    g, m = Permission(g_probe, int(reply[4])), Permission(m_probe, int(reply[7]))
    return Admitted(
        reservation, Pass(gateway, model, g, m, member, None), None, reported, link.take_notices()
    )


def _undo(
    parts: Parts,
    reply: Reply | None,
    account: Account,
    model: str,
    tokens: int,
    member: str,
    config: BreakerConfig,
) -> None:
    """Give back what an admission nobody waited for took."""
    if not reply or reply[0] != b"ok":
        return
    rpm, tpm, cap = limits(account.tier)
    base = parts.base(account.gateway)
    if rpm or tpm or cap:
        args = (member, tokens, 0, rpm, tpm, cap, "", "")
        parts.background("settle", (f"{base}:acct", f"{base}:slots"), args)
    if reply[3] == b"1" or reply[6] == b"1":
        g, m = Permission(reply[3] == b"1", int(reply[4])), Permission(reply[6] == b"1", int(reply[7]))
        _send_record(
            parts, Pass(account.gateway, model, g, m, member, None), config, ("N", "N"), False, False
        )


def settle(parts: Parts, held: Held, used_tokens: int | None, remaining: Mapping[str, float] | None) -> None:
    """Queue the settle script: free the slot lease, correct the tokens, lower the buckets."""
    gateway = held.gateway
    rpm, tpm, cap = limits(held.tier)
    base = parts.base(gateway)
    mirror = parts.mirrors.account(gateway)
    if cap:
        parts.leases.drop(f"{base}:slots", held.member)
        mirror.slots = max(0, mirror.slots - 1)
    left = remaining or {}
    requests_left = left.get("requests", "") if rpm else ""
    tokens_left = left.get("tokens", "") if tpm else ""
    used = used_tokens or 0
    if not cap and not (tpm and used != held.tokens) and requests_left == tokens_left == "":
        return  # nothing held in Redis to give back or correct
    args = (held.member, held.tokens, used, rpm, tpm, cap, requests_left, tokens_left)
    parts.background("settle", (f"{base}:acct", f"{base}:slots"), args, mirror.learn)


def close(parts: Parts, account: Account, until: float, now: float) -> None:
    """Close the account in this process's mirror at once, and queue the close script."""
    mirror = parts.mirrors.account(account.gateway)
    mirror.closed_until = max(mirror.closed_until, until)

    def learn(reply: Reply, at: float) -> None:
        mirror.closed_until = max(mirror.closed_until, at + seconds(reply[0]))

    base = parts.base(account.gateway)
    parts.background("close", (f"{base}:acct",), (max(0.0, until - now),), learn)


async def record(
    parts: Parts,
    permit: Pass,
    config: BreakerConfig,
    verdicts: tuple[Verdict, Verdict],
    latency: float,
    reason: str,
) -> list[Reported]:
    """The record script: queued when it cannot change a state, else awaited (bounded) for its
    transitions. A slow success counts as a failure, as :class:`CircuitBreaker` counts it."""
    outcomes, reasons = list(verdicts), [reason, reason]
    slow_call = config.slow_call
    if slow_call is not None and latency > slow_call:
        for i, verdict in enumerate(outcomes):
            if verdict is Verdict.SUCCESS:
                outcomes[i] = Verdict.FAILURE
                reasons[i] = f"a call took {latency:.3g}s, over the slow-call limit {slow_call:g}s"
    probes = permit.gateway_permission.probe or permit.model_permission.probe
    if not probes and all(v is Verdict.NEUTRAL for v in outcomes):
        return _NONE  # a closed breaker's permission given back: nothing to tell
    decisive = any(v in _DECISIVE for v in outcomes) or (probes and Verdict.SUCCESS in outcomes)
    codes = (_CODES[outcomes[0]], _CODES[outcomes[1]])
    future = _send_record(parts, permit, config, codes, latency >= config.slow_failure, decisive)
    if future is None:
        return _NONE
    try:
        reply = await parts.link.wait(future)
    except Unavailable:
        return _NONE  # it still goes out if Redis answers; its transitions go unreported
    at = asyncio.get_running_loop().time()
    reported = []
    for offset, which, why in ((0, None, reasons[0]), (11, permit.gateway_model, reasons[1])):
        until = at + seconds(reply[offset + 2])
        n1, n2 = int(reply[offset + 3]), int(reply[offset + 4])
        found = transition(reply[offset], reply[offset + 1], until, n1, n2, why, config)
        if found is not None:
            reported.append(Reported(permit.gateway, which, found))
    return reported or _NONE


def _send_record(
    parts: Parts, permit: Pass, config: BreakerConfig, codes: tuple[str, str], slow: bool, answer: bool
) -> asyncio.Future[Reply | None] | None:
    """Queue the record script; with ``answer``, the future of its reply (None: not sent)."""
    gateway, model, member = permit.gateway, permit.gateway_model, permit.member
    base = parts.base(gateway)
    g_keys, m_keys = breaker_keys(base, None), breaker_keys(base, model)
    g, m = permit.gateway_permission, permit.model_permission
    if g.probe:
        parts.leases.drop(g_keys[1], f"{member}:g")
    if m.probe:
        parts.leases.drop(m_keys[1], f"{member}:m")
    jitter = config.jitter
    g_draw, m_draw = (parts.rng.uniform(-jitter, jitter) if jitter else 0.0 for _ in range(2))
    args = (
        config.window, config.failure_ratio, config.min_calls, config.consecutive_failures,
        config.base_break, config.break_multiplier, config.max_break, config.account_break,
        config.window + config.max_break, int(slow), member,
        codes[0], int(g.probe), g.epoch, g_draw, codes[1], int(m.probe), m.epoch, m_draw,
    )  # fmt: skip

    def learn(reply: Reply, at: float) -> None:
        g_view, m_view = parts.mirrors.pair(gateway, model, config)
        g_view.count(reply[9], reply[10], at)
        m_view.count(reply[20], reply[21], at)
        parts.mirrors.learn(gateway, model, config, reply[5:9], reply[16:20], at)

    if not answer:
        parts.background("record", (*g_keys, *m_keys), args, learn)
        return None
    try:
        return parts.link.ask("record", (*g_keys, *m_keys), args, learn)
    except Unavailable:
        parts.link.dropped += 1
        return None
