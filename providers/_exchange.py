"""What an adapter and a transport exchange: the wire request, and the response with its body stream.

:class:`WireRequest` is one HTTP request ready for the transport.
:class:`Response` is the transport's answer: status and headers as soon as they
arrive, the body as a :class:`ByteStream` to read whole or as it comes (httpx's
``Response`` over an ``AsyncByteStream`` is the model). A transport gives every
request the same one call, streamed or not; the adapter that built the request
reads the response.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Protocol

import attrs
from yarl import URL

__all__ = ["ByteStream", "Content", "Response", "WireRequest"]


def _mask_headers(headers: Mapping[str, str]) -> str:
    shown = {k: ("Bearer [redacted]" if k.lower() == "authorization" else v) for k, v in headers.items()}
    return repr(shown)


@attrs.frozen(slots=False)  # made per attempt: dict-backed is cheaper to build (see _reply)
class WireRequest:
    """One HTTP request for one gateway, ready for the transport.

    The key is only in ``headers['Authorization']``, which no repr shows, and it
    may only go to ``key_origin`` (the gateway's own scheme, host and port); the
    transport refuses anything else.

    Attributes:
        stream: the answer is asked for as a stream (held to the first-token and
            stall limits, not to ``total``).
        dropped: request parameters the target does not take, left out.
        prefilled: the assistant text the target is asked to continue ("" when none).
    """

    gateway: str
    method: str
    url: URL
    key_origin: URL
    headers: Mapping[str, str] = attrs.field(repr=_mask_headers)
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    stream: bool = False
    dropped: tuple[str, ...] = ()
    prefilled: str = attrs.field(default="", repr=False)

    def json(self) -> Any:
        """The body, decoded."""
        return json.loads(self.body)


class ByteStream(Protocol):
    """A response body, as a transport delivers it: read whole, or iterated as it arrives.

    A transport raises only switchyard errors from it (a broken connection, a
    timeout, a body over its size limit), chained to key-free stand-ins.
    """

    def __aiter__(self) -> AsyncIterator[bytes]:
        """The body's bytes, in pieces as they arrive."""
        ...

    async def read(self) -> bytes:
        """The whole body."""
        ...

    async def aclose(self) -> None:
        """Let go of the connection (also after a partial read)."""
        ...


class Content:
    """A body already in memory: a :class:`ByteStream` that can be read any number of times."""

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._body:
            yield self._body

    async def read(self) -> bytes:
        """The body."""
        return self._body

    async def aclose(self) -> None:
        """Nothing to let go of."""


_EMPTY: Final = Content(b"")


def _stream(content: bytes | ByteStream) -> ByteStream:
    return Content(content) if isinstance(content, bytes) else content


@attrs.frozen(eq=False)
class Response:
    """A gateway's answer: status and headers at once, the body as a stream.

    Read the body whole (:meth:`read`) or as it arrives (:meth:`aiter_bytes`),
    then :meth:`aclose`. In a :class:`MockTransport` handler, give the body as
    bytes: ``Response(200, {}, b'{"choices": ...}')``.

    Args:
        status: the HTTP status.
        headers: the response headers.
        content: the body: bytes, or a :class:`ByteStream` that a transport reads
            from the network.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    stream: ByteStream = attrs.field(default=_EMPTY, converter=_stream, repr=False, alias="content")

    async def read(self) -> bytes:
        """The whole body.

        Raises:
            UpstreamError: when the body could not be read whole (a broken
                connection, a timeout, a body over the transport's size limit).
        """
        return await self.stream.read()

    def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body's bytes, in pieces as they arrive (raises as :meth:`read` does)."""
        return aiter(self.stream)

    async def aclose(self) -> None:
        """Let go of the connection, whether or not the body was read."""
        await self.stream.aclose()
