"""What adapters and the transport exchange: the wire request, the raw response, stream deltas.

:class:`WireRequest` is one HTTP request ready for the transport; :class:`RawResponse`
a complete answer; :class:`StreamResponse` an open streamed one (status and
headers now, the body line by line); :class:`StreamDelta` what one stream event
adds. :class:`Adapter` is the protocol each wire format implements. The helpers
here are the parts the two adapters share (headers, JSON decoding, usage, cost).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final, Protocol

import attrs
from yarl import URL

from ._classify import classify, error_from_object, malformed
from ._errors import UnsupportedFeature, UpstreamError
from ._gateway import Gateway
from ._offer import Offer
from ._reply import Attempt, Reply, Usage
from ._request import ChatRequest

__all__ = ["Adapter", "RawResponse", "StreamDelta", "StreamResponse", "WireRequest"]


# One encoder for every body: json.dumps() with any option builds a new encoder per call.
_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def _mask_headers(headers: Mapping[str, str]) -> str:
    shown = {k: ("Bearer [redacted]" if k.lower() == "authorization" else v) for k, v in headers.items()}
    return repr(shown)


@attrs.frozen
class WireRequest:
    """One HTTP request for one gateway, ready for the transport.

    The key is only in ``headers['Authorization']``, which no repr shows, and it
    may only go to ``key_origin`` (the gateway's own scheme, host and port); the
    transport refuses anything else.
    """

    gateway: str
    method: str
    url: URL
    key_origin: URL
    headers: Mapping[str, str] = attrs.field(repr=_mask_headers)
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    stream: bool = False
    dropped: tuple[str, ...] = ()

    def json(self) -> Any:
        """The body, decoded."""
        return json.loads(self.body)


@attrs.frozen
class RawResponse:
    """A gateway's complete answer as the transport read it."""

    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


@attrs.frozen
class StreamDelta:
    """What one stream event adds: text, a finish reason, usage, or tool-call pieces."""

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    response_id: str | None = None
    done: bool = False
    """True for the ``[DONE]`` sentinel."""


class StreamResponse(Protocol):
    """An open streamed response: status and headers now, the body line by line."""

    status: int
    headers: Mapping[str, str]

    async def read(self) -> bytes:
        """The whole body (for an error status)."""
        ...

    def lines(self) -> AsyncIterator[bytes]:
        """The body's lines, as they arrive."""
        ...


class Adapter(Protocol):
    """Translates one wire format; pure, no I/O.

    Attributes:
        streams: whether the format streams; when it does not, a stream is served
            from one complete reply.
    """

    @property
    def streams(self) -> bool:
        """Whether the format streams."""
        ...

    def unmet(self, request: ChatRequest, offer: Offer) -> frozenset[str]:
        """What the request needs that this target cannot carry (empty when it can)."""
        ...

    def build(
        self, request: ChatRequest, offer: Offer, gateway: Gateway, *, stream: bool = False
    ) -> WireRequest:
        """The HTTP request for ``request`` at ``offer`` on ``gateway``.

        Raises:
            UnsupportedFeature: when the target cannot carry what the request needs.
        """
        ...

    def parse(
        self,
        response: RawResponse,
        wire: WireRequest,
        offer: Offer,
        gateway: Gateway,
        *,
        wall_now: float,
        attempts: tuple[Attempt, ...] = (),
    ) -> Reply:
        """The normalized reply for a complete answer to ``wire``; ``attempts`` go in its route.

        Raises:
            UpstreamError: the typed error for a failure, a refusal or a malformed body.
        """
        ...

    def refusal(
        self, status: int, headers: Mapping[str, str], body: bytes, gateway: Gateway, *, wall_now: float
    ) -> UpstreamError:
        """The typed error for a streamed request the gateway answered with a non-200 status."""
        ...

    def deltas(
        self, response: StreamResponse, gateway: Gateway, *, wall_now: float
    ) -> AsyncIterator[StreamDelta]:
        """The deltas of a 200 stream, in order, ending after the ``[DONE]`` delta or the body's end.

        Raises:
            UpstreamError: a typed error for an error event, or a
                :class:`MalformedReply` for an event that is not a chunk (or not
                UTF-8) and for a body that holds no events at all.
        """
        ...


def _headers(gateway: Gateway, *, stream: bool) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if gateway.api_key is not None:
        headers["Authorization"] = f"Bearer {gateway.api_key.reveal()}"
    return headers


def _check_unmet(unmet: frozenset[str], offer: Offer, gateway: Gateway) -> None:
    if unmet:
        raise UnsupportedFeature(
            f"{gateway.name} cannot carry {', '.join(sorted(unmet))} for {offer.gateway_model!r}; "
            "choose a model or gateway that supports it",
            param=sorted(unmet)[0],
        )


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _loads(data: str | bytes) -> tuple[bool, Any]:
    """(True, value) for valid JSON, (False, None) otherwise.

    The decoder's exception holds the whole document, which may echo a key: an
    error raised for it is raised outside the ``except`` block, so that neither its
    ``__cause__`` nor its ``__context__`` holds that document.
    """
    try:
        return True, json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False, None


def _capped(wire: WireRequest, completion: int) -> bool:
    """A length stop short of the ``max_tokens`` sent: OneLLM lowered it (its document says it
    does, silently, when the balance cannot pay for it; no header tells)."""
    asked = wire.json().get("max_tokens")
    return isinstance(asked, int) and completion < asked


def _indexed(call: object) -> bool:
    """A streamed tool-call piece: an object with a non-negative integer ``index``."""
    if not isinstance(call, dict):
        return False
    index = call.get("index")
    return isinstance(index, int) and not isinstance(index, bool) and index >= 0


def _decode(response: RawResponse, gateway: Gateway) -> Any:
    ok, value = _loads(response.body)
    if ok:
        return value
    body = response.body.lstrip()
    what = "empty body" if not body else "an HTML page" if body[:1] == b"<" else "not JSON"
    raise malformed(gateway.name, response.status, what)


def _cost(usage: Usage, offer: Offer) -> float | None:
    if usage.reported_cost_usd is not None:
        return usage.reported_cost_usd
    return offer.cost_usd(usage.prompt_tokens, usage.completion_tokens)


def _fail(response: RawResponse, gateway: Gateway, wall_now: float) -> UpstreamError:
    return classify(
        gateway.name, response.status, response.headers, response.body, key=gateway.api_key, wall_now=wall_now
    )


def _wire(gateway: Gateway, body: dict[str, Any], *, stream: bool, dropped: tuple[str, ...]) -> WireRequest:
    """The POST of ``body`` to the gateway's chat URL, with its headers."""
    return WireRequest(
        gateway=gateway.name,
        method="POST",
        url=gateway.chat_url,
        key_origin=gateway.origin,
        headers=_headers(gateway, stream=stream),
        body=_ENCODE(body).encode(),
        stream=stream,
        dropped=dropped,
    )


def _payload(response: RawResponse, gateway: Gateway, wall_now: float, answer_key: str) -> dict[str, Any]:
    """A reply's JSON object, or the error it is: a status, a body that is not a JSON object,
    or an error object inside a 200 (one without ``answer_key``)."""
    if response.status != 200:
        raise _fail(response, gateway, wall_now)
    payload = _decode(response, gateway)
    if not isinstance(payload, dict):
        raise malformed(gateway.name, 200, "the body is not a JSON object")
    if "error" in payload and answer_key not in payload:
        raise error_from_object(
            gateway.name,
            payload,
            status=200,
            headers=response.headers,
            key=gateway.api_key,
            wall_now=wall_now,
        )
    return payload


def _parse_usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = _int(raw.get("prompt_tokens"))
    completion = _int(raw.get("completion_tokens"))
    if prompt is None or completion is None:
        return None
    total = _int(raw.get("total_tokens"))
    cost = raw.get("cost")
    reported = (
        float(cost) if isinstance(cost, int | float) and not isinstance(cost, bool) and cost >= 0 else None
    )
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion if total is None else total,
        reported_cost_usd=reported,
    )
