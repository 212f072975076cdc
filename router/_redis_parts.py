"""What the modules of a :class:`~._redis.RedisStore` share: one value built once (:class:`Parts`),
the reservation and permit it hands out, and the leases it renews."""

from __future__ import annotations

import asyncio
import importlib.util
import math
import random
from collections.abc import Sequence

import attrs

from ..policies import Reservation
from ..providers import ConfigError, Tier
from ._breaker import Permission
from ._redis_link import Arg, Link, OnReply, Unavailable
from ._redis_lua import prefix
from ._redis_mirror import Mirrors
from ._store import Permit

__all__ = ["Held", "Leases", "Parts", "Pass", "check", "limits", "seconds"]


def check(url: object, namespace: object, replicas: object) -> None:
    """Refuse a RedisStore's settings that make no sense, before anything runs.

    Raises:
        ConfigError: naming the setting, or when redis-py is not installed.
    """
    if not isinstance(url, str) or not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("RedisStore url must start with redis://, rediss:// or unix://")
    if not isinstance(namespace, str) or not namespace or any(c.isspace() or c in "{}" for c in namespace):
        raise ConfigError(
            f"RedisStore namespace must be a non-empty name without spaces or braces, not {namespace!r}"
        )
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 1:
        raise ConfigError(f"RedisStore replicas must be a whole number, at least 1, not {replicas!r}")
    if importlib.util.find_spec("redis") is None:
        raise ConfigError("RedisStore needs redis-py: pip install 'switchyard[redis]'")


def seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as seconds: positive (or, with ``zero``, not negative) and finite.

    Raises:
        ConfigError: naming the setting and the value.
    """
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else math.nan
    if not (number >= 0 if zero else number > 0) or not number < math.inf:
        what = "zero or more" if zero else "a positive number of"
        raise ConfigError(f"RedisStore {name} must be {what} seconds, not {value!r}")
    return float(number)


def limits(tier: Tier | None) -> tuple[int, int, int]:
    """(rpm, tpm, concurrency) as the scripts take them, 0 for none."""
    return (0, 0, 0) if tier is None else (tier.rpm or 0, tier.tpm or 0, tier.concurrency or 0)


@attrs.define
class Held(Reservation):
    """A reservation through a RedisStore: its share of this process's gate (connections, slow
    start), and where the tier's part is held: a lease in Redis (``member``), the local
    fallback (``local``), or nowhere (an untiered account)."""

    gate: Reservation = attrs.field(kw_only=True)
    tier: Tier | None = attrs.field(kw_only=True, default=None)
    member: str = attrs.field(kw_only=True, default="")
    local: Reservation | None = attrs.field(kw_only=True, default=None)


class Pass(Permit):
    """A permit through a RedisStore: its lease id in Redis, or the local fallback's permit."""

    __slots__ = ("local", "member")

    def __init__(
        self, gateway: str, model: str, g: Permission, m: Permission, member: str, local: Permit | None
    ) -> None:
        super().__init__(gateway, model, g, m)
        self.member = member
        self.local = local


class Leases:
    """The slot and probe leases this process holds, renewed every third of a lease while any are."""

    __slots__ = ("_held", "_link", "_renewer", "lease")

    def __init__(self, link: Link, lease: float) -> None:
        self._link = link
        self.lease = lease
        self._held: dict[str, set[str]] = {}  # lease set -> members
        self._renewer: asyncio.Task[None] | None = None

    def hold(self, key: str, member: str) -> None:
        """Renew ``member`` of ``key`` until :meth:`drop`."""
        self._held.setdefault(key, set()).add(member)
        loop = asyncio.get_running_loop()
        renewer = self._renewer
        if renewer is None or renewer.done() or renewer.get_loop() is not loop:
            self._renewer = loop.create_task(self._renew())

    def drop(self, key: str, member: str) -> None:
        """Stop renewing ``member`` of ``key``."""
        members = self._held.get(key)
        if members is not None:
            members.discard(member)
            if not members:
                del self._held[key]

    async def _renew(self) -> None:
        while self._held:
            await asyncio.sleep(self.lease / 3)
            for key, members in list(self._held.items()):
                try:
                    self._link.submit("renew", (key,), (self.lease, *members))
                except Unavailable:
                    self._link.dropped += 1

    async def aclose(self) -> None:
        """Stop renewing (a later hold starts again)."""
        renewer, self._renewer = self._renewer, None
        if renewer is not None and not renewer.done() and renewer.get_loop() is asyncio.get_running_loop():
            renewer.cancel()
            await asyncio.gather(renewer, return_exceptions=True)


@attrs.frozen
class Parts:
    """A RedisStore's shared parts and settings."""

    namespace: str
    link: Link
    mirrors: Mirrors
    leases: Leases
    poll: float
    rng: random.Random

    def base(self, gateway: str) -> str:
        """The start of ``gateway``'s keys."""
        return prefix(self.namespace, gateway)

    def background(
        self, script: str, keys: tuple[str, ...], args: Sequence[Arg], on_reply: OnReply | None = None
    ) -> None:
        """Queue a write nobody waits for; count it dropped when Redis is down."""
        try:
            self.link.submit(script, keys, args, on_reply)
        except Unavailable:
            self.link.dropped += 1
