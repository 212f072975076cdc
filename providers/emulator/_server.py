"""The emulator: the four gateways on loopback, one aiohttp application, one port each.

Each gateway listens on its own port, so an outage that refuses connections
refuses them for that gateway only, and its base URL looks like the real one
(``http://127.0.0.1:<port>/v1``; OneLLM: ``http://127.0.0.1:<port>`` with chat
at ``/api``). Time is the event loop's, so tests that run the loop on fake time
(looptime) see latencies and Retry-After windows without waiting for them.

What each gateway checks, from its document: a missing or empty key is 401 in
its own error shape (any non-empty key passes unless keys are configured); a
malformed body is 400 (OneLLM: 400 for invalid JSON or a missing field, 422 for
a wrong type or format, as its error table says); an unknown model, or one taken
away with :meth:`Emulator.remove_offers`, is 404 ``model_not_found`` (OneLLM: 400
``Unknown model '...'.``); OneLLM refuses ``stream`` and ``stop`` with 400 and
takes ``stop_sequences``; Onetoken's search models refuse the parameters the
catalog marks unsupported; image, PDF and audio parts (and ``tools``) are 400
for a model whose capabilities say it cannot take them (unknown is accepted); a
prompt plus ``max_tokens`` over the context window is 400
``context_length_exceeded``.

Balances: with one set (:meth:`Emulator.set_balance`), a gateway answers 402 once
it is spent, OneLLM as soon as it is under its documented $0.10 minimum ("A
minimum balance of $0.10 is required to make API requests."), before any work.
Above it, OneLLM silently lowers ``max_tokens`` to the completion tokens the
balance pays for after the prompt (its price unknown: ``default_price``): the
reply stops there with ``finish_reason: "length"``, so ``output_tokens`` is below
the ``max_tokens`` sent, and nothing else (no header, no field) says so;
``GatewayStats.max_tokens_lowered`` counts it.

Tool calls (OpenAI-compatible gateways; OneLLM ignores ``tools`` as its document
has none): ``tool_choice="required"`` or a named function makes the model call
tools, and ``Faults(tool_calls=N)`` makes it call the first N under ``"auto"``;
plain and streamed exactly as OpenAI sends them (see ``_tools`` for the rules).
"""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import Iterable, Mapping
from typing import Any

import attrs
from aiohttp import web

from .._errors import ConfigError
from .._gateway import BUILTIN_GATEWAYS, Gateway
from .._offer import Offer
from .._tier import Tier
from ._accounts import Account, RetryAfterStyle
from ._dialect import Dialect
from ._faults import Faults, Outage
from ._faultsfile import FaultsFile
from ._handler import Handler
from ._onellm_dialect import OneLLMDialect
from ._openai_dialect import OPENAI_GATEWAYS
from ._state import GatewayState
from ._stats import GatewayStats, StatsRecorder

__all__ = ["Emulator"]


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
        self._dialects: dict[str, Dialect] = {"onellm": OneLLMDialect(onellm_chat_path), **OPENAI_GATEWAYS}
        self._default_price = default_price
        self._host = host
        self._gateways: dict[str, GatewayState] = {}
        self._by_port: dict[int, GatewayState] = {}
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
            raise ConfigError("the emulator is already running")
        loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()
        app = web.Application(client_max_size=16 * 1024 * 1024)
        handler = Handler(self._by_port, default_price=self._default_price, closing=self._closing)
        app.router.add_route("*", "/{tail:.*}", handler.handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        try:
            for i, name in enumerate(BUILTIN_GATEWAYS):
                port = 0 if self._first_port is None else self._first_port + i
                sock = self._bind(port)
                bound = sock.getsockname()[1]
                state = GatewayState(name, self._dialects[name], self._seed, bound, loop.time())
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

    async def _listen(self, state: GatewayState, sock: socket.socket | None = None) -> None:
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

    def _state(self, gateway: str) -> GatewayState:
        try:
            return self._gateways[gateway]
        except KeyError:
            if not self._gateways:
                raise ConfigError("the emulator is not running; use `async with Emulator() as emu`") from None
            raise ConfigError(
                f"no gateway {gateway!r}; the emulator has {', '.join(self._gateways)}"
            ) from None

    def base_url(self, gateway: str) -> str:
        """The base URL the matching :class:`Gateway` constructor takes."""
        state = self._state(gateway)
        return state.dialect.base_url(f"http://{self._host}:{state.port}")

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
            out.append(self._state(name).dialect.gateway(key, self.base_url(name), tiers.get(name)))
        return out

    def add_offers(self, gateway: str, offers: Iterable[Offer]) -> None:
        """Serve more models at ``gateway`` than its catalog lists (keyed by each offer's gateway model id).

        An offer whose gateway model id is already served replaces it (other prices,
        context window or capabilities). Give your graph the same offers
        (``graph.add_offers``) so both sides agree.
        """
        state = self._state(gateway)
        for offer in offers:
            state.offers[offer.gateway_model] = offer

    def remove_offers(self, gateway: str, models: Iterable[str]) -> None:
        """Stop serving ``models`` (gateway model ids) at ``gateway``, as when a gateway drops a model.

        The gateway then answers them as any unknown model (OneLLM: 400 ``Unknown model
        '...'.``; the others: 404 ``model_not_found``), its models listing leaves them
        out, and their own faults are cleared. :meth:`add_offers` serves them again.

        Raises:
            ConfigError: naming the ids the gateway does not serve (nothing is removed then).
        """
        state = self._state(gateway)
        wanted = [models] if isinstance(models, str) else list(models)
        missing = [m for m in wanted if m not in state.offers]
        if missing:
            raise ConfigError(f"{gateway} does not serve {', '.join(map(repr, missing))}; nothing removed")
        for model in wanted:
            del state.offers[model]
            state.model_faults.pop(model, None)

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
        """Give the account a balance in USD (None: unlimited); at zero it answers 402.

        OneLLM answers 402 under its $0.10 minimum, and lowers ``max_tokens`` to what
        the balance pays for (see the module's notes).
        """
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
