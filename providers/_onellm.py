"""OneLLM's own wire format: ``stop_sequences``, no ``stream``, a flat reply."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import attrs

from ._classify import malformed
from ._codec import capped, check_unmet, cost, nonnegative, post, read_payload
from ._errors import ServerError
from ._exchange import Response, WireRequest
from ._gateway import Gateway, Wire
from ._offer import Offer
from ._params import dropped_count, translate_params, unmet_needs
from ._reply import Answer, Delta, Usage, normalize_finish_reason
from ._request import ChatRequest

__all__ = ["OneLLMAdapter"]


@attrs.frozen
class OneLLMAdapter:
    """OneLLM's own JSON: ``stop_sequences``, no ``stream``, a flat reply."""

    def unmet(self, request: ChatRequest, offer: Offer) -> frozenset[str]:
        """What the request needs that OneLLM cannot carry (tools, JSON mode, search, images)."""
        return unmet_needs(request.needs, Wire.ONELLM, offer.capabilities)

    def drops(self, request: ChatRequest, offer: Offer) -> int:
        """How many of the request's parameters OneLLM would leave out."""
        return dropped_count(request, Wire.ONELLM, offer.capabilities)

    def build(
        self,
        request: ChatRequest,
        offer: Offer,
        gateway: Gateway,
        *,
        stream: bool = False,
        prefill: str | None = None,
    ) -> WireRequest:
        """The POST to OneLLM's chat path; never with ``stream``, never with ``stop``.

        OneLLM does not stream: asked for a stream, it is asked for the complete
        answer, which :meth:`deltas` gives as one piece. It continues no prefill.
        """
        if request.needs:
            check_unmet(self.unmet(request, offer), offer, gateway)
        params, dropped = translate_params(request, Wire.ONELLM, offer.capabilities)
        messages = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text}
            for m in request.messages
        ]
        body: dict[str, Any] = {"model": offer.gateway_model, "messages": messages}
        body.update(params)
        return post(gateway, body, stream=False, dropped=dropped)

    async def answer(
        self, response: Response, wire: WireRequest, offer: Offer, gateway: Gateway, *, wall_now: float
    ) -> Answer:
        """OneLLM's flat body (``content``, ``usage.input_tokens``...), read whole, as an :class:`Answer`."""
        payload = await read_payload(response, gateway, wall_now, "content")
        content = payload.get("content")
        if not isinstance(content, str):
            raise malformed(gateway.name, 200, "no 'content' string")
        raw_usage = payload.get("usage")
        if not isinstance(raw_usage, dict):
            raise malformed(gateway.name, 200, "no usage")
        prompt = nonnegative(raw_usage.get("input_tokens"))
        completion = nonnegative(raw_usage.get("output_tokens"))
        if prompt is None or completion is None:
            raise malformed(gateway.name, 200, "usage without input_tokens/output_tokens")
        total = nonnegative(raw_usage.get("total_tokens"))
        usage = Usage(prompt, completion, prompt + completion if total is None else total)
        raw_finish = payload.get("finish_reason")
        if raw_finish == "error":
            raise ServerError(gateway.name, status=200, detail="the model stopped with finish_reason 'error'")
        finish = normalize_finish_reason(raw_finish if isinstance(raw_finish, str) else None)
        return Answer(
            id=f"onellm-{uuid.uuid4().hex}",
            text=content,
            finish_reason=finish,
            usage=usage,
            cost_usd=cost(usage, offer),
            created=int(wall_now),
            dropped_params=wire.dropped,
            raw_finish_reason=raw_finish if isinstance(raw_finish, str) else None,
            output_capped=finish == "length" and capped(wire, completion),
        )

    async def deltas(
        self, response: Response, wire: WireRequest, offer: Offer, gateway: Gateway, *, wall_now: float
    ) -> AsyncIterator[Delta]:
        """OneLLM does not stream: its whole answer (:meth:`answer`), as one delta.

        Raises:
            UpstreamError: as :meth:`answer` does.
        """
        answer = await self.answer(response, wire, offer, gateway, wall_now=wall_now)
        yield Delta(
            text=answer.text,
            tool_calls=answer.tool_calls,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            response_id=answer.id,
            output_capped=answer.output_capped,
        )
