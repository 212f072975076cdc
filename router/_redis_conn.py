"""One connection to Redis for a :class:`~._redis.RedisStore`: redis-py's (its URL parsing, TLS, auth
and hiredis reader), with the commands written here as RESP and the scripts loaded on connect.

No pool and no retries of redis-py's own: the link (``_redis_link.py``) bounds every call,
and a failure means "answer locally". Packing a command here costs a quarter of what
redis-py's pipeline object costs; the replies are read by redis-py (hiredis when installed).
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Sequence
from typing import Any

from ._redis_lua import SCRIPTS

__all__ = ["Arg", "Connection", "evalsha", "where"]

Arg = str | int | float
SHAS = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in SCRIPTS.items()}


def _pack(command: Sequence[bytes | Arg]) -> bytes:
    """One command in RESP: an array of bulk strings (numbers as Lua's ``tonumber`` reads them)."""
    return b"*%d\r\n" % len(command) + _bulks(command)


def _bulks(parts: Sequence[bytes | Arg]) -> bytes:
    out = []
    for part in parts:
        if isinstance(part, str):
            part = part.encode()
        elif not isinstance(part, bytes):
            part = repr(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


_HEADS: dict[tuple[str, tuple[str, ...]], bytes] = {}


def evalsha(script: str, keys: tuple[str, ...], args: Sequence[Arg]) -> bytes:
    """``EVALSHA`` of ``script`` on ``keys`` with ``args``, in RESP; the part before the arguments
    (the script's hash and the keys, the same for every call on one gateway and model) is kept."""
    head = _HEADS.get((script, keys))
    if head is None:
        if len(_HEADS) > 4096:
            _HEADS.clear()
        head = _HEADS[(script, keys)] = _bulks([b"EVALSHA", SHAS[script], len(keys), *keys])
    return b"*%d\r\n" % (3 + len(keys) + len(args)) + head + _bulks(args)


def where(url: str) -> str:
    """The server, for log lines and reprs: scheme, host, port and database, never a password."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    return f"{parts.scheme}://{parts.hostname or 'localhost'}:{parts.port or 6379}{parts.path or ''}"


class Connection:
    """One connection, made on first use; the scripts are loaded once it is."""

    __slots__ = ("_conn", "_error", "loaded")

    def __init__(self, url: str) -> None:
        # redis-py is imported by the store's constructor already (it takes ~100 ms): never
        # inside a bounded call.
        from redis.asyncio import ConnectionPool
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ResponseError

        pool = ConnectionPool.from_url(url, retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self._conn: Any = pool.connection_class(**pool.connection_kwargs)
        self._error = ResponseError
        self.loaded = False

    async def open(self) -> None:
        """Connect and load the scripts (once; nothing else may be on the wire meanwhile)."""
        if self.loaded:
            return
        await self._conn.connect()
        await self.write(b"".join(_pack((b"SCRIPT", b"LOAD", source)) for source in SCRIPTS.values()))
        for _ in SCRIPTS:
            reply = await self.read()
            if isinstance(reply, Exception):
                raise reply
        self.loaded = True

    async def write(self, packed: bytes) -> None:
        """Send commands packed in RESP in one write, without waiting for any reply (pipelining:
        Redis answers the commands of one connection in the order they came)."""
        await self._conn.send_packed_command(packed, check_health=False)

    async def read(self) -> Any:
        """The next reply (an error reply as its exception)."""
        try:
            return await self._conn.read_response()
        except self._error as exc:
            return exc

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.disconnect()
