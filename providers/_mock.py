"""The in-memory transport for tests: a function from a :class:`WireRequest` to a :class:`RawResponse`."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from ._errors import RouterError
from ._exchange import RawResponse, StreamResponse, WireRequest
from ._transport import Timeouts, check_origin

__all__ = ["Handler", "MockTransport"]


Handler = Callable[[WireRequest], RawResponse | Awaitable[RawResponse]]


class MockTransport:
    """An in-memory transport: ``handler(wire)`` returns the response (or raises an error).

    Streams are served from the same handler: the response body is split into
    lines. Every request is kept in :attr:`requests`.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.requests: list[WireRequest] = []
        self.closed = False

    @property
    def honours_timeouts(self) -> bool:
        """False: a handler may take as long as it likes; the router bounds each request."""
        return False

    @property
    def connections_per_host(self) -> int | None:
        """None: no connection pool."""
        return None

    async def _call(self, wire: WireRequest) -> RawResponse:
        if self.closed:
            raise RouterError("this transport is closed; make a new Router")
        check_origin(wire)
        self.requests.append(wire)
        result = self._handler(wire)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, RawResponse)
        return result

    async def send(self, wire: WireRequest, timeouts: Timeouts) -> RawResponse:
        """Answer from the handler."""
        return await self._call(wire)

    @asynccontextmanager
    async def stream(self, wire: WireRequest, timeouts: Timeouts) -> AsyncIterator[StreamResponse]:
        """Answer from the handler, body split into lines."""
        yield _MockStream(await self._call(wire))

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True


class _MockStream:
    def __init__(self, response: RawResponse) -> None:
        self.status = response.status
        self.headers = response.headers
        self._body = response.body

    async def read(self) -> bytes:
        return self._body

    async def lines(self) -> AsyncIterator[bytes]:
        for line in self._body.splitlines(keepends=True):
            yield line
