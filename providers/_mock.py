"""The in-memory transport for tests: a function from a :class:`WireRequest` to a :class:`Response`."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ._errors import RouterError
from ._exchange import Response, WireRequest
from ._transport import Timeouts, check_origin

__all__ = ["Handler", "MockTransport"]


Handler = Callable[[WireRequest], Response | Awaitable[Response]]


class MockTransport:
    """An in-memory transport: ``handler(wire)`` returns the :class:`Response` (or raises an error).

    A handler usually gives the body as bytes (``Response(200, {}, b"...")``);
    a streamed request reads the same bytes as its stream. Every request is kept
    in :attr:`requests`.
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

    async def request(self, wire: WireRequest, timeouts: Timeouts) -> Response:
        """Answer from the handler."""
        if self.closed:
            raise RouterError("this transport is closed; make a new Router")
        check_origin(wire)
        self.requests.append(wire)
        result = self._handler(wire)
        if inspect.isawaitable(result):
            result = await result
        assert isinstance(result, Response)
        return result

    async def aclose(self) -> None:
        """Mark the transport closed."""
        self.closed = True
