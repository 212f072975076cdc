"""The OpenAI chat-completions wire format: OneAI, Onetoken, OneRouter and any compatible gateway.

One adapter, with a small :class:`Dialect` per gateway for what each does
differently. Streams are server-sent events (``providers/_sse.py``) whose data
are ``chat.completion.chunk`` objects; OneRouter may send an error event inside a
200 and comment keep-alives.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any, Final

import attrs

from ._classify import classify, error_from_object, malformed
from ._errors import MalformedReply, ServerError, UpstreamError
from ._exchange import (
    RawResponse,
    StreamDelta,
    StreamResponse,
    WireRequest,
    _check_unmet,
    _cost,
    _indexed,
    _int,
    _loads,
    _parse_usage,
    _payload,
    _wire,
)
from ._gateway import Gateway, Wire
from ._offer import Offer
from ._params import translate_params, unmet_needs
from ._reply import Attempt, Reply, Route, normalize_finish_reason
from ._request import ChatRequest, Message
from ._sse import SSEDecoder, SSEEvent

__all__ = ["DIALECTS", "Dialect", "OpenAIAdapter"]


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


@attrs.frozen
class OpenAIAdapter:
    """OpenAI chat completions, for OneAI, Onetoken, OneRouter and compatible gateways."""

    dialect: Dialect = Dialect()
    wire: Wire = Wire.OPENAI

    @property
    def streams(self) -> bool:
        """The format streams (SSE)."""
        return True

    def refusal(
        self, status: int, headers: Mapping[str, str], body: bytes, gateway: Gateway, *, wall_now: float
    ) -> UpstreamError:
        """The typed error for a stream the gateway refused with a non-200 status."""
        return classify(gateway.name, status, headers, body, key=gateway.api_key, wall_now=wall_now)

    async def deltas(
        self, response: StreamResponse, gateway: Gateway, *, wall_now: float
    ) -> AsyncIterator[StreamDelta]:
        """Each SSE event of a 200 stream as a :class:`StreamDelta` (see :meth:`parse_event`).

        A line that is not UTF-8 is a :class:`MalformedReply` (raised outside the
        decoder's handler: its error holds the raw line). A body that held no
        event at all (HTML, a JSON reply, only comments) is one too: nothing in it
        can be told apart from a broken stream.
        """
        decoder = SSEDecoder()
        async for line in response.lines():
            event: SSEEvent | None = None
            undecodable = False
            try:
                event = decoder.feed(line)
            except UnicodeDecodeError:
                undecodable = True
            if undecodable:
                raise MalformedReply(gateway.name, status=200, detail="a stream event that is not UTF-8")
            if event is not None:
                yield self.parse_event(event.data, gateway, wall_now=wall_now)
        decoder.close()
        if decoder.events == 0:
            comments = f" ({decoder.comments} comment lines)" if decoder.comments else ""
            raise MalformedReply(
                gateway.name, status=200, detail=f"the 200 stream held no server-sent events{comments}"
            )

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
