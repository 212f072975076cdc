"""What ``router.stream()`` returns: an answer arriving in chunks."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable
from types import TracebackType

from ..providers import StreamChunk

__all__ = ["Stream"]


class Stream:
    """An answer arriving as :class:`StreamChunk` values; iterate it with ``async for``.

    Closing it (leaving ``async with``, ``aclose()``, cancelling the consumer, or
    breaking out of the loop once nothing holds it) closes the upstream response
    at once and gives back its rate-limit slot and breaker permission.
    """

    __slots__ = ("_chunks",)

    def __init__(self, chunks: AsyncGenerator[StreamChunk, None]) -> None:
        self._chunks = chunks

    def __aiter__(self) -> Stream:
        return self

    def __anext__(self) -> Awaitable[StreamChunk]:
        return self._chunks.__anext__()  # the generator's own awaitable: no coroutine per chunk

    async def aclose(self) -> None:
        """Stop the stream and close the upstream."""
        await self._chunks.aclose()

    async def __aenter__(self) -> Stream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
