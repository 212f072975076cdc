"""Serving: one aiohttp handler answers every gateway, in that gateway's wire format."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any, Final

from aiohttp import web

from .._catalog import shipped_canonicalizer
from ._accounts import RetryAfterStyle
from ._faults import Faults, Malformed, Outage
from ._state import GatewayState
from ._text import Completion, complete, count_prompt_tokens

__all__ = ["Handler"]

_DEFAULT_MAX_COST_TOKENS: Final = 48  # the longest natural reply, counted when max_tokens is not set
_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"
_DONE: Final = b"data: [DONE]\n\n"


def _per_token(price: float | None) -> str | None:
    return None if price is None else f"{price / 1_000_000:.12f}".rstrip("0").rstrip(".")


class Handler:
    """Answers the requests that reach any of the gateways' ports.

    Args:
        by_port: the gateways by the port they listen on (filled in as they start).
        onellm_path: where OneLLM takes chat requests.
        default_price: (input, output) USD per million tokens for offers with no price.
        closing: set when the emulator stops; hung and stalled answers end then.
    """

    def __init__(
        self,
        by_port: Mapping[int, GatewayState],
        *,
        onellm_path: str,
        default_price: tuple[float, float],
        closing: asyncio.Event,
    ) -> None:
        self._by_port = by_port
        self._onellm_path = onellm_path
        self._default_price = default_price
        self._closing = closing

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer ``request`` as the gateway on its port."""
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        state = self._by_port.get(sockname[1]) if sockname else None
        if state is None:
            raise web.HTTPNotFound()
        path = request.path
        if state.onellm:
            if path == self._onellm_path:
                return (
                    await self._chat(state, request) if request.method == "POST" else self._error(state, 405)
                )
            return self._error(state, 404)
        if path == "/v1/chat/completions":
            return await self._chat(state, request) if request.method == "POST" else self._error(state, 405)
        if path == "/v1/models" and state.has_listing:
            return self._listing(state) if request.method == "GET" else self._error(state, 405)
        return self._error(state, 404)

    def _error(
        self,
        state: GatewayState,
        status: int,
        message: str | None = None,
        *,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        state.stats.answered(status)
        return web.Response(
            status=status,
            body=state.error_body(status, message, code),
            content_type="application/json",
            headers=headers,
        )

    def _listing(self, state: GatewayState) -> web.Response:
        state.stats.listings += 1
        data = []
        for offer in state.offers.values():
            entry: dict[str, Any] = {"id": offer.gateway_model, "name": shipped_canonicalizer()(offer.model)}
            if offer.context_window is not None:
                entry["context_length"] = offer.context_window
            if offer.priced:
                entry["pricing"] = {
                    "prompt": _per_token(offer.input_price),
                    "completion": _per_token(offer.output_price),
                }
            data.append(entry)
        return web.json_response({"object": "list", "data": data})

    async def _hang(self, state: GatewayState) -> web.StreamResponse:
        state.stats.hung += 1
        await self._closing.wait()
        raise web.HTTPServiceUnavailable()

    def _authorized(self, state: GatewayState, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        return state.key is None or key.strip() == state.key

    def _retry_after(self, state: GatewayState, seconds: float) -> dict[str, str]:
        style = state.account.retry_after_style
        if style is RetryAfterStyle.ALTERNATE:
            state.alternate += 1
            style = RetryAfterStyle.HTTP_DATE if state.alternate % 2 == 0 else RetryAfterStyle.SECONDS
        whole = max(1, math.ceil(seconds))
        if style is RetryAfterStyle.HTTP_DATE:
            # Against the wall clock, as HTTP-dates are; the Date header of the same
            # answer comes from the same clock, so clients can take the difference.
            now = time.time()
            return {
                "Retry-After": email.utils.formatdate(math.ceil(now) + whole, usegmt=True),
                "Date": email.utils.formatdate(math.floor(now), usegmt=True),
            }
        if style is RetryAfterStyle.MILLISECONDS:
            return {"retry-after-ms": str(max(1, math.ceil(seconds * 1000))), "Retry-After": str(whole)}
        return {"Retry-After": str(whole)}

    async def _chat(self, state: GatewayState, request: web.Request) -> web.StreamResponse:
        state.stats.arrived()
        if state.faults.outage is Outage.HANG:
            return await self._hang(state)
        if not self._authorized(state, request):
            return self._error(state, 401)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._error(state, 400)
        if not isinstance(body, dict):
            return self._error(state, 400)
        model = body.get("model")
        messages = body.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            return self._error(state, 400 if not state.onellm else 422)
        stream = bool(body.get("stream"))
        if state.onellm:
            if "stream" in body:
                return self._error(
                    state, 400, "Streaming is not supported. Do not include a stream parameter."
                )
            if "stop" in body:
                return self._error(state, 400, "Unknown parameter 'stop'; use stop_sequences.")
        state.stats.by_model[model] += 1
        offer = state.offers.get(model)
        if offer is None:
            if state.onellm:
                return self._error(state, 400, f"Unknown model '{model}'.")
            return self._error(state, 404, f"The model `{model}` does not exist", code="model_not_found")
        for param in offer.capabilities.unsupported_params:
            if param in body:
                return self._error(
                    state,
                    400,
                    f"Unsupported parameter: '{param}' is not supported with this model.",
                    code="unsupported_parameter",
                )
        max_tokens = body.get("max_tokens")
        if max_tokens is not None and (
            not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
        ):
            return self._error(state, 400, "max_tokens must be a positive integer")
        prompt_tokens = count_prompt_tokens(messages)
        if offer.context_window is not None and prompt_tokens + (max_tokens or 0) > offer.context_window:
            return self._error(
                state,
                400,
                (
                    f"This model's maximum context length is {offer.context_window} tokens. However, you "
                    f"requested {prompt_tokens + (max_tokens or 0)} tokens. "
                    "Please reduce the length of the messages."
                ),
                code="context_length_exceeded",
            )
        faults = state.faults_for(model)
        if faults.outage is Outage.HANG:
            return await self._hang(state)

        loop = asyncio.get_running_loop()
        account = state.account
        reserved = prompt_tokens + (max_tokens or _DEFAULT_MAX_COST_TOKENS)
        admission = account.admit(loop.time(), reserved)
        if not admission.admitted:
            account.refusals += 1
            headers = self._retry_after(state, admission.retry_after)
            headers.update(account.headers(loop.time()))
            return self._error(state, 429, f"{state.message(429)} ({admission.limit})", headers=headers)
        stats = state.stats
        stats.enter()
        used = [0]  # tokens actually served, for the account's reconciliation
        try:
            if not account.can_pay():
                return self._error(state, 402, code="insufficient_balance")
            in_price, out_price = (
                (offer.input_price or 0.0, offer.output_price or 0.0) if offer.priced else self._default_price
            )
            if state.onellm and account.balance_usd is not None and out_price > 0:
                # OneLLM lowers max_tokens to what the balance pays for, without saying so.
                affordable = max(1, int(account.balance_usd / out_price * 1_000_000))
                max_tokens = min(max_tokens or affordable, affordable)
            stop = body.get("stop_sequences" if state.onellm else "stop") or ()
            completion = complete(
                model, messages, max_tokens, [stop] if isinstance(stop, str) else list(stop)
            )
            status = faults.draw_status(state.rng)
            if stream:
                return await self._stream(
                    state,
                    request,
                    body,
                    faults,
                    status,
                    prompt_tokens,
                    completion,
                    (in_price, out_price),
                    used,
                )
            await asyncio.sleep(faults.latency.sample(state.rng))
            if status is not None:
                fault_headers = self._retry_after(state, 1.0) if status == 429 else None
                return self._error(state, status, headers=fault_headers)
            broken = faults.draw_malformed(state.rng)
            if broken is not None:
                return self._malformed(state, broken)
            cost = self._charge(state, prompt_tokens, completion, in_price, out_price)
            used[0] = prompt_tokens + completion.tokens
            payload = self._reply(state, model, body, prompt_tokens, completion, cost)
            stats.answered(200)
            return web.Response(
                body=json.dumps(payload).encode(),
                content_type="application/json",
                headers=account.headers(loop.time()) or None,
            )
        finally:
            stats.leave()
            account.release(loop.time(), reserved, used[0])

    def _charge(
        self,
        state: GatewayState,
        prompt_tokens: int,
        completion: Completion,
        in_price: float,
        out_price: float,
    ) -> float:
        state.stats.prompt_tokens += prompt_tokens
        state.stats.completion_tokens += completion.tokens
        cost = (prompt_tokens * in_price + completion.tokens * out_price) / 1_000_000
        state.account.charge(cost)
        return cost

    def _malformed(self, state: GatewayState, kind: Malformed) -> web.Response:
        state.stats.malformed += 1
        state.stats.answered(200)
        if kind is Malformed.HTML:
            page = b"<html><head><title>Maintenance</title></head><body>Back soon.</body></html>"
            return web.Response(body=page, content_type="text/html")
        if kind is Malformed.EMPTY:
            return web.Response(body=b"", content_type="application/json")
        return web.Response(
            body=b'{"id": "chatcmpl-x", "choices": [{"message": {"content": "Hel',
            content_type="application/json",
        )

    def _reply(
        self,
        state: GatewayState,
        model: str,
        body: Mapping[str, Any],
        prompt_tokens: int,
        completion: Completion,
        cost: float,
    ) -> dict[str, Any]:
        if state.onellm:
            return {
                "provider": "emulator",
                "model": model,
                "role": "assistant",
                "content": completion.text,
                "usage": {
                    "input_tokens": prompt_tokens,
                    "output_tokens": completion.tokens,
                    "total_tokens": prompt_tokens + completion.tokens,
                },
                "finish_reason": completion.finish_reason,
            }
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion.tokens,
            "total_tokens": prompt_tokens + completion.tokens,
        }
        if state.has_listing and _wants_usage(body):
            usage["cost"] = round(cost, 12)
        return {
            "id": f"chatcmpl-{state.name}-{state.stats.requests}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": completion.text},
                    "finish_reason": completion.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": usage,
        }

    async def _stream(
        self,
        state: GatewayState,
        request: web.Request,
        body: Mapping[str, Any],
        faults: Faults,
        status: int | None,
        prompt_tokens: int,
        completion: Completion,
        prices: tuple[float, float],
        used: list[int],
    ) -> web.StreamResponse:
        rng = state.rng
        ttft = (faults.ttft or faults.latency).sample(rng)
        if status is not None:
            await asyncio.sleep(ttft)
            fault_headers = self._retry_after(state, 1.0) if status == 429 else None
            return self._error(state, status, headers=fault_headers)
        loop = asyncio.get_running_loop()
        response = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                **state.account.headers(loop.time()),
            },
        )
        await response.prepare(request)
        stats = state.stats
        stats.streams += 1
        stats.answered(200)
        if faults.cut_after == 0:
            return self._cut(state, request, response)
        if state.has_listing:
            await response.write(_COMMENT)
        await asyncio.sleep(ttft)
        broken = faults.draw_malformed(rng)
        if broken is not None:
            stats.malformed += 1
            if broken is not Malformed.EMPTY:
                await response.write(b'data: {"id": "chatcmpl-x", "choices": [{"delta": {"content\n\n')
            await response.write_eof()
            return response
        model = body["model"]
        created = int(time.time())
        ident = f"chatcmpl-{state.name}-{stats.requests}"

        def chunk(delta: Mapping[str, Any], finish: str | None = None) -> bytes:
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(payload).encode() + b"\n\n"

        await response.write(chunk({"role": "assistant", "content": ""}))
        for i, word in enumerate(completion.words):
            if i == faults.cut_after:
                return self._cut(state, request, response)
            if i == faults.stall_after:
                stats.stalled += 1
                await self._closing.wait()
                return self._cut(state, request, response)
            if i == faults.error_event_after:
                stats.error_events += 1
                event = {"error": {"code": 502, "message": "Provider returned error"}}
                await response.write(b"data: " + json.dumps(event).encode() + b"\n\n")
                await response.write_eof()
                return response
            if i and faults.inter_chunk:
                await asyncio.sleep(faults.inter_chunk)
            await response.write(chunk({"content": word}))
        cost = self._charge(state, prompt_tokens, completion, *prices)
        used[0] = prompt_tokens + completion.tokens
        await response.write(chunk({}, completion.finish_reason))
        if _wants_usage(body):
            usage: dict[str, Any] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion.tokens,
                "total_tokens": prompt_tokens + completion.tokens,
            }
            if state.has_listing:
                usage["cost"] = round(cost, 12)
            payload = {
                "id": ident,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            await response.write(b"data: " + json.dumps(payload).encode() + b"\n\n")
        await response.write(_DONE)
        await response.write_eof()
        return response

    def _cut(
        self, state: GatewayState, request: web.Request, response: web.StreamResponse
    ) -> web.StreamResponse:
        """Drop the connection mid-stream, with no terminating chunk."""
        state.stats.cut += 1
        if request.transport is not None:
            request.transport.abort()
        return response


def _wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    usage = body.get("usage")
    return (isinstance(options, dict) and options.get("include_usage") is True) or (
        isinstance(usage, dict) and usage.get("include") is True
    )
