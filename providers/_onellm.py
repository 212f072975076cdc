"""OneLLM's own wire format: ``stop_sequences``, no ``stream``, a flat reply."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs

from ._classify import classify, malformed
from ._errors import ServerError, UnsupportedFeature, UpstreamError
from ._exchange import (
    RawResponse,
    StreamDelta,
    StreamResponse,
    WireRequest,
    _capped,
    _check_unmet,
    _cost,
    _int,
    _payload,
    _wire,
)
from ._gateway import Gateway, Wire
from ._offer import Offer
from ._params import translate_params, unmet_needs
from ._reply import Attempt, Reply, Route, Usage, normalize_finish_reason
from ._request import ChatRequest

__all__ = ["OneLLMAdapter"]


@attrs.frozen
class OneLLMAdapter:
    """OneLLM's own JSON: ``stop_sequences``, no ``stream``, a flat reply."""

    wire: Wire = Wire.ONELLM

    @property
    def streams(self) -> bool:
        """OneLLM does not stream: a stream is served from one complete reply."""
        return False

    def refusal(
        self, status: int, headers: Mapping[str, str], body: bytes, gateway: Gateway, *, wall_now: float
    ) -> UpstreamError:
        """The typed error for a non-200 answer."""
        return classify(gateway.name, status, headers, body, key=gateway.api_key, wall_now=wall_now)

    def deltas(
        self, response: StreamResponse, gateway: Gateway, *, wall_now: float
    ) -> AsyncIterator[StreamDelta]:
        """OneLLM has no streams to read (:attr:`streams` is False).

        Raises:
            UnsupportedFeature: always; ask for a complete reply instead.
        """
        raise UnsupportedFeature(f"{gateway.name} does not stream; ask for a complete reply", param="stream")

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
