"""Serving: one aiohttp handler answers every gateway, in that gateway's wire format."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any, Final

import attrs
from aiohttp import web

from .._catalog import shipped_canonicalizer
from ._accounts import RetryAfterStyle
from ._checks import check_body, check_capabilities
from ._faults import Faults, Malformed, Outage
from ._state import GatewayState
from ._text import complete, count_prompt_tokens
from ._tools import tool_reply
from ._wire import Answer, chunk, onellm_reply, openai_reply, usage_json

__all__ = ["Handler"]

_DEFAULT_MAX_COST_TOKENS: Final = 48  # the longest natural reply, counted when max_tokens is not set
_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"
_DONE: Final = b"data: [DONE]\n\n"


def _per_token(price: float | None) -> str | None:
    return None if price is None else f"{price / 1_000_000:.12f}".rstrip("0").rstrip(".")


def _affordable(balance: float, prompt_tokens: int, in_price: float, out_price: float) -> int:
    """The completion tokens ``balance`` pays for once the prompt is paid (at least 1)."""
    left = balance - prompt_tokens * in_price / 1_000_000
    return max(1, math.floor(left / out_price * 1_000_000 + 1e-9))


@attrs.frozen
class _Streamed:
    """What a streamed answer needs besides the gateway and the connection."""

    ident: str
    body: Mapping[str, Any]
    faults: Faults
    prompt_tokens: int
    answer: Answer
    prices: tuple[float, float]


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
        number = state.stats.requests
        if state.faults.outage is Outage.HANG:
            return await self._hang(state)
        if not self._authorized(state, request):
            return self._error(state, 401)
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return self._error(state, 400, None if state.onellm else "We could not parse the JSON body.")
        refusal = check_body(body, onellm=state.onellm)
        if refusal is not None:
            return self._error(state, refusal.status, refusal.message, code=refusal.code)
        model: str = body["model"]
        messages: list[Any] = body["messages"]
        stream = bool(body.get("stream"))
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
        refusal = check_capabilities(body, offer.capabilities, takes_tools=not state.onellm)
        if refusal is not None:
            return self._error(state, refusal.status, refusal.message, code=refusal.code)
        max_tokens: int | None = body.get("max_tokens")
        prompt_tokens = count_prompt_tokens(messages, None if state.onellm else body.get("tools"))
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
        account = state.account
        if not account.can_pay(state.minimum_balance):
            # Refused before any work: nothing reserved, nothing charged.
            return self._error(state, 402, code="insufficient_balance")

        loop = asyncio.get_running_loop()
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
            in_price, out_price = (
                (offer.input_price or 0.0, offer.output_price or 0.0) if offer.priced else self._default_price
            )
            if state.onellm and account.balance_usd is not None and out_price > 0:
                # OneLLM lowers max_tokens to what the balance pays for, without saying so: the
                # reply stops there with finish_reason "length", and nothing else tells.
                affordable = _affordable(account.balance_usd, prompt_tokens, in_price, out_price)
                if affordable < (max_tokens or _DEFAULT_MAX_COST_TOKENS):
                    max_tokens = affordable
                    stats.max_tokens_lowered += 1
            answer = self._answer(state, body, faults, max_tokens, number)
            ident = f"chatcmpl-{state.name}-{number}"
            status = faults.draw_status(state.rng)
            if stream:
                return await self._stream(
                    state,
                    request,
                    _Streamed(ident, body, faults, prompt_tokens, answer, (in_price, out_price)),
                    status,
                    used,
                )
            await asyncio.sleep(faults.latency.sample(state.rng))
            if status is not None:
                fault_headers = self._retry_after(state, 1.0) if status == 429 else None
                return self._error(state, status, headers=fault_headers)
            broken = faults.draw_malformed(state.rng)
            if broken is not None:
                return self._malformed(state, broken)
            cost = self._charge(state, prompt_tokens, answer, in_price, out_price)
            used[0] = prompt_tokens + answer.tokens
            if state.onellm:
                payload = onellm_reply(model, answer, prompt_tokens)
            else:
                with_cost = state.has_listing and _wants_usage(body)
                usage = usage_json(prompt_tokens, answer.tokens, cost if with_cost else None)
                payload = openai_reply(ident, int(time.time()), model, answer, usage)
            stats.answered(200)
            return web.Response(
                body=json.dumps(payload).encode(),
                content_type="application/json",
                headers=account.headers(loop.time()) or None,
            )
        finally:
            stats.leave()
            account.release(loop.time(), reserved, used[0])

    def _answer(
        self,
        state: GatewayState,
        body: Mapping[str, Any],
        faults: Faults,
        max_tokens: int | None,
        number: int,
    ) -> Answer:
        """Tool calls when the request's tools and the faults ask for them (not at OneLLM), else text."""
        if not state.onellm:
            calls = tool_reply(
                body, fault_calls=faults.tool_calls, max_tokens=max_tokens, id_seed=f"{state.name}:{number}"
            )
            if calls is not None:
                return Answer.of_tools(calls, interleave=faults.interleave_tool_calls)
        stop = body.get("stop_sequences" if state.onellm else "stop") or ()
        completion = complete(
            body["model"], body["messages"], max_tokens, [stop] if isinstance(stop, str) else list(stop)
        )
        return Answer.of_text(completion)

    def _charge(
        self, state: GatewayState, prompt_tokens: int, answer: Answer, in_price: float, out_price: float
    ) -> float:
        state.stats.prompt_tokens += prompt_tokens
        state.stats.completion_tokens += answer.tokens
        state.stats.tool_calls += answer.tool_calls
        cost = (prompt_tokens * in_price + answer.tokens * out_price) / 1_000_000
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

    async def _stream(
        self,
        state: GatewayState,
        request: web.Request,
        streamed: _Streamed,
        status: int | None,
        used: list[int],
    ) -> web.StreamResponse:
        rng = state.rng
        faults = streamed.faults
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
        answer = streamed.answer
        ident, model, created = streamed.ident, streamed.body["model"], int(time.time())
        first, *rest = answer.deltas
        await response.write(chunk(ident, created, model, first))
        for i, delta in enumerate(rest):
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
            await response.write(chunk(ident, created, model, delta))
        cost = self._charge(state, streamed.prompt_tokens, answer, *streamed.prices)
        used[0] = streamed.prompt_tokens + answer.tokens
        await response.write(chunk(ident, created, model, {}, answer.finish_reason))
        if _wants_usage(streamed.body):
            usage = usage_json(streamed.prompt_tokens, answer.tokens, cost if state.has_listing else None)
            await response.write(chunk(ident, created, model, None, usage=usage))
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
