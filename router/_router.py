"""The router: validate, plan, attempt, fail over, and say what happened.

One request goes like this:

1. :class:`ChatRequest` validates the input (nothing is sent on bad input).
2. The plan: the model's offers, then each fallback model's (depth-first, each
   once); hard filters drop what cannot serve (no key, a feature the target cannot
   carry, a context window too small for the estimated prompt + ``max_tokens``,
   an expected cost over ``max_cost_usd`` or unknown when a cap is set); the policy
   ranks what is left within each tier.
3. The failover loop, inside the overall ``deadline``: try each candidate once in
   order. A failure the policy moves on from goes to the next candidate at once (a
   different target needs no backoff). A 400/422 goes to the caller after that
   one attempt; a context-length rejection moves only to candidates with a known,
   larger context window. When every candidate has been tried, targets that
   failed retryably get one more try each, after full-jitter backoff and never
   before their Retry-After. Every attempt after a request's first draws on the
   router's shared :class:`RetryBudget`, so an outage cannot multiply traffic.
4. The reply carries its route: the gateway, its model id, the model, and every
   attempt with its outcome class and latency. Its cost is the successful
   attempt's alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import aiohttp
import attrs

from ..policies import (
    CheapestPerToken,
    MemoryStore,
    Policy,
    RateLimitAware,
    RequestContext,
    StateStore,
)
from ..providers import (
    BUILTIN_GATEWAYS,
    AiohttpTransport,
    ChatRequest,
    Clock,
    ConfigError,
    DeadlineExceeded,
    Gateway,
    HeuristicEstimator,
    LoopClock,
    NoCandidatesError,
    Offer,
    PromptTooLong,
    ProviderGraph,
    Reply,
    RouterError,
    StreamChunk,
    StreamInterrupted,
    Tier,
    Timeouts,
    TokenEstimator,
    ToolCallAssembler,
    Transport,
    UnsupportedFeature,
    UpstreamError,
    ValidationError,
    adapter_for,
    dropped_count,
    env_var,
    may_drop,
    unmet_needs,
)
from ._backoff import Backoff
from ._breaker import BreakerConfig
from ._budget import RetryBudget
from ._closures import Closures
from ._events import Hook, Hooks
from ._explain import Excluded, Explanation, Ranked
from ._health import Health
from ._run import Plan, _Run
from ._stream import Stream

__all__ = ["Router"]

_TIERS_FROM_ENV: Final = {"free": Tier.FREE, "pro": Tier.PRO}


class _Exclusions:
    """Why each excluded candidate was left out, and of which kind."""

    __slots__ = ("context", "feature", "items")

    def __init__(self) -> None:
        self.items: list[tuple[Offer, str]] = []
        self.context = 0
        self.feature = 0


_NO_EXCLUSIONS: Final = _Exclusions()  # shared, read-only: what a request with none gets


class Router:
    """Sends each chat request to the best candidate, failing over when one breaks.

    Use it as ``async with Router(graph) as router:``; it owns one HTTP session
    (or uses the one you pass, which it never closes).

    Args:
        graph: the provider graph (its gateways, offers and fallback edges).
        policy: orders each request's candidates; default :class:`CheapestPerToken`.
        fallbacks: model -> models to try when none of its offers can serve; these
            replace the graph's own edges for the models they name.
        timeout: per-attempt limit: seconds for the whole exchange, or a
            :class:`Timeouts` (connect, first byte, total).
        deadline: the overall limit for one request, all attempts and backoff included.
        retry_budget: the budget extra attempts draw on (shared by all requests).
        backoff: the wait before retrying the same target.
        estimator: estimates prompt tokens without the network.
        default_output_tokens: the output expected when a request sets no ``max_tokens``,
            for cost estimates.
        hooks: callables receiving each :class:`Event`.
        transport: how requests are sent (default: aiohttp; tests may pass a
            ``MockTransport``). Each gateway's requests in flight are capped at the
            transport's ``connections_per_host`` (the aiohttp default: 64), so none
            waits inside the client for a connection with its timeouts running.
        session: an aiohttp session for the default transport; never closed here.
        clock: the monotonic clock for latencies and deadlines (default: the event
            loop's).
        wall_clock: Unix time, for reply timestamps and HTTP-date Retry-After.
        seed: seeds backoff jitter and breaker-break jitter.
        breaker: thresholds and breaks of the circuit breakers.
        store: where breakers and rate-limit accounts keep their state.
        stream_upstream: have :meth:`chat` stream from the gateway by default (see there).
            Off by default: a plain reply costs less CPU, and the per-attempt timeouts
            bound it; turn it on to catch a stalled answer within the stall limit.
        max_retry_after: the longest one ``Retry-After`` may close an account or a
            target, in seconds (a gateway asking for more is taken to mean this).
            A zero, negative, NaN or past ``Retry-After`` counts as none.
        unavailable_for: how long an offer is left out of plans after its gateway
            answered that it does not serve the model (a stale snapshot).

    A router belongs to the event loop it is first used on; using it from another
    loop raises :class:`RouterError` (make one router per loop).

    Raises:
        ConfigError: on bad timeouts, deadline, budget or policy settings, or a
            policy naming a gateway the graph does not have.
        UnknownModelError: when ``fallbacks`` names a model no gateway serves.
    """

    def __init__(
        self,
        graph: ProviderGraph,
        *,
        policy: Policy | None = None,
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        timeout: float | Timeouts = 60.0,
        deadline: float = 120.0,
        retry_budget: RetryBudget | None = None,
        backoff: Backoff | None = None,
        estimator: TokenEstimator | None = None,
        default_output_tokens: int = 256,
        hooks: Iterable[Hook] = (),
        transport: Transport | None = None,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
        breaker: BreakerConfig | None = None,
        store: StateStore | None = None,
        stream_upstream: bool = False,
        max_retry_after: float = 120.0,
        unavailable_for: float = 300.0,
    ) -> None:
        if not isinstance(graph, ProviderGraph):
            raise ConfigError(f"Router takes a ProviderGraph, not {type(graph).__name__}")
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigError(f"policy must be a policy object such as CheapestPerToken(), not {policy!r}")
        for name, value in (("max_retry_after", max_retry_after), ("unavailable_for", unavailable_for)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
                raise ConfigError(f"{name} must be a positive number of seconds, not {value!r}")
        self._max_retry_after = float(max_retry_after)
        self._unavailable_for = float(unavailable_for)
        self._closures = Closures()
        self._loop: asyncio.AbstractEventLoop | None = None
        if isinstance(timeout, Timeouts):
            self._timeouts = timeout
        else:
            self._timeouts = Timeouts(total=timeout)
        if not isinstance(deadline, int | float) or deadline <= 0:
            raise ConfigError(f"deadline must be a positive number of seconds, not {deadline!r}")
        if default_output_tokens <= 0:
            raise ConfigError("default_output_tokens must be positive")
        if transport is not None and session is not None:
            raise ConfigError("pass a transport or a session, not both")
        self._graph = graph
        self._stream_upstream = stream_upstream
        # Rate-limit awareness is always on: a tier given to a gateway, or a 429's
        # Retry-After, is never ignored whatever ordering policy is chosen.
        inner = policy if policy is not None else CheapestPerToken()
        inner.check(graph.gateways)
        self._limits = inner if isinstance(inner, RateLimitAware) else RateLimitAware(inner, store=store)
        self._limits.on_release(self._capacity_freed)
        self._freed: asyncio.Event | None = None
        self._policy: Policy = self._limits
        self._deadline = float(deadline)
        self._budget = retry_budget if retry_budget is not None else RetryBudget()
        self._backoff = backoff if backoff is not None else Backoff()
        self._estimator: TokenEstimator = estimator if estimator is not None else HeuristicEstimator()
        self._default_output = default_output_tokens
        self._hooks = Hooks(tuple(hooks))
        self._transport: Transport = transport if transport is not None else AiohttpTransport(session)
        # Each gateway's requests in flight are capped at the connection pool's size per host.
        self._limits.attach(
            graph.gateways, connections=getattr(self._transport, "connections_per_host", None)
        )
        self._clock: Clock = clock if clock is not None else LoopClock()
        self._wall = wall_clock
        self._rng = random.Random(seed)
        self._health = Health(breaker, store if store is not None else MemoryStore(), random.Random(seed))
        self._ids = itertools.count(1)
        self._closed = False
        self._fallbacks: dict[str, tuple[str, ...]] = {}
        for model, targets in (fallbacks or {}).items():
            if isinstance(targets, str):
                raise ConfigError(
                    f"fallbacks[{model!r}] must be a list of models, not the string {targets!r}"
                )
            source = graph.resolve(model)
            chain = tuple(dict.fromkeys(graph.resolve(t) for t in targets))
            if source in chain:
                raise ConfigError(f"model {model!r} lists itself as its own fallback")
            self._fallbacks[source] = chain
        self._tiers: dict[str, tuple[int, tuple[tuple[str, tuple[Offer, ...]], ...]]] = {}
        # A policy that learns nothing is not told about attempts (no Outcome per attempt).
        self._policy_learns = self._limits.learns
        # Our aiohttp transport honours Timeouts (tested); any other gets a deadline timer.
        self._honours_timeouts = type(self._transport) is AiohttpTransport
        self._adapters = {name: adapter_for(gw) for name, gw in graph.gateways.items()}

    # -- construction from the environment -------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any) -> Router:
        """A router over every built-in gateway that has a key in the environment.

        Reads ``<NAME>_API_KEY`` (ONELLM, ONEAI, ONETOKEN, ONEROUTER), and optionally
        ``<NAME>_BASE_URL``, ``<NAME>_TIER`` (``free`` or ``pro``) and
        ``ONELLM_CHAT_PATH``. Other keyword arguments go to :class:`Router`.

        Raises:
            ConfigError: when no gateway has a key, or a setting is invalid.
        """
        env = os.environ if environ is None else environ
        gateways = []
        for name in BUILTIN_GATEWAYS:
            key = env.get(env_var(name, "API_KEY"))
            if not key:
                continue
            tier_name = env.get(env_var(name, "TIER"))
            tier = None
            if tier_name:
                tier = _TIERS_FROM_ENV.get(tier_name.strip().lower())
                if tier is None:
                    raise ConfigError(f"{env_var(name, 'TIER')} must be 'free' or 'pro', not {tier_name!r}")
            base_url = env.get(env_var(name, "BASE_URL")) or None
            if name == "onellm":
                gw = Gateway.onellm(
                    key, base_url=base_url, chat_path=env.get("ONELLM_CHAT_PATH") or None, tier=tier
                )
            else:
                gw = Gateway.builtin(name, key, base_url=base_url, tier=tier)
            gateways.append(gw)
        if not gateways:
            names = ", ".join(env_var(n, "API_KEY") for n in BUILTIN_GATEWAYS)
            raise ConfigError(f"no gateway key in the environment; set at least one of {names}")
        return cls(ProviderGraph.from_catalogs(gateways), **kwargs)

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Router:
        if self._closed:
            raise RouterError("this router is closed; make a new one")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport (and the session, if the router made it)."""
        self._closed = True
        await self._transport.aclose()

    def __repr__(self) -> str:
        return f"Router(gateways={list(self._graph.gateways)}, policy={self._policy!r})"

    @property
    def graph(self) -> ProviderGraph:
        """The provider graph."""
        return self._graph

    @property
    def policy(self) -> Policy:
        """The policy."""
        return self._policy

    @property
    def retry_budget(self) -> RetryBudget:
        """The retry budget all requests share."""
        return self._budget

    @property
    def health(self) -> Health:
        """The circuit breakers."""
        return self._health

    @property
    def limits(self) -> RateLimitAware:
        """The rate-limit accounts (token buckets and slots per gateway)."""
        return self._limits

    def _capacity_freed(self) -> None:
        # Wake every request waiting for a slot; they race for it and the rest wait again.
        event = self._freed
        if event is not None:
            self._freed = None
            event.set()

    def _capacity_event(self) -> asyncio.Event:
        if self._freed is None:
            self._freed = asyncio.Event()
        return self._freed

    def subscribe(self, hook: Hook) -> Callable[[], None]:
        """Receive every :class:`Event`; returns a function that unsubscribes."""
        return self._hooks.add(hook)

    # -- planning ----------------------------------------------------------------------------

    def _chain(self, canonical: str) -> tuple[tuple[str, tuple[Offer, ...]], ...]:
        """The model and its fallbacks (depth-first, each once) with offers; cached per graph version."""
        graph = self._graph
        cached = self._tiers.get(canonical)
        if cached is not None and cached[0] == graph.version:
            return cached[1]
        order: list[str] = []
        stack = [canonical]
        while stack:
            model = stack.pop()
            if model in order:
                continue
            order.append(model)
            edges = self._fallbacks.get(model)
            if edges is None:
                edges = graph.direct_fallbacks(model)
            stack.extend(reversed(edges))
        tiers = tuple((m, graph.offers(m)) for m in order)
        self._tiers[canonical] = (graph.version, tiers)
        return tiers

    def _exclusion(
        self, offer: Offer, request: ChatRequest, ctx: RequestContext, needs: frozenset[str]
    ) -> tuple[str, str] | None:
        """Why ``offer`` cannot serve this request, as (kind, reason); None when it can."""
        gateway = self._graph.gateways[offer.gateway or ""]
        if gateway.api_key is None:
            return "key", f"no API key for {gateway.name} (set {env_var(gateway.name, 'API_KEY')})"
        if self._closures:
            closure = self._closures.get((gateway.name, offer.gateway_model), ctx.now)
            if closure is not None and closure.exclude:
                return "health", f"{closure.reason} ({closure.until - ctx.now:.0f}s more)"
        unhealthy = self._health.exclusion(offer, ctx.now)
        if unhealthy is not None:
            return "health", unhealthy
        if needs:
            unmet = unmet_needs(needs, gateway.wire, offer.capabilities)
            if unmet:
                return "feature", f"cannot carry {', '.join(sorted(unmet))}"
        window = offer.context_window
        if window is not None and ctx.prompt_tokens + (request.max_tokens or 0) > window:
            return "context", (
                f"~{ctx.prompt_tokens} prompt + {request.max_tokens or 0} max_tokens tokens "
                f"is more than its context window of {window:,}"
            )
        cap = request.max_cost_usd
        if cap is not None:
            cost = offer.cost_usd(ctx.prompt_tokens, ctx.output_tokens)
            if cost is None:
                return "price", "its price is unknown, and max_cost_usd needs a known price"
            if cost > cap:
                return "price", f"expected ${cost:.6f}, over max_cost_usd ${cap:g}"
        return None

    def _context(self, request: ChatRequest, stream: bool) -> RequestContext:
        return RequestContext(
            request=request,
            prompt_tokens=self._estimator.prompt_tokens(request),
            output_tokens=request.max_tokens or self._default_output,
            now=self._clock.now(),
            stream=stream,
        )

    def _usable(
        self, chain: tuple[tuple[str, tuple[Offer, ...]], ...], request: ChatRequest, ctx: RequestContext
    ) -> tuple[list[tuple[str, list[Offer]]], _Exclusions]:
        """Each tier's offers that pass the hard filters, and what was excluded, with why."""
        found = _NO_EXCLUSIONS
        needs = request.needs
        sampling = request.sampling()
        droppable = bool(sampling) and may_drop(sampling)
        tiers = []
        for model, offers in chain:
            usable = []
            if (
                sampling
                and len(offers) > 1
                and (droppable or any(o.capabilities.unsupported_params for o in offers))
            ):
                # At an equal rank, a target that carries every requested parameter comes
                # first: the policies' sorts are stable, so ties keep this order.
                gateways = self._graph.gateways
                offers = tuple(
                    sorted(
                        offers,
                        key=lambda o: dropped_count(request, gateways[o.gateway or ""].wire, o.capabilities),
                    )
                )
            for offer in offers:
                excluded = self._exclusion(offer, request, ctx, needs)
                if excluded is None:
                    usable.append(offer)
                    continue
                if found is _NO_EXCLUSIONS:
                    found = _Exclusions()
                kind, why = excluded
                found.items.append((offer, why))
                if kind == "context":
                    found.context += 1
                elif kind == "feature":
                    found.feature += 1
            tiers.append((model, usable))
        return tiers, found

    def _plan(
        self, request: ChatRequest, *, stream: bool = False
    ) -> tuple[Plan, RequestContext, _Exclusions]:
        canonical = self._graph.resolve(request.model)
        ctx = self._context(request, stream)
        tiers, found = self._usable(self._chain(canonical), request, ctx)
        plan: Plan = []
        rank = self._policy.rank
        for tier, (_, usable) in enumerate(tiers):
            if len(usable) == 1:
                plan.append((tier, usable[0]))
            elif usable:
                plan.extend((tier, o) for o in rank(usable, ctx))
        if not plan:
            total = len(found.items)
            reasons = [(o.gateway or "", o.gateway_model, why) for o, why in found.items]
            detail = "; ".join(f"{g}:{m}: {why}" for g, m, why in reasons)
            if found.context == total:
                raise PromptTooLong(
                    f"the request does not fit any candidate of {canonical!r}: {detail}", param="messages"
                )
            if found.feature == total:
                raise UnsupportedFeature(f"no candidate of {canonical!r} can serve it: {detail}")
            raise NoCandidatesError(canonical, reasons)
        return plan, ctx, found

    def explain(self, model: str, messages: Iterable[object], **params: Any) -> Explanation:
        """The ordered candidates for this request, with the reason for each rank and exclusion.

        Sends nothing.

        Raises:
            ValidationError: on bad input.
            UnknownModelError: when no gateway serves the model.
        """
        request = ChatRequest.create(model, messages, **params)
        canonical = self._graph.resolve(request.model)
        ctx = self._context(request, False)
        tiers, found = self._usable(self._chain(canonical), request, ctx)
        ranked: list[Ranked] = []
        for tier, (tier_model, usable) in enumerate(tiers):
            for offer, reason in self._policy.explain(usable, ctx):
                ranked.append(
                    Ranked(
                        rank=len(ranked) + 1,
                        gateway=offer.gateway or "",
                        gateway_model=offer.gateway_model,
                        model=tier_model,
                        fallback=tier,
                        expected_cost_usd=offer.cost_usd(ctx.prompt_tokens, ctx.output_tokens),
                        reason=reason,
                    )
                )
        return Explanation(
            model=canonical,
            policy=self._policy.name,
            prompt_tokens=ctx.prompt_tokens,
            output_tokens=ctx.output_tokens,
            candidates=tuple(ranked),
            excluded=tuple(
                Excluded(o.gateway or "", o.gateway_model, o.model, why) for o, why in found.items
            ),
        )

    # -- sending -----------------------------------------------------------------------------

    def _check_loop(self) -> None:
        """A router's session, events and locks belong to one event loop: the first it runs on."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # stream() builds its Stream outside a loop; iterating it checks again
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RouterError(
                "this router is bound to another event loop (the first it was used on); "
                "make one Router per event loop"
            )

    def _attempt_timeouts(self, remaining: float) -> Timeouts:
        base = self._timeouts
        if remaining >= base.total:
            return base
        first_byte = None if base.first_byte is None else min(base.first_byte, remaining)
        return Timeouts(connect=min(base.connect, remaining), first_byte=first_byte, total=remaining)

    def _request(
        self,
        model: str,
        messages: Iterable[object],
        deadline: float | None,
        params: Mapping[str, Any],
        stream: bool,
    ) -> tuple[ChatRequest, Plan, RequestContext, float]:
        if self._closed:
            raise RouterError("this router is closed; make a new one")
        self._check_loop()
        if "stream" in params:
            raise ValidationError(
                "chat() returns a complete reply; to stream, iterate router.stream(model, messages, ...)"
                if params["stream"]
                else "stream is not a chat() parameter; chat() always returns a complete reply",
                param="stream",
            )
        request = ChatRequest.create(model, messages, **params)
        plan, ctx, _ = self._plan(request, stream=stream)
        limit = self._deadline if deadline is None else deadline
        if isinstance(limit, bool) or not isinstance(limit, int | float) or limit <= 0:
            raise ConfigError(f"deadline must be a positive number of seconds, not {deadline!r}")
        return request, plan, ctx, float(limit)

    async def chat(
        self,
        model: str,
        messages: Iterable[object],
        *,
        deadline: float | None = None,
        stream_upstream: bool | None = None,
        **params: Any,
    ) -> Reply:
        """Send one chat request to the best candidate and return its complete reply.

        Args:
            model: a canonical model id or any gateway's id for it.
            messages: OpenAI-style message dicts.
            deadline: overrides the router's overall deadline for this request.
            stream_upstream: ask the gateway for a stream and assemble it, so a
                stalled or cut answer is caught by the first-token and stall limits
                and restarted on the next candidate; the caller still gets one complete
                reply. Default: the router's ``stream_upstream``.
            **params: sampling parameters (``temperature``, ``max_tokens``...) and
                ``max_cost_usd``; see :class:`ChatRequest`.

        Raises:
            ValidationError: on bad input (nothing is sent); ``PromptTooLong`` and
                ``UnsupportedFeature`` when no candidate can take the request.
            UnknownModelError: naming the closest known ids.
            NoCandidatesError: when every candidate is excluded (with reasons).
            BadRequest: when the gateway rejects the request itself (after one attempt).
            AllCandidatesFailed: when every attempt failed (with each attempt).
            SaturatedError: when every candidate is at a rate limit past the deadline.
            DeadlineExceeded: when the deadline passed first.
        """
        request, plan, ctx, limit = self._request(model, messages, deadline, params, stream=False)
        if stream_upstream if stream_upstream is not None else self._stream_upstream:
            return await self._assemble(request, plan, ctx, limit)
        run = _Run(self, request, ctx, limit)
        run.started_event()
        try:
            if self._honours_timeouts:
                # Our transport needs no timer here: every attempt's timeouts are clipped to
                # what is left of the deadline and every backoff is checked against it.
                reply = await run.go(plan, run.attempt)
            else:
                try:
                    async with asyncio.timeout(limit):
                        reply = await run.go(plan, run.attempt)
                except TimeoutError as exc:
                    if isinstance(exc, RouterError):
                        raise
                    saturated = run.saturated()
                    if saturated is not None:
                        raise saturated from None
                    raise DeadlineExceeded(limit, run.attempts, run.errors) from (
                        run.errors[0] if run.errors else None
                    )
        except asyncio.CancelledError:
            run.finish(None, cancelled=True)
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        run.finish(None)
        return reply

    async def _assemble(self, request: ChatRequest, plan: Plan, ctx: RequestContext, limit: float) -> Reply:
        """chat() over a streaming upstream: restart on interruption, return one complete reply.

        Tool-call pieces are assembled as the OpenAI SDK's stream accumulator does
        (:class:`~providers.ToolCallAssembler`).
        """
        parts: list[str] = []
        calls = ToolCallAssembler()
        final: StreamChunk | None = None
        async with contextlib.aclosing(self._chunks(request, plan, ctx, limit, restart=True)) as chunks:
            async for chunk in chunks:
                if chunk.restart:
                    parts.clear()
                    calls.clear()
                elif chunk.done:
                    final = chunk
                else:
                    parts.append(chunk.text)
                    if chunk.tool_calls:
                        calls.add(chunk.tool_calls)
        assert final is not None and final.route is not None and final.usage is not None
        return Reply(
            id=final.id or f"chatcmpl-{final.route.gateway}-{next(self._ids)}",
            text="".join(parts),
            finish_reason=final.finish_reason or "stop",
            usage=final.usage,
            cost_usd=final.cost_usd,
            route=final.route,
            created=int(self._wall()),
            tool_calls=calls.calls(),
        )

    def stream(
        self,
        model: str,
        messages: Iterable[object],
        *,
        restart: bool = False,
        deadline: float | None = None,
        **params: Any,
    ) -> Stream:
        """Stream the answer of the best candidate, failing over until the first chunk reaches you.

        The input is validated now, before anything is sent; iterating the returned
        :class:`Stream` sends the request. OneLLM does not stream: its whole reply
        arrives as one chunk. The last chunk (``chunk.done``) carries the finish
        reason, usage, cost and route.

        Args:
            restart: after chunks reached you, an upstream failure normally raises
                :class:`StreamInterrupted` (with the cause and what was delivered).
                With ``restart=True`` you get a chunk with ``restart`` set instead:
                discard what you have; the complete answer follows from the next
                candidate (continuing from what was delivered where the target takes
                an assistant prefill).
            deadline: overrides the router's overall deadline, for the whole stream.
            **params: as for :meth:`chat`.

        Raises:
            ValidationError, UnknownModelError, NoCandidatesError: at once, as for :meth:`chat`.
        """
        request, plan, ctx, limit = self._request(model, messages, deadline, params, stream=True)
        return Stream(self._chunks(request, plan, ctx, limit, restart=restart))

    async def _chunks(
        self, request: ChatRequest, plan: Plan, ctx: RequestContext, limit: float, *, restart: bool
    ) -> AsyncGenerator[StreamChunk, None]:
        # The deadline counts from the first read, not from when the stream was made.
        self._check_loop()
        run = _Run(self, request, attrs.evolve(ctx, now=self._clock.now()), limit)
        run.started_event()
        remaining = plan
        cause: UpstreamError | None = None
        delivered: list[str] = []
        complete = False
        try:
            while True:
                try:
                    upstream = await run.go(remaining, run.open_stream)
                except RouterError:
                    if cause is None:
                        raise
                    # A restart found no answer: the interruption is the real error.
                    raise StreamInterrupted(
                        run.canonical, cause, "".join(delivered), run.attempts, run.errors
                    ) from cause
                try:
                    async for chunk in run.deliver(upstream):
                        if chunk.done:
                            complete = True
                        else:
                            delivered.append(chunk.text)
                        yield chunk
                    break
                except UpstreamError as exc:
                    if cause is None:
                        cause = exc
                    if not restart:
                        raise StreamInterrupted(
                            run.canonical, cause, "".join(delivered), run.attempts, run.errors
                        ) from cause
                    if run.hooks is not None:
                        run.emit("stream.restarted", upstream.ticket.offer, detail=type(exc).__name__)
                    yield StreamChunk(restart=True, error=exc)
                    failed = upstream.ticket.offer
                    remaining = [entry for entry in remaining if entry[1] is not failed]
                    run.prefill = "".join(delivered) or None
                    delivered = []
        except (asyncio.CancelledError, GeneratorExit):
            # The consumer stopped reading (or was cancelled) before the answer's end.
            run.finish(None, cancelled=not complete)
            raise
        except BaseException as exc:
            run.finish(exc)
            raise
        run.finish(None)
