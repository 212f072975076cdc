"""Key-free stand-ins for the HTTP client's exceptions, so no error chain holds a key."""

from __future__ import annotations

from ._classify import scrub
from ._errors import UpstreamError
from ._exchange import WireRequest

__all__ = ["TransportFailure", "chained", "stand_in"]


class TransportFailure(Exception):
    """What the HTTP client raised, by class name and key-scrubbed message.

    aiohttp's own exceptions hold the request they failed on (``request_info``,
    with its ``Authorization`` header) and a chain of their own. So an error raised
    at the transport boundary is chained to this stand-in, never to the aiohttp
    object, and raised outside the ``except`` block so that ``__context__`` does
    not hold it either: nothing reachable from a switchyard error holds a key.

    Attributes:
        kind: the qualified class name of what the client raised.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


def stand_in(exc: BaseException, authorization: str = "") -> TransportFailure:
    """A key-free stand-in for ``exc`` (see :class:`TransportFailure`); ``authorization`` is the
    header value the request carried, whose token is scrubbed from the message too."""
    kind = f"{type(exc).__module__}.{type(exc).__qualname__}"
    text = scrub(str(exc), None)
    token = authorization.partition(" ")[2]
    if token:
        text = text.replace(token, "[redacted]")
    return TransportFailure(kind, text)


def _stand_in(exc: BaseException, wire: WireRequest) -> TransportFailure:
    return stand_in(exc, wire.headers.get("Authorization", ""))


def chained(error: UpstreamError, exc: BaseException, wire: WireRequest) -> UpstreamError:
    """``error``, caused by a key-free stand-in of ``exc``; raise it outside the ``except`` block."""
    error.__cause__ = _stand_in(exc, wire)
    return error
