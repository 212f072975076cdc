"""Reading a whole response body, capped, without ever returning part of it as all of it."""

from __future__ import annotations

import aiohttp

__all__ = ["BodyTooLarge", "read_body"]


class BodyTooLarge(Exception):
    """The body is larger than the cap (internal; callers turn it into their own error)."""


async def read_body(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """Read to the end of the body, at most ``limit`` bytes.

    ``StreamReader.read(n)`` returns as soon as any bytes are there, so a single
    call can hand back a prefix; this reads until EOF. A connection that closes
    before the promised length raises aiohttp's ``ClientPayloadError``.

    Raises:
        BodyTooLarge: past ``limit`` bytes.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await response.content.read(65_536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(limit)
        chunks.append(chunk)
