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
from ._codec import check_unmet, cost, indexed, loads, nonnegative, parse_usage, post, read_payload
from ._errors import MalformedReply, ServerError, StreamCut
from ._exchange import Response, WireRequest
from ._gateway import Gateway, Wire
from ._offer import Offer
from ._params import dropped_count, translate_params, unmet_needs
from ._reply import Answer, Delta, normalize_finish_reason
from ._request import ChatRequest, Message
from ._sse import LineSplitter, LineTooLong, SSEDecoder

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


_MAX_LINE: Final = 2 * 1024 * 1024  # one SSE line; past it the stream is malformed, never buffered on


@attrs.frozen
class OpenAIAdapter:
    """OpenAI chat completions, for OneAI, Onetoken, OneRouter and compatible gateways."""

    dialect: Dialect = Dialect()

    def unmet(self, request: ChatRequest, offer: Offer) -> frozenset[str]:
        """What the request needs that this target cannot carry."""
        return unmet_needs(request.needs, Wire.OPENAI, offer.capabilities)

    def drops(self, request: ChatRequest, offer: Offer) -> int:
        """How many of the request's parameters this target would leave out."""
        return dropped_count(request, Wire.OPENAI, offer.capabilities)

    def messages(self, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        """The messages in this dialect (``developer`` sent as ``system`` where not taken)."""
        if self.dialect.developer_role:
            return [m.to_openai() for m in messages]
        return [m.to_openai("system" if m.role == "developer" else None) for m in messages]

    def build(
        self,
        request: ChatRequest,
        offer: Offer,
        gateway: Gateway,
        *,
        stream: bool = False,
        prefill: str | None = None,
    ) -> WireRequest:
        """The POST to ``<base_url>/chat/completions``; a ``prefill`` is sent as a final
        assistant message when the offer takes one (``assistant_prefill``)."""
        if request.needs:
            check_unmet(self.unmet(request, offer), offer, gateway)
        params, dropped = translate_params(request, Wire.OPENAI, offer.capabilities)
        messages = self.messages(request.messages)
        prefilled = prefill if prefill and offer.capabilities.assistant_prefill is True else ""
        if prefilled:
            # The target continues a final assistant message instead of starting again.
            messages.append(Message("assistant", prefilled).to_openai())
        body: dict[str, Any] = {"model": offer.gateway_model, "messages": messages}
        body.update(params)
        if offer.capabilities.web_search is True and "web_search_options" not in body:
            body["web_search_options"] = {}  # search models take it; {} asks for the defaults
        if self.dialect.usage_include:
            body["usage"] = {"include": True}
        if stream:
            body["stream"] = True
            if self.dialect.stream_usage:
                body["stream_options"] = {"include_usage": True}
        return post(gateway, body, stream=stream, dropped=dropped, prefilled=prefilled)

    async def answer(
        self, response: Response, wire: WireRequest, offer: Offer, gateway: Gateway, *, wall_now: float
    ) -> Answer:
        """A ``chat.completion`` body, read whole, as an :class:`Answer`."""
        payload = await read_payload(response, gateway, wall_now, "choices")
        # Decoded JSON: its values are exactly dict, list, str, int, float, bool or None.
        choices = payload.get("choices")
        if type(choices) is not list or not choices or type(choices[0]) is not dict:
            raise malformed(gateway.name, 200, "no choices")
        choice = choices[0]
        message = choice.get("message")
        if type(message) is not dict:
            raise malformed(gateway.name, 200, "choices[0] has no message")
        content = message.get("content")
        tool_calls = message.get("tool_calls")
        if content is not None and type(content) is not str:
            raise malformed(gateway.name, 200, "message.content is not a string")
        if content is None and not tool_calls:
            raise malformed(gateway.name, 200, "message has neither content nor tool calls")
        raw_finish = choice.get("finish_reason")
        if raw_finish == "error":
            raise ServerError(gateway.name, status=200, detail="the model stopped with finish_reason 'error'")
        usage = parse_usage(payload.get("usage"))
        if usage is None:
            raise malformed(gateway.name, 200, "no usage")
        created = nonnegative(payload.get("created"))
        return Answer(  # positional, in Answer's field order (id, text, finish_reason, usage, ...)
            str(payload.get("id") or f"chatcmpl-{uuid.uuid4().hex}"),
            content or "",
            normalize_finish_reason(raw_finish),
            usage,
            cost(usage, offer),
            int(wall_now) if created is None else created,
            tuple(tool_calls) if tool_calls else None,
            wire.dropped,
            raw_finish if isinstance(raw_finish, str) else None,
        )

    async def deltas(
        self, response: Response, wire: WireRequest, offer: Offer, gateway: Gateway, *, wall_now: float
    ) -> AsyncIterator[Delta | str]:
        """A stream's deltas, one per server-sent event, until ``[DONE]`` or the body's end.

        The usual event, text alone under the response id already given, comes as
        its ``str`` (see :meth:`Adapter.deltas`).

        A stream ends complete only at ``[DONE]``, or at its end after a finish
        reason; it holds content unless it continued a prefill
        (:attr:`WireRequest.prefilled`) and said why it stopped.

        Raises:
            UpstreamError: the typed error of a refusal (a status other than 200)
                or of an error event (OneRouter sends them inside a 200 stream).
            MalformedReply: for an event that is not a JSON chunk, a line that is
                not UTF-8 or over 2 MiB, a body that holds no event at all (HTML, a
                JSON reply, only comments: nothing in it can be told apart from a
                broken stream), and a stream that finished without content.
            StreamCut: for a stream that ended without finishing.
        """
        if response.status != 200:
            body = await response.read()
            raise classify(
                gateway.name, response.status, response.headers, body, key=gateway.api_key, wall_now=wall_now
            )
        decoder = SSEDecoder()
        finished = False  # a finish reason was given
        content = 0  # deltas that carried text or tool calls
        splitter = LineSplitter(_MAX_LINE)
        pieces = response.aiter_bytes()
        payloads: list[str] = []
        named: str | None = None  # the response id of the last delta that gave one
        ended = False
        while not ended:
            # One piece of the body at a time; its lines are handled in one loop (no async step
            # per line), each event yielded as it is parsed.
            piece = await anext(pieces, None)
            broken = ""
            try:
                if piece is not None:
                    decoder.collect(splitter.split(piece), payloads)
                else:
                    ended = True
                    last = splitter.close()
                    if last is not None:
                        decoder.collect((last,), payloads)
            except LineTooLong:
                broken = "a stream line longer than the 2 MiB read limit"
            except UnicodeDecodeError:  # raised outside the handler: its error holds the raw line
                broken = "a stream event that is not UTF-8"
            for payload in payloads:
                if payload[:1] != "{" and payload.strip() == "[DONE]":
                    self._check_content(content, finished, wire, gateway)
                    return
                ok, chunk = loads(payload)
                text = _text_of(chunk) if ok else None
                if text is not None:
                    if text:
                        content += 1
                    response_id = chunk.get("id")
                    if response_id == named or not response_id or type(response_id) is not str:
                        yield text  # the usual event: its text alone, no Delta made for it
                        continue
                    delta = Delta(text=text, response_id=response_id)
                else:
                    delta = self._chunk_delta(ok, chunk, gateway, wall_now)
                    if delta.finish_reason is not None:
                        finished = True
                    if delta.text or delta.tool_calls:
                        content += 1
                if delta.response_id:
                    named = delta.response_id
                yield delta
            payloads.clear()
            if broken:
                raise MalformedReply(gateway.name, status=200, detail=broken)
        decoder.close()
        if decoder.events == 0:
            comments = f" ({decoder.comments} comment lines)" if decoder.comments else ""
            raise MalformedReply(
                gateway.name, status=200, detail=f"the 200 stream held no server-sent events{comments}"
            )
        if not finished:
            raise StreamCut(
                gateway.name,
                status=200,
                detail=(
                    f"ended without [DONE] or a finish reason after {content} chunks"
                    if content
                    else "the stream ended before any content"
                ),
            )
        self._check_content(content, finished, wire, gateway)

    @staticmethod
    def _check_content(content: int, finished: bool, wire: WireRequest, gateway: Gateway) -> None:
        """A stream that finished without any content is malformed, unless it continued a
        prefill and said why it stopped (the continuation may be empty)."""
        if not content and not (wire.prefilled and finished):
            raise MalformedReply(gateway.name, status=200, detail="the stream finished without any content")

    def parse_event(self, data: str, gateway: Gateway, *, wall_now: float) -> Delta:
        """One SSE ``data`` payload of a stream (a ``chat.completion.chunk``) as a :class:`Delta`.

        Raises:
            UpstreamError: for an ``{"error": ...}`` event (OneRouter sends errors
                inside a 200 stream), typed by its code.
            MalformedReply: for a payload that is not a JSON chunk. A data event that
                is not JSON cannot be told apart from lost text, so it breaks the stream
                rather than being skipped.
        """
        return self._chunk_delta(*loads(data), gateway, wall_now)

    def _chunk_delta(self, ok: bool, chunk: Any, gateway: Gateway, wall_now: float) -> Delta:
        """:meth:`parse_event`, given the payload decoded (``ok``: it was JSON)."""
        if not ok:
            raise malformed(gateway.name, 200, "a stream event that is not JSON")
        if not isinstance(chunk, dict):
            raise malformed(gateway.name, 200, "a stream event that is not a JSON object")
        if "error" in chunk:
            raise error_from_object(
                gateway.name, chunk, status=200, headers={}, key=gateway.api_key, wall_now=wall_now
            )
        usage = parse_usage(chunk.get("usage"))
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
                if not isinstance(calls, list) or not all(indexed(c) for c in calls):
                    raise malformed(gateway.name, 200, "delta.tool_calls is not a list of indexed objects")
                tool_calls = tuple(calls)
            finish = choice.get("finish_reason")
            if finish == "error":
                raise ServerError(
                    gateway.name, status=200, detail="the stream stopped with finish_reason 'error'"
                )
        return Delta(
            text=text,
            tool_calls=tool_calls,
            finish_reason=normalize_finish_reason(finish) if isinstance(finish, str) else None,
            usage=usage,
            response_id=chunk.get("id") if isinstance(chunk.get("id"), str) else None,
        )


def _text_of(chunk: Any) -> str | None:
    """The text of the usual event (decoded): one choice whose delta has text and nothing else
    of note (no finish reason, tool calls, usage or error), as ``parse_event`` would read it,
    with fewer checks; None for any other event, which ``parse_event`` reads."""
    if type(chunk) is not dict or "error" in chunk or chunk.get("usage") is not None:
        return None
    choices = chunk.get("choices")
    if type(choices) is not list or len(choices) != 1:
        return None
    choice = choices[0]
    if type(choice) is not dict or choice.get("finish_reason") is not None:
        return None
    delta = choice.get("delta")
    if type(delta) is not dict or delta.get("tool_calls"):
        return None
    text = delta.get("content")
    return text if type(text) is str else None
