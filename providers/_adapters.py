"""Wire adapters: pure translation between a :class:`ChatRequest` and a gateway's HTTP.

An adapter turns a request into a :class:`WireRequest` (method, URL, headers,
body) and a :class:`RawResponse` into a :class:`Reply` or a typed error. It does
no I/O; the transport does. There are two: :class:`OpenAIAdapter` for OneAI,
Onetoken, OneRouter and any OpenAI-compatible gateway (with a small
:class:`Dialect` per gateway), and :class:`OneLLMAdapter` for OneLLM's own JSON.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final, Protocol

import attrs
from yarl import URL

from ._classify import classify, error_from_object, malformed
from ._errors import ServerError, UnsupportedFeature, UpstreamError
from ._gateway import Gateway, Wire
from ._offer import Offer
from ._params import translate_params, unmet_needs
from ._reply import Attempt, Reply, Route, Usage, normalize_finish_reason
from ._request import ChatRequest, Message

__all__ = [
    "Adapter",
    "Dialect",
    "OneLLMAdapter",
    "OpenAIAdapter",
    "RawResponse",
    "StreamDelta",
    "WireRequest",
    "adapter_for",
]


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


class Adapter(Protocol):
    """Translates one wire format; pure, no I/O."""

    wire: Wire

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


@attrs.frozen
class Dialect:
    """What one OpenAI-compatible gateway does differently.

    Attributes:
        developer_role: it takes the ``developer`` role (else it is sent as ``system``).
        usage_include: it takes OneRouter's ``usage: {include: true}`` to report cost.
        stream_usage: it takes ``stream_options: {include_usage: true}`` on streams.
    """

    developer_role: bool = False
    usage_include: bool = False
    stream_usage: bool = True


DIALECTS: Final[Mapping[str, Dialect]] = {
    # Onetoken's document shows the developer role; the others are sent 'system',
    # which every OpenAI-compatible endpoint takes.
    "onetoken": Dialect(developer_role=True),
    # OneRouter reports usage and cost when asked with usage.include, in replies and streams.
    "onerouter": Dialect(usage_include=True, stream_usage=False),
}


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


@attrs.frozen
class OpenAIAdapter:
    """OpenAI chat completions, for OneAI, Onetoken, OneRouter and compatible gateways."""

    dialect: Dialect = Dialect()
    wire: Wire = Wire.OPENAI

    def unmet(self, request: ChatRequest, offer: Offer) -> frozenset[str]:
        """What the request needs that this target cannot carry."""
        return unmet_needs(request.needs, Wire.OPENAI, offer.capabilities)

    def messages(self, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        """The messages in this dialect (``developer`` sent as ``system`` where not taken)."""
        if self.dialect.developer_role:
            return [m.to_openai() for m in messages]
        return [m.to_openai("system" if m.role == "developer" else None) for m in messages]

    def build(
        self, request: ChatRequest, offer: Offer, gateway: Gateway, *, stream: bool = False
    ) -> WireRequest:
        """The POST to ``<base_url>/chat/completions``."""
        if request.needs:
            _check_unmet(self.unmet(request, offer), offer, gateway)
        params, dropped = translate_params(request, Wire.OPENAI, offer.capabilities)
        body: dict[str, Any] = {"model": offer.gateway_model, "messages": self.messages(request.messages)}
        body.update(params)
        if offer.capabilities.web_search is True and "web_search_options" not in body:
            body["web_search_options"] = {}  # search models take it; {} asks for the defaults
        if self.dialect.usage_include:
            body["usage"] = {"include": True}
        if stream:
            body["stream"] = True
            if self.dialect.stream_usage:
                body["stream_options"] = {"include_usage": True}
        return _wire(gateway, body, stream=stream, dropped=dropped)

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
        """A ``chat.completion`` body to a :class:`Reply`."""
        payload = _payload(response, gateway, wall_now, "choices")
        choices = payload.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise malformed(gateway.name, 200, "no choices")
        choice = choices[0]
        message = choice.get("message")
        if not isinstance(message, dict):
            raise malformed(gateway.name, 200, "choices[0] has no message")
        content = message.get("content")
        tool_calls = message.get("tool_calls")
        if content is not None and not isinstance(content, str):
            raise malformed(gateway.name, 200, "message.content is not a string")
        if content is None and not tool_calls:
            raise malformed(gateway.name, 200, "message has neither content nor tool calls")
        raw_finish = choice.get("finish_reason")
        if raw_finish == "error":
            raise ServerError(gateway.name, status=200, detail="the model stopped with finish_reason 'error'")
        usage = _parse_usage(payload.get("usage"))
        if usage is None:
            raise malformed(gateway.name, 200, "no usage")
        created = _int(payload.get("created"))
        return Reply(
            id=str(payload.get("id") or f"chatcmpl-{uuid.uuid4().hex}"),
            text=content or "",
            finish_reason=normalize_finish_reason(raw_finish),
            usage=usage,
            cost_usd=_cost(usage, offer),
            route=Route(gateway.name, offer.gateway_model, offer.model, attempts),
            created=int(wall_now) if created is None else created,
            tool_calls=tuple(tool_calls) if tool_calls else None,
            dropped_params=wire.dropped,
            raw_finish_reason=raw_finish if isinstance(raw_finish, str) else None,
        )

    def parse_event(self, data: str, gateway: Gateway, *, wall_now: float) -> StreamDelta:
        """One SSE ``data`` payload of a stream to a :class:`StreamDelta`.

        Raises:
            UpstreamError: for an ``{"error": ...}`` event (OneRouter sends errors
                inside a 200 stream), typed by its code.
            MalformedReply: for a payload that is not a JSON chunk. A data event that
                is not JSON cannot be told apart from lost text, so it breaks the stream
                rather than being skipped.
        """
        if data.strip() == "[DONE]":
            return StreamDelta(done=True)
        ok, chunk = _loads(data)
        if not ok:
            raise malformed(gateway.name, 200, "a stream event that is not JSON")
        if not isinstance(chunk, dict):
            raise malformed(gateway.name, 200, "a stream event that is not a JSON object")
        if "error" in chunk:
            raise error_from_object(
                gateway.name, chunk, status=200, headers={}, key=gateway.api_key, wall_now=wall_now
            )
        usage = _parse_usage(chunk.get("usage"))
        choices = chunk.get("choices") or []
        if not isinstance(choices, list):
            raise malformed(gateway.name, 200, "stream chunk choices is not a list")
        text = ""
        finish = None
        tool_calls = None
        if choices:
            choice = choices[0]
            if not isinstance(choice, dict):
                raise malformed(gateway.name, 200, "stream chunk choice is not an object")
            delta = choice.get("delta") or {}
            piece = delta.get("content") if isinstance(delta, dict) else None
            if piece is not None and not isinstance(piece, str):
                raise malformed(gateway.name, 200, "delta.content is not a string")
            text = piece or ""
            calls = delta.get("tool_calls") if isinstance(delta, dict) else None
            if calls:
                if not isinstance(calls, list) or not all(_indexed(c) for c in calls):
                    raise malformed(gateway.name, 200, "delta.tool_calls is not a list of indexed objects")
                tool_calls = tuple(calls)
            finish = choice.get("finish_reason")
            if finish == "error":
                raise ServerError(
                    gateway.name, status=200, detail="the stream stopped with finish_reason 'error'"
                )
        return StreamDelta(
            text=text,
            finish_reason=finish if isinstance(finish, str) else None,
            usage=usage,
            tool_calls=tool_calls,
            response_id=chunk.get("id") if isinstance(chunk.get("id"), str) else None,
        )


@attrs.frozen
class OneLLMAdapter:
    """OneLLM's own JSON: ``stop_sequences``, no ``stream``, a flat reply."""

    wire: Wire = Wire.ONELLM

    def unmet(self, request: ChatRequest, offer: Offer) -> frozenset[str]:
        """What the request needs that OneLLM cannot carry (tools, JSON mode, search, images)."""
        return unmet_needs(request.needs, Wire.ONELLM, offer.capabilities)

    def build(
        self, request: ChatRequest, offer: Offer, gateway: Gateway, *, stream: bool = False
    ) -> WireRequest:
        """The POST to OneLLM's chat path; never with ``stream``, never with ``stop``.

        ``stream=True`` is refused: OneLLM does not stream, and the router asks it
        for a complete reply instead.
        """
        if stream:
            raise UnsupportedFeature(
                f"{gateway.name} does not stream; ask for a complete reply", param="stream"
            )
        if request.needs:
            _check_unmet(self.unmet(request, offer), offer, gateway)
        params, dropped = translate_params(request, Wire.ONELLM, offer.capabilities)
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text}
            for m in request.messages
        ]
        body: dict[str, Any] = {"model": offer.gateway_model, "messages": messages}
        body.update(params)
        return _wire(gateway, body, stream=False, dropped=dropped)

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
        """OneLLM's flat body (``content``, ``usage.input_tokens``...) to a :class:`Reply`."""
        payload = _payload(response, gateway, wall_now, "content")
        content = payload.get("content")
        if not isinstance(content, str):
            raise malformed(gateway.name, 200, "no 'content' string")
        raw_usage = payload.get("usage")
        if not isinstance(raw_usage, dict):
            raise malformed(gateway.name, 200, "no usage")
        prompt = _int(raw_usage.get("input_tokens"))
        completion = _int(raw_usage.get("output_tokens"))
        if prompt is None or completion is None:
            raise malformed(gateway.name, 200, "usage without input_tokens/output_tokens")
        total = _int(raw_usage.get("total_tokens"))
        usage = Usage(prompt, completion, prompt + completion if total is None else total)
        raw_finish = payload.get("finish_reason")
        if raw_finish == "error":
            raise ServerError(gateway.name, status=200, detail="the model stopped with finish_reason 'error'")
        finish = normalize_finish_reason(raw_finish if isinstance(raw_finish, str) else None)
        return Reply(
            id=f"onellm-{uuid.uuid4().hex}",
            text=content,
            finish_reason=finish,
            usage=usage,
            cost_usd=_cost(usage, offer),
            route=Route(
                gateway.name,
                offer.gateway_model,
                offer.model,
                attempts,
                output_capped=finish == "length" and _capped(wire, completion),
            ),
            created=int(wall_now),
            dropped_params=wire.dropped,
            raw_finish_reason=raw_finish if isinstance(raw_finish, str) else None,
        )


_ONELLM: Final = OneLLMAdapter()
_OPENAI_DEFAULT: Final = OpenAIAdapter()
_OPENAI: Final[Mapping[str, OpenAIAdapter]] = {name: OpenAIAdapter(d) for name, d in DIALECTS.items()}


def adapter_for(gateway: Gateway) -> OpenAIAdapter | OneLLMAdapter:
    """The adapter for a gateway's wire format and dialect."""
    if gateway.wire is Wire.ONELLM:
        return _ONELLM
    return _OPENAI.get(gateway.name, _OPENAI_DEFAULT)
