"""Serving: one aiohttp handler answers every gateway, asking the gateway's dialect for its wire format."""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from .._catalog import shipped_canonicalizer
from ._accounts import RetryAfterStyle
from ._answer import Answer
from ._checks import Refusal, check_capabilities, check_context
from ._faults import Faults, Malformed, Outage
from ._sse_writer import Served, SseWriter, Streamed
from ._state import GatewayState
from ._text import LONGEST_REPLY, complete, count_prompt_tokens
from ._tools import tool_reply

__all__ = ["Handler"]


def _per_token(price: float | None) -> str | None:
    return None if price is None else f"{price / 1_000_000:.12f}".rstrip("0").rstrip(".")


class Handler:
    """Answers the requests that reach any of the gateways' ports.

    Args:
        by_port: the gateways by the port they listen on (filled in as they start).
        default_price: (input, output) USD per million tokens for offers with no price.
        closing: set when the emulator stops; hung and stalled answers end then.
    """

    def __init__(
        self,
        by_port: Mapping[int, GatewayState],
        *,
        default_price: tuple[float, float],
        closing: asyncio.Event,
    ) -> None:
        self._by_port = by_port
        self._default_price = default_price
        self._closing = closing
        self._sse = SseWriter(closing)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Answer ``request`` as the gateway on its port."""
        transport = request.transport
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        state = self._by_port.get(sockname[1]) if sockname else None
        if state is None:
            raise web.HTTPNotFound()
        if request.path == state.dialect.chat_path:
            return await self._chat(state, request) if request.method == "POST" else self._error(state, 405)
        if request.path == state.dialect.models_path:
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
            body=state.dialect.error_body(status, message, code),
            content_type="application/json",
            headers=headers,
        )

    def _refuse(self, state: GatewayState, refusal: Refusal) -> web.Response:
        return self._error(state, refusal.status, refusal.message, code=refusal.code)

    def _fault(self, state: GatewayState, status: int) -> web.Response:
        """An injected error status (a 429 says to come back in a second)."""
        return self._error(state, status, headers=self._retry_after(state, 1.0) if status == 429 else None)

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
        dialect = state.dialect
        body = dialect.parse(await request.read())
        if isinstance(body, Refusal):
            return self._refuse(state, body)
        model: str = body["model"]
        stream = dialect.streams and bool(body.get("stream"))
        state.stats.by_model[model] += 1
        offer = state.offers.get(model)
        if offer is None:
            return self._refuse(state, dialect.unknown_model(model))
        refusal = check_capabilities(body, offer.capabilities, takes_tools=dialect.takes_tools)
        if refusal is not None:
            return self._refuse(state, refusal)
        max_tokens: int | None = body.get("max_tokens")
        tools = body.get("tools") if dialect.takes_tools else None
        prompt_tokens = count_prompt_tokens(body["messages"], tools)
        refusal = check_context(offer.context_window, prompt_tokens, max_tokens)
        if refusal is not None:
            return self._refuse(state, refusal)
        faults = state.faults_for(model)
        if faults.outage is Outage.HANG:
            return await self._hang(state)
        account = state.account
        if not account.can_pay(dialect.minimum_balance):
            # Refused before any work: nothing reserved, nothing charged.
            return self._error(state, 402, code="insufficient_balance")

        loop = asyncio.get_running_loop()
        reserved = prompt_tokens + (max_tokens or LONGEST_REPLY)
        admission = account.admit(loop.time(), reserved)
        if not admission.admitted:
            account.refusals += 1
            headers = self._retry_after(state, admission.retry_after)
            headers.update(account.headers(loop.time()))
            return self._error(state, 429, f"{dialect.message(429)} ({admission.limit})", headers=headers)
        stats = state.stats
        stats.enter()
        served = Served()
        try:
            prices = (
                (offer.input_price or 0.0, offer.output_price or 0.0) if offer.priced else self._default_price
            )
            lowered = dialect.served_max_tokens(
                max_tokens, balance_usd=account.balance_usd, prompt_tokens=prompt_tokens, prices=prices
            )
            if lowered != max_tokens:
                max_tokens = lowered
                stats.max_tokens_lowered += 1
            answer = self._answer(state, body, faults, max_tokens, number)
            ident = f"chatcmpl-{state.name}-{number}"
            status = faults.draw_status(state.rng)
            if stream:
                ttft = (faults.ttft or faults.latency).sample(state.rng)
                if status is not None:
                    await asyncio.sleep(ttft)
                    return self._fault(state, status)
                streamed = Streamed(ident, body, faults, prompt_tokens, answer, prices)
                return await self._sse.write(state, request, streamed, ttft, served)
            await asyncio.sleep(faults.latency.sample(state.rng))
            if status is not None:
                return self._fault(state, status)
            broken = faults.draw_malformed(state.rng)
            if broken is not None:
                return self._malformed(state, broken)
            cost = state.charge(prompt_tokens, answer, prices)
            served.tokens = prompt_tokens + answer.tokens
            usage = dialect.usage(body, prompt_tokens, answer.tokens, cost)
            payload = dialect.reply(ident, int(time.time()), model, answer, usage)
            stats.answered(200)
            return web.Response(
                body=json.dumps(payload).encode(),
                content_type="application/json",
                headers=account.headers(loop.time()) or None,
            )
        finally:
            stats.leave()
            account.release(loop.time(), reserved, served.tokens)

    def _answer(
        self,
        state: GatewayState,
        body: Mapping[str, Any],
        faults: Faults,
        max_tokens: int | None,
        number: int,
    ) -> Answer:
        """Tool calls when the request's tools and the faults ask for them (where taken), else text."""
        if state.dialect.takes_tools:
            calls = tool_reply(
                body, fault_calls=faults.tool_calls, max_tokens=max_tokens, id_seed=f"{state.name}:{number}"
            )
            if calls is not None:
                return Answer.of_tools(calls, interleave=faults.interleave_tool_calls)
        stop = body.get(state.dialect.stop_parameter) or ()
        completion = complete(
            body["model"], body["messages"], max_tokens, [stop] if isinstance(stop, str) else list(stop)
        )
        return Answer.of_text(completion)

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
