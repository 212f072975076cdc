"""The transport: the one place requests meet the network.

A transport has one call, :meth:`Transport.request`: it sends a
:class:`WireRequest` and gives back the :class:`Response` once its headers
arrive, with the body as a stream to read whole or as it comes (httpx's
``handle_async_request`` is the model). :class:`AiohttpTransport` owns (or
borrows) one ``aiohttp.ClientSession`` and maps every aiohttp and timeout
exception to switchyard's error tree, once, here, chained to a key-free stand-in
(:class:`TransportFailure`). Its in-memory double for tests,
:class:`~switchyard.providers.MockTransport`, is in ``_mock.py``.

Timeouts per attempt (:class:`Timeouts`): ``connect`` bounds the TCP/TLS
connect, ``first_byte`` bounds the wait for the response headers, ``total`` bounds
the whole exchange of a complete answer, body included. A stream is not held to
``total``: its headers are due within ``first_token``, and the router holds its
body to the first-token and stall limits. Redirects are never followed, so a key
never leaves its gateway's origin.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, Final, Protocol

import aiohttp
import attrs
from yarl import URL

from ._body import BodyTooLarge, read_body
from ._errors import (
    ConfigError,
    MalformedReply,
    RouterError,
    StreamCut,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from ._exchange import Response, WireRequest
from ._standin import chained as _chained

__all__ = ["AiohttpTransport", "Timeouts", "Transport", "check_origin"]

_MAX_BODY: Final = 64 * 1024 * 1024


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None and attribute.name == "first_byte":
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigError(f"Timeouts.{attribute.name} must be a positive number of seconds, not {value!r}")


@attrs.frozen
class Timeouts:
    """Per-attempt time limits, in seconds.

    Args:
        connect: to open the connection.
        first_byte: to receive the response headers; None means up to ``total``
            (``first_token`` for streams). For a complete (non-streamed) reply the
            headers come when the model is done, so this is the generation time.
        total: for the whole exchange of a complete reply, body included. A stream
            is not held to it: it lasts as long as it keeps producing, within the
            request's deadline.
        first_token: for a stream, from sending to its first content chunk.
        stall: for a stream, the longest wait between two chunks.
    """

    connect: float = attrs.field(default=10.0, validator=_positive)
    first_byte: float | None = attrs.field(default=None, validator=_positive)
    total: float = attrs.field(default=120.0, validator=_positive)
    first_token: float = attrs.field(default=30.0, validator=_positive)
    stall: float = attrs.field(default=20.0, validator=_positive)


class Transport(Protocol):
    """Sends :class:`WireRequest` values; raises only switchyard errors.

    ``honours_timeouts``: the transport itself holds every exchange to the
    :class:`Timeouts` it is given (the router then sets no timer of its own per
    request; otherwise it bounds each request by its deadline). ``connections_per_host``:
    the most connections it opens to one host, or None; the router caps each
    gateway's requests in flight at it, so none waits inside the client with its
    timeouts running.
    """

    @property
    def honours_timeouts(self) -> bool:
        """Whether the transport enforces the :class:`Timeouts` it is given."""
        ...

    @property
    def connections_per_host(self) -> int | None:
        """The most connections to one host (None: no limit)."""
        ...

    async def request(self, wire: WireRequest, timeouts: Timeouts) -> Response:
        """Send ``wire``; the :class:`Response` once its headers arrive, the body still to read.

        The caller reads the body (whole, or as it arrives for a ``wire.stream``)
        and then closes the response, whatever happened.

        Raises:
            UpstreamTimeout, UpstreamConnectionError: when no response arrived.
            ConfigError: when the key would go to another origin than its own.
        """
        ...

    async def aclose(self) -> None:
        """Release what the transport owns."""
        ...


# (url, key origin) pairs already found to match, by the URL's identity (URLs are immutable; the
# entry holds both, so an id cannot be reused while it is kept): a gateway's requests all carry
# its one chat URL, so the origin is worked out once, not per request.
_SAME_ORIGIN: dict[int, tuple[URL, URL]] = {}


def check_origin(wire: WireRequest) -> None:
    """Refuse to send a key to another origin than its own.

    Raises:
        ConfigError: when ``wire`` carries a key and its URL is not on ``key_origin``.
    """
    if "Authorization" not in wire.headers:
        return
    url, origin = wire.url, wire.key_origin
    known = _SAME_ORIGIN.get(id(url))
    if known is not None and known[0] is url and known[1] is origin:
        return
    if url.origin() != origin:
        raise ConfigError(f"refusing to send {wire.gateway}'s key to another origin ({url.origin()})")
    if len(_SAME_ORIGIN) >= 256:
        _SAME_ORIGIN.clear()
    _SAME_ORIGIN[id(url)] = (url, origin)


class AiohttpTransport:
    """A transport over one ``aiohttp.ClientSession``.

    Args:
        session: a session to use; it is never closed by switchyard. When None, one
            is created on first use (with a connection limit per host and no cookie
            jar) and closed by :meth:`aclose`.
        limit: the most connections in all, for a session made here.
        limit_per_host: the most connections to one host, for a session made here.
    """

    def __init__(
        self, session: aiohttp.ClientSession | None = None, *, limit: int = 256, limit_per_host: int = 64
    ) -> None:
        if limit <= 0 or limit_per_host <= 0:
            raise ConfigError("connection limits must be positive")
        self._session = session
        self._owned = session is None
        self._limit = limit
        self._limit_per_host = limit_per_host
        self._closed = False
        self._client_timeouts: dict[Timeouts, aiohttp.ClientTimeout] = {}
        self._last_timeouts: tuple[Timeouts | None, aiohttp.ClientTimeout] = (None, aiohttp.ClientTimeout())

    @property
    def honours_timeouts(self) -> bool:
        """True: aiohttp's own timeouts and the first-byte timer hold every exchange."""
        return True

    @property
    def connections_per_host(self) -> int | None:
        """The most connections this transport opens to one host (None: no limit).

        The router caps each gateway's requests in flight at this, so none waits
        inside aiohttp for a connection with its timeouts running.
        """
        if self._session is None:
            limits = (self._limit_per_host, self._limit)
        else:
            connector = self._session.connector
            if connector is None:
                return None
            limits = (connector.limit_per_host, connector.limit)
        positive = [n for n in limits if n > 0]  # aiohttp's 0 means no limit
        return min(positive) if positive else None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The session, created on first use."""
        if self._closed:
            raise RouterError("this transport is closed; make a new Router")
        if self._session is None:
            connector = aiohttp.TCPConnector(limit=self._limit, limit_per_host=self._limit_per_host)
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
                read_bufsize=2**20,  # buffers up to 2 MiB (one SSE line's limit) before pausing the socket
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if it was made here; a borrowed one is left open."""
        self._closed = True
        if self._owned and self._session is not None:
            await self._session.close()
        self._session = None

    def _timeout(self, timeouts: Timeouts, stream: bool) -> aiohttp.ClientTimeout:
        if stream:
            # No total for a stream (the router holds it to first-token, stall and the deadline).
            return aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect)
        last = self._last_timeouts
        if last[0] is timeouts:  # the usual case: the router's own Timeouts, unclipped
            return last[1]
        cached = self._client_timeouts.get(timeouts)
        if cached is not None:
            self._last_timeouts = (timeouts, cached)
        else:
            cached = aiohttp.ClientTimeout(total=timeouts.total, sock_connect=timeouts.connect)
            if len(self._client_timeouts) < 1024:  # per-attempt clipped limits vary; keep the cache small
                self._client_timeouts[timeouts] = cached
        return cached

    async def request(self, wire: WireRequest, timeouts: Timeouts) -> Response:
        """Send ``wire`` and wait for the headers: under the first-byte limit when it is tighter
        than the total (a stream's headers are due within ``first_token``), else under aiohttp's
        own total timeout, which goes on to bound the body of a complete answer (at most 64 MiB)."""
        check_origin(wire)
        stream = wire.stream
        session = self._session  # the property's checks only until the session exists
        if session is None:
            session = self.session
        request = session.request(
            wire.method,
            wire.url,
            data=wire.body,
            headers=wire.headers,
            allow_redirects=False,
            raise_for_status=False,
            timeout=self._timeout(timeouts, stream),
        )
        first_byte = timeouts.first_byte
        if stream and first_byte is None:
            first_byte = timeouts.first_token  # a stream's headers come before its first token
        timed = first_byte is not None and (stream or first_byte < timeouts.total)
        failed: UpstreamError
        try:
            if not timed:
                response: aiohttp.ClientResponse = await request
            else:
                async with asyncio.timeout(first_byte) as scope:
                    response = await request
            return Response(response.status, response.headers, _AiohttpBody(wire, response, timeouts))
        except TimeoutError as exc:
            expired = timed and scope.expired()
            failed = _chained(
                _timeout_error(wire, exc, expired, first_byte or timeouts.total, timeouts), exc, wire
            )
        except aiohttp.ClientError as exc:
            failed = _chained(_client_error(wire, exc), exc, wire)
        raise failed


def _timeout_error(
    wire: WireRequest, exc: TimeoutError, first_byte_expired: bool, first_byte: float, timeouts: Timeouts
) -> UpstreamTimeout:
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return UpstreamTimeout(wire.gateway, detail=f"could not connect within {timeouts.connect:g}s")
    if first_byte_expired:
        return UpstreamTimeout(wire.gateway, detail=f"no response within {first_byte:g}s")
    return UpstreamTimeout(wire.gateway, detail=f"no complete response within {timeouts.total:g}s")


def _client_error(wire: WireRequest, exc: aiohttp.ClientError) -> UpstreamError:
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamConnectionError(wire.gateway, detail=f"could not resolve {wire.url.host}")
    if isinstance(exc, aiohttp.ClientConnectorError):
        return UpstreamConnectionError(wire.gateway, detail=f"could not connect to {wire.url.origin()}")
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return UpstreamConnectionError(wire.gateway, detail="the server closed the connection")
    if isinstance(exc, aiohttp.ClientResponseError):
        return MalformedReply(
            wire.gateway, status=exc.status or None, detail="the response is not valid HTTP"
        )
    return UpstreamConnectionError(wire.gateway, detail=f"connection failed ({type(exc).__name__})")


class _AiohttpBody:
    """The :class:`ByteStream` of an aiohttp response: every aiohttp error mapped, once, here."""

    __slots__ = ("_response", "_timeouts", "_wire")

    def __init__(self, wire: WireRequest, response: aiohttp.ClientResponse, timeouts: Timeouts) -> None:
        self._wire = wire
        self._response = response
        self._timeouts = timeouts

    async def read(self) -> bytes:
        """The whole body, at most 64 MiB."""
        response, wire = self._response, self._wire
        failed: UpstreamError
        try:
            length = response.content_length
            if length is not None and length <= _MAX_BODY:
                return await response.read()  # aiohttp checks the length it was promised
            return await read_body(response, _MAX_BODY)
        except BodyTooLarge:
            raise MalformedReply(
                wire.gateway, status=response.status, detail="the reply is larger than 64 MiB"
            ) from None
        except TimeoutError as exc:
            failed = _chained(self._unfinished(), exc, wire)
        except aiohttp.ClientPayloadError as exc:
            failed = _chained(
                UpstreamConnectionError(
                    wire.gateway,
                    status=response.status,
                    detail="the connection broke while reading the reply",
                ),
                exc,
                wire,
            )
        except aiohttp.ClientError as exc:
            failed = _chained(_client_error(wire, exc), exc, wire)
        raise failed

    async def __aiter__(self) -> AsyncIterator[bytes]:
        """The body as it arrives; a break is a :class:`StreamCut`."""
        content = self._response.content
        wire, status = self._wire, self._response.status
        while True:
            failed: UpstreamError | None = None
            try:
                piece = await content.readany()
            except TimeoutError as exc:
                failed = _chained(self._unfinished(), exc, wire)
            except aiohttp.ClientPayloadError as exc:
                failed = _chained(
                    StreamCut(wire.gateway, status=status, detail="the stream broke mid-transfer"), exc, wire
                )
            except aiohttp.ClientError as exc:
                failed = _chained(
                    StreamCut(wire.gateway, status=status, detail=f"the stream broke ({type(exc).__name__})"),
                    exc,
                    wire,
                )
            if failed is not None:
                raise failed
            if not piece:
                return
            yield piece

    def _unfinished(self) -> UpstreamTimeout:
        what = "stream" if self._wire.stream else "reply"
        return UpstreamTimeout(
            self._wire.gateway,
            status=self._response.status,
            detail=f"the {what} did not finish within {self._timeouts.total:g}s",
        )

    async def aclose(self) -> None:
        """Release a complete answer's connection to the pool; close a stream's, so that a consumer
        that stopped early never leaves the rest of a stream to be drained into a pooled connection."""
        response = self._response
        if self._wire.stream:
            response.close()
        else:
            response.release()
            await response.wait_for_close()
