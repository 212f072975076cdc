"""The emulator: the four gateways on loopback, one aiohttp application, one port each.

Each gateway listens on its own port, so an outage that refuses connections
refuses them for that gateway only, and its base URL looks like the real one
(``http://127.0.0.1:<port>/v1``; OneLLM: ``http://127.0.0.1:<port>`` with chat
at ``/api``). Time is the event loop's, so tests that run the loop on fake time
(looptime) see latencies and Retry-After windows without waiting for them.

What each gateway checks, from its document: a missing or empty key is 401 in
its own error shape (any non-empty key passes unless keys are configured); an
unknown model is 404 (OneLLM: 400); OneLLM refuses ``stream`` and ``stop`` with
400 and takes ``stop_sequences``; Onetoken's search models refuse the parameters
the catalog marks unsupported; a prompt plus ``max_tokens`` over the context
window is 400 ``context_length_exceeded``.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import math
import random
import socket
import time
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs
from aiohttp import web

from .._catalog import shipped_canonicalizer, snapshot
from .._errors import ConfigError
from .._gateway import BUILTIN_GATEWAYS, Gateway
from .._offer import Offer
from .._tier import Tier
from ._accounts import Account, RetryAfterStyle
from ._faults import Faults, Malformed, Outage
from ._stats import GatewayStats, StatsRecorder
from ._text import Completion, complete, count_prompt_tokens

__all__ = ["Emulator", "FaultsFile"]

_DEFAULT_MAX_COST_TOKENS: Final = 48  # the longest natural reply, counted when max_tokens is not set
_COMMENT: Final = b": OPENROUTER PROCESSING\n\n"
_DONE: Final = b"data: [DONE]\n\n"

# Each gateway's own words for its errors, from its document where it has them.
_MESSAGES: Final[Mapping[str, Mapping[int, str]]] = {
    "onellm": {
        400: "Invalid JSON or missing required fields.",
        401: "API key missing or invalid.",
        402: "A minimum balance of $0.10 is required to make API requests.",
        403: "You don't have access to the requested resource",
        404: "Invalid Endpoint.",
        405: "Endpoint does not support the HTTP method used.",
        422: "Invalid type or format in the request body.",
        429: "Rate limit exceeded. Try again later.",
        500: "Something went wrong on the server side.",
    },
    "oneai": {
        401: "Invalid or missing API key",
        402: "Insufficient balance — top up your account",
        429: "Rate limit exceeded — slow down or upgrade",
        500: "Server error — we're on it. Retry with backoff",
        503: "Model overloaded — try again or switch models",
    },
}
_GENERIC: Final[Mapping[int, str]] = {
    400: "Bad request",
    401: "Invalid API key",
    402: "Insufficient credits",
    404: "Not found",
    405: "Method not allowed",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}
_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_balance",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


def _per_token(price: float | None) -> str | None:
    return None if price is None else f"{price / 1_000_000:.12f}".rstrip("0").rstrip(".")


class _Gateway:
    """One emulated gateway's state."""

    def __init__(self, name: str, seed: int, port: int, now: float) -> None:
        self.name = name
        self.onellm = name == "onellm"
        self.has_listing = name == "onerouter"
        self.offers: dict[str, Offer] = {}
        for offer in snapshot(name):
            self.offers.setdefault(offer.gateway_model, offer)
        self.rng = random.Random(f"{seed}:{name}")
        self.faults = Faults()
        self.model_faults: dict[str, Faults] = {}
        self.account = Account(None, now)
        self.stats = StatsRecorder()
        self.port = port
        self.site: web.BaseSite | None = None
        self.key: str | None = None
        self.alternate = 0

    def message(self, status: int) -> str:
        return _MESSAGES.get(self.name, {}).get(status) or _GENERIC.get(status) or f"HTTP {status}"

    def error_body(self, status: int, message: str | None = None, code: str | None = None) -> bytes:
        text = message or self.message(status)
        if self.onellm:
            return json.dumps({"error": text}).encode()
        error = {"message": text, "type": _TYPES.get(status, "api_error"), "code": code}
        return json.dumps({"error": error}).encode()

    def faults_for(self, model: str | None) -> Faults:
        if model is not None:
            found = self.model_faults.get(model)
            if found is not None:
                return found
        return self.faults


class Emulator:
    """The four gateways on 127.0.0.1, with faults, tiers and balances you set while it runs.

    Use it as ``async with Emulator() as emu:``; ``emu.gateways()`` gives the four
    :class:`Gateway` values pointed at it, ``emu.base_url(name)`` one base URL,
    and ``emu.stats(name)`` what that gateway received and sent.

    Args:
        seed: seeds each gateway's random draws (error rates, latency), so a run repeats.
        port: the first port; the gateways take it and the next three, in the order
            onellm, oneai, onetoken, onerouter. None: free ports.
        keys: gateway -> the only key it accepts; others accept any non-empty key.
        onellm_chat_path: where OneLLM takes chat requests (its document: ``/api``).
        default_price: (input, output) USD per million tokens for balance accounting
            of offers whose price is unknown.
        host: the address to bind; loopback unless you mean otherwise.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        port: int | None = None,
        keys: Mapping[str, str] | None = None,
        onellm_chat_path: str = "/api",
        default_price: tuple[float, float] = (1.0, 2.0),
        host: str = "127.0.0.1",
    ) -> None:
        if not onellm_chat_path.startswith("/"):
            raise ConfigError(f"onellm_chat_path must start with '/', not {onellm_chat_path!r}")
        self._seed = seed
        self._first_port = port
        self._keys = dict(keys or {})
        unknown = set(self._keys) - set(BUILTIN_GATEWAYS)
        if unknown:
            raise ConfigError(f"keys for unknown gateways: {sorted(unknown)}")
        self._onellm_path = onellm_chat_path
        self._default_price = default_price
        self._host = host
        self._gateways: dict[str, _Gateway] = {}
        self._by_port: dict[int, _Gateway] = {}
        self._runner: web.AppRunner | None = None
        self._closing: asyncio.Event | None = None
        self._schedule: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind the four ports and start serving."""
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        try:
            for i, name in enumerate(BUILTIN_GATEWAYS):
                port = 0 if self._first_port is None else self._first_port + i
                sock = self._bind(port)
                state = _Gateway(name, self._seed, sock.getsockname()[1], loop.time())
                state.key = self._keys.get(name)
                self._gateways[name] = state
                self._by_port[state.port] = state
                await self._listen(state, sock)
        except BaseException:
            await self.aclose()
            raise

    def _bind(self, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, port))
        except OSError:
            sock.close()
            raise
        return sock

    async def _listen(self, state: _Gateway, sock: socket.socket | None = None) -> None:
        assert self._runner is not None
        site = web.SockSite(self._runner, sock or self._bind(state.port))
        await site.start()
        state.site = site

    async def aclose(self) -> None:
        """Stop serving; requests left hanging or stalled are dropped."""
        if self._schedule is not None:
            self._schedule.cancel()
            await asyncio.gather(self._schedule, return_exceptions=True)
            self._schedule = None
        if self._closing is not None:
            self._closing.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- configuration -----------------------------------------------------------------------

    def _state(self, gateway: str) -> _Gateway:
        try:
            return self._gateways[gateway]
        except KeyError:
            if not self._gateways:
                raise RuntimeError(
                    "the emulator is not running; use `async with Emulator() as emu`"
                ) from None
            raise ConfigError(
                f"no gateway {gateway!r}; the emulator has {', '.join(self._gateways)}"
            ) from None

    def base_url(self, gateway: str) -> str:
        """The base URL the matching :class:`Gateway` constructor takes."""
        state = self._state(gateway)
        root = f"http://{self._host}:{state.port}"
        return root if state.onellm else root + "/v1"

    def gateways(
        self, api_key: str = "emulator-key", *, tiers: Mapping[str, Tier | None] | None = None
    ) -> list[Gateway]:
        """The four gateways pointed at this emulator, in the built-in order.

        Args:
            api_key: the key each one sends (a configured key replaces it).
            tiers: gateway -> the client-side tier to give that Gateway.
        """
        tiers = tiers or {}
        out = []
        for name in BUILTIN_GATEWAYS:
            key = self._keys.get(name, api_key)
            if name == "onellm":
                out.append(
                    Gateway.onellm(
                        key, base_url=self.base_url(name), chat_path=self._onellm_path, tier=tiers.get(name)
                    )
                )
            else:
                out.append(Gateway.builtin(name, key, base_url=self.base_url(name), tier=tiers.get(name)))
        return out

    def add_offers(self, gateway: str, offers: Iterable[Offer]) -> None:
        """Serve more models at ``gateway`` than its catalog lists (keyed by each offer's gateway model id).

        Give your graph the same offers (``graph.add_offers``) so both sides agree.
        """
        state = self._state(gateway)
        for offer in offers:
            state.offers[offer.gateway_model] = offer

    def faults(self, gateway: str, model: str | None = None) -> Faults:
        """The faults in force for ``gateway`` (and ``model``, when it has its own)."""
        return self._state(gateway).faults_for(model)

    async def set_faults(
        self, gateway: str, faults: Faults | None = None, *, model: str | None = None
    ) -> None:
        """Replace a gateway's faults (or one model's, which then override the gateway's).

        ``faults=None`` clears them. An outage that refuses connections closes the
        gateway's port until faults without it are set; it applies to whole gateways.

        Raises:
            ConfigError: on an unknown gateway or model, or a per-model ``refuse`` outage.
        """
        state = self._state(gateway)
        new = faults if faults is not None else Faults()
        if model is not None:
            if model not in state.offers:
                raise ConfigError(f"{gateway} has no model {model!r}")
            if new.outage is Outage.REFUSE:
                raise ConfigError("a 'refuse' outage closes the gateway's port: set it without model=")
            if faults is None:
                state.model_faults.pop(model, None)
            else:
                state.model_faults[model] = new
            return
        was_refusing = state.faults.outage is Outage.REFUSE
        state.faults = new
        refusing = new.outage is Outage.REFUSE
        if refusing and not was_refusing and state.site is not None:
            await state.site.stop()
            state.site = None
        elif was_refusing and not refusing and state.site is None:
            await self._listen(state)

    async def update_faults(self, gateway: str, *, model: str | None = None, **changes: Any) -> None:
        """Change some of the faults in force (``await emu.update_faults("oneai", latency=0.2)``)."""
        current = self.faults(gateway, model)
        try:
            await self.set_faults(gateway, attrs.evolve(current, **changes), model=model)
        except TypeError as exc:
            raise ConfigError(f"unknown fault setting: {exc}") from None

    def set_tier(
        self,
        gateway: str,
        tier: Tier | None,
        *,
        retry_after: RetryAfterStyle | str = RetryAfterStyle.SECONDS,
        headers: bool = True,
    ) -> None:
        """Enforce ``tier``'s limits on the gateway's account (None lifts them).

        Args:
            retry_after: how its 429s say when to come back: ``seconds``,
                ``http-date``, ``ms`` (``retry-after-ms``), or ``alternate``.
            headers: send ``x-ratelimit-*`` headers with every answer.
        """
        state = self._state(gateway)
        balance = state.account.balance_usd
        state.account = Account(
            tier, asyncio.get_running_loop().time(), retry_after=RetryAfterStyle(retry_after), headers=headers
        )
        state.account.balance_usd = balance

    def set_balance(self, gateway: str, usd: float | None) -> None:
        """Give the account a balance in USD (None: unlimited); at zero it answers 402."""
        if usd is not None and (not math.isfinite(usd) or usd < 0):
            raise ConfigError(f"a balance is a non-negative amount of USD, not {usd!r}")
        self._state(gateway).account.balance_usd = usd

    def balance(self, gateway: str) -> float | None:
        """What is left of the account's balance (None: unlimited)."""
        return self._state(gateway).account.balance_usd

    def stats(self, gateway: str) -> GatewayStats:
        """What ``gateway`` has received and sent so far."""
        return self._state(gateway).stats.snapshot()

    def reset_stats(self) -> None:
        """Start every gateway's counters again from zero."""
        for state in self._gateways.values():
            in_flight = state.stats.in_flight
            state.stats = StatsRecorder()
            state.stats.in_flight = in_flight

    def run_schedule(self, entries: Iterable[tuple[float, str, Faults | None, str | None]]) -> None:
        """Change faults at given times: (seconds from now, gateway, faults, model or None)."""
        ordered = sorted(entries, key=lambda e: e[0])
        for _, gateway, _, model in ordered:
            state = self._state(gateway)
            if model is not None and model not in state.offers:
                raise ConfigError(f"{gateway} has no model {model!r}")

        async def run() -> None:
            loop = asyncio.get_running_loop()
            start = loop.time()
            for at, gateway, faults, model in ordered:
                await asyncio.sleep(max(0.0, start + at - loop.time()))
                await self.set_faults(gateway, faults, model=model)

        if self._schedule is not None:
            self._schedule.cancel()
        self._schedule = asyncio.get_running_loop().create_task(run())

    async def apply(self, settings: FaultsFile) -> None:
        """Apply a parsed faults file: tiers, balances, faults, and its schedule."""
        for gateway, (tier, style) in settings.tiers.items():
            self.set_tier(gateway, tier, retry_after=style)
        for gateway, usd in settings.balances.items():
            self.set_balance(gateway, usd)
        for gateway, faults in settings.faults.items():
            await self.set_faults(gateway, faults)
        for (gateway, model), faults in settings.model_faults.items():
            await self.set_faults(gateway, faults, model=model)
        if settings.schedule:
            self.run_schedule(settings.schedule)

    # -- serving -----------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
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
        state: _Gateway,
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

    def _listing(self, state: _Gateway) -> web.Response:
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

    async def _hang(self, state: _Gateway) -> web.StreamResponse:
        state.stats.hung += 1
        assert self._closing is not None
        await self._closing.wait()
        raise web.HTTPServiceUnavailable()

    def _authorized(self, state: _Gateway, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        return state.key is None or key.strip() == state.key

    def _retry_after(self, state: _Gateway, seconds: float) -> dict[str, str]:
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

    async def _chat(self, state: _Gateway, request: web.Request) -> web.StreamResponse:
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
        self, state: _Gateway, prompt_tokens: int, completion: Completion, in_price: float, out_price: float
    ) -> float:
        state.stats.prompt_tokens += prompt_tokens
        state.stats.completion_tokens += completion.tokens
        cost = (prompt_tokens * in_price + completion.tokens * out_price) / 1_000_000
        state.account.charge(cost)
        return cost

    def _malformed(self, state: _Gateway, kind: Malformed) -> web.Response:
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
        state: _Gateway,
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
        state: _Gateway,
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
                assert self._closing is not None
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

    def _cut(self, state: _Gateway, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
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


@attrs.frozen
class FaultsFile:
    """A parsed faults file (``switchyard emulate --faults FILE``).

    The JSON is ``{"seed": n, "gateways": {name: settings}, "schedule": [...]}``.
    Per gateway: fault settings (the arguments of :class:`Faults`), plus ``tier``
    (``free``, ``pro`` or ``{"rpm", "tpm", "concurrency"}``), ``retry_after``
    (``seconds``, ``http-date``, ``ms``, ``alternate``), ``balance_usd`` and
    ``models`` (model -> fault settings). A schedule entry is ``{"at": seconds,
    "gateway": name, "model": optional, "faults": settings or null}``.
    """

    seed: int = 0
    tiers: Mapping[str, tuple[Tier, RetryAfterStyle]] = attrs.field(factory=dict)
    balances: Mapping[str, float] = attrs.field(factory=dict)
    faults: Mapping[str, Faults] = attrs.field(factory=dict)
    model_faults: Mapping[tuple[str, str], Faults] = attrs.field(factory=dict)
    schedule: tuple[tuple[float, str, Faults | None, str | None], ...] = ()

    @classmethod
    def parse(cls, data: Any) -> FaultsFile:
        """Validate and parse the JSON of a faults file.

        Raises:
            ConfigError: naming what is wrong.
        """
        if not isinstance(data, dict):
            raise ConfigError("a faults file is a JSON object")
        unknown = set(data) - {"seed", "gateways", "schedule"}
        if unknown:
            raise ConfigError(f"unknown keys in the faults file: {sorted(unknown)}")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed must be a whole number")
        gateways = data.get("gateways", {})
        if not isinstance(gateways, dict) or set(gateways) - set(BUILTIN_GATEWAYS):
            raise ConfigError(f"'gateways' maps gateway names ({', '.join(BUILTIN_GATEWAYS)}) to settings")
        tiers: dict[str, tuple[Tier, RetryAfterStyle]] = {}
        balances: dict[str, float] = {}
        faults: dict[str, Faults] = {}
        model_faults: dict[tuple[str, str], Faults] = {}
        for gateway, raw in gateways.items():
            if not isinstance(raw, dict):
                raise ConfigError(f"settings for {gateway} must be an object")
            config = dict(raw)
            tier = _parse_tier(config.pop("tier", None))
            try:
                style = RetryAfterStyle(config.pop("retry_after", "seconds"))
            except ValueError as exc:
                raise ConfigError(f"{gateway}: {exc}") from None
            if tier is not None:
                tiers[gateway] = (tier, style)
            balance = config.pop("balance_usd", None)
            if balance is not None:
                if isinstance(balance, bool) or not isinstance(balance, int | float) or balance < 0:
                    raise ConfigError(f"{gateway}: balance_usd must be a non-negative number")
                balances[gateway] = float(balance)
            models = config.pop("models", {})
            faults[gateway] = Faults.from_dict(config)
            if not isinstance(models, dict):
                raise ConfigError(f"{gateway}: 'models' maps model ids to fault settings")
            for model, model_config in models.items():
                model_faults[(gateway, model)] = Faults.from_dict(model_config)
        schedule = []
        for entry in data.get("schedule", []):
            if (
                not isinstance(entry, dict)
                or set(entry) - {"at", "gateway", "model", "faults"}
                or "at" not in entry
            ):
                raise ConfigError(
                    f"a schedule entry is {{'at', 'gateway', 'model', 'faults'}}, not {entry!r}"
                )
            if entry.get("gateway") not in BUILTIN_GATEWAYS:
                raise ConfigError(f"schedule entry for unknown gateway {entry.get('gateway')!r}")
            entry_faults = None if entry.get("faults") is None else Faults.from_dict(entry["faults"])
            schedule.append((float(entry["at"]), str(entry["gateway"]), entry_faults, entry.get("model")))
        return cls(seed, tiers, balances, faults, model_faults, tuple(schedule))


def _parse_tier(value: Any) -> Tier | None:
    if value is None:
        return None
    if isinstance(value, str):
        presets = {"free": Tier.FREE, "pro": Tier.PRO}
        if value.lower() not in presets:
            raise ConfigError(f"a tier is 'free', 'pro' or {{'rpm', 'tpm', 'concurrency'}}, not {value!r}")
        return presets[value.lower()]
    if isinstance(value, dict) and set(value) <= {"rpm", "tpm", "concurrency"}:
        return Tier(**value)
    raise ConfigError(f"a tier is 'free', 'pro' or {{'rpm', 'tpm', 'concurrency'}}, not {value!r}")
