"""One connection to Redis for a :class:`~._redis.RedisStore`: redis-py's (its URL parsing, TLS, auth
and hiredis reader), with the commands written here as RESP and the scripts loaded on connect.

No pool and no retries of redis-py's own: the link (``_redis_link.py``) bounds every call,
and a failure means "answer locally". Packing a command here costs a quarter of what
redis-py's pipeline costs; the replies are read by redis-py (hiredis when installed).
"""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Sequence
from typing import Any

from ._redis_lua import SCRIPTS

__all__ = ["Arg", "Connection", "where"]

Arg = str | int | float
SHAS = {name: hashlib.sha1(source.encode()).hexdigest() for name, source in SCRIPTS.items()}


def _pack(command: Sequence[bytes | Arg]) -> bytes:
    """One command in RESP: an array of bulk strings (numbers as Lua's ``tonumber`` reads them)."""
    out = [b"*%d\r\n" % len(command)]
    for part in command:
        if isinstance(part, str):
            part = part.encode()
        elif not isinstance(part, bytes):
            part = repr(part).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(part), part))
    return b"".join(out)


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
        await self.write([(b"SCRIPT", b"LOAD", source) for source in SCRIPTS.values()])
        for _ in SCRIPTS:
            reply = await self.read()
            if isinstance(reply, Exception):
                raise reply
        self.loaded = True

    async def write(self, commands: Sequence[Sequence[bytes | Arg]]) -> None:
        """Send ``commands`` in one write, without waiting for any reply (RESP pipelining: Redis
        answers the commands of one connection in the order they came)."""
        await self._conn.send_packed_command(b"".join(_pack(c) for c in commands), check_health=False)

    async def read(self) -> Any:
        """The next reply (an error reply as its exception)."""
        try:
            return await self._conn.read_response()
        except self._error as exc:
            return exc

    async def close(self) -> None:
        """Close the connection."""
        await self._conn.disconnect()
