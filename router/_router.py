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
import math
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import aiohttp

from policies import (
    CheapestPerToken,
    Deferral,
    MemoryStore,
    Outcome,
    Policy,
    RateLimitAware,
    RequestContext,
    StateStore,
)
from providers import (
    BUILTIN_GATEWAYS,
    AiohttpTransport,
    AllCandidatesFailed,
    Attempt,
    ChatRequest,
    Clock,
    ConfigError,
    ContextLengthExceeded,
    DeadlineExceeded,
    Gateway,
    HeuristicEstimator,
    LoopClock,
    NoCandidatesError,
    Offer,
    PromptTooLong,
    ProviderGraph,
    RateLimited,
    Reply,
    RouterError,
    SaturatedError,
    Tier,
    Timeouts,
    TokenEstimator,
    Transport,
    UnsupportedFeature,
    UpstreamError,
    adapter_for,
)
from providers._gateway import env_var
from providers._params import unmet_needs

from ._backoff import Backoff
from ._breaker import BreakerConfig, BreakerState
from ._budget import RetryBudget
from ._events import Event, Hook, Hooks
from ._explain import Excluded, Explanation, Ranked
from ._health import Health, Reported

__all__ = ["Router"]

_TIERS_FROM_ENV: Final = {"free": Tier.FREE, "pro": Tier.PRO}

Plan = list[tuple[int, Offer]]

_MIN_WAIT: Final = 0.001  # the least a re-deferred request waits before asking again


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
            ``MockTransport``).
        session: an aiohttp session for the default transport; never closed here.
        clock: the monotonic clock for latencies and deadlines (default: the event
            loop's).
        wall_clock: Unix time, for reply timestamps and HTTP-date Retry-After.
        seed: seeds backoff jitter.

    Raises:
        ConfigError: on bad timeouts, deadline or budget settings.
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
    ) -> None:
        if not isinstance(graph, ProviderGraph):
            raise ConfigError(f"Router takes a ProviderGraph, not {type(graph).__name__}")
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
        # Rate-limit awareness is always on: a tier given to a gateway, or a 429's
        # Retry-After, is never ignored whatever ordering policy is chosen.
        inner = policy if policy is not None else CheapestPerToken()
        self._limits = inner if isinstance(inner, RateLimitAware) else RateLimitAware(inner, store=store)
        self._limits.attach(graph.gateways)
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
        tiers = []
        for model, offers in chain:
            usable = []
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

    def _attempt_timeouts(self, remaining: float) -> Timeouts:
        base = self._timeouts
        if remaining >= base.total:
            return base
        first_byte = None if base.first_byte is None else min(base.first_byte, remaining)
        return Timeouts(connect=min(base.connect, remaining), first_byte=first_byte, total=remaining)

    async def chat(
        self, model: str, messages: Iterable[object], *, deadline: float | None = None, **params: Any
    ) -> Reply:
        """Send one chat request to the best candidate and return its complete reply.

        Args:
            model: a canonical model id or any gateway's id for it.
            messages: OpenAI-style message dicts.
            deadline: overrides the router's overall deadline for this request.
            **params: sampling parameters (``temperature``, ``max_tokens``...) and
                ``max_cost_usd``; see :class:`ChatRequest`.

        Raises:
            ValidationError: on bad input (nothing is sent); ``PromptTooLong`` and
                ``UnsupportedFeature`` when no candidate can take the request.
            UnknownModelError: naming the closest known ids.
            NoCandidatesError: when every candidate is excluded (with reasons).
            BadRequest: when the gateway rejects the request itself (after one attempt).
            AllCandidatesFailed: when every attempt failed (with each attempt).
            DeadlineExceeded: when the deadline passed first.
        """
        if self._closed:
            raise RouterError("this router is closed; make a new one")
        request = ChatRequest.create(model, messages, **params)
        plan, ctx, _ = self._plan(request)
        limit = self._deadline if deadline is None else float(deadline)
        if limit <= 0:
            raise ConfigError(f"deadline must be positive, not {deadline!r}")
        if self._honours_timeouts:
            return await _Run(self, request, ctx, limit).go(plan)
        return await self._execute(request, ctx, plan, limit)

    async def _execute(self, request: ChatRequest, ctx: RequestContext, plan: Plan, deadline: float) -> Reply:
        # Our transport needs no timer here: every attempt's timeouts are clipped to
        # what is left of the deadline and every backoff is checked against it. Any
        # other transport runs under a deadline timer.
        run = _Run(self, request, ctx, deadline)
        try:
            async with asyncio.timeout(deadline):
                return await run.go(plan)
        except TimeoutError as exc:
            if isinstance(exc, RouterError):
                raise
            error = DeadlineExceeded(deadline, run.attempts, run.errors)
            run.finish(error)
            raise error from (run.errors[0] if run.errors else None)


class _Deferred(Exception):
    """Internal: the candidate's account cannot take the request now."""

    def __init__(self, deferral: Deferral) -> None:
        self.deferral = deferral


class _Skipped(Exception):
    """Internal: a breaker refused the candidate at the last moment (a probe already in flight)."""


class _BudgetSpent(Exception):
    """Internal: the retry budget refused one more attempt."""


class _Revisit:
    """A candidate to come back to: deferred by its account, or failed and due a retry."""

    __slots__ = ("deferral", "error", "index", "offer", "ready", "wait")

    def __init__(
        self,
        index: int,
        offer: Offer,
        ready: float | None,
        deferral: Deferral | None,
        error: UpstreamError | None,
        wait: float = 0.0,
    ) -> None:
        self.index = index
        self.offer = offer
        self.ready = ready  # None: when a slot frees
        self.deferral = deferral
        self.error = error  # set for a retry: the failure it retries
        self.wait = wait  # for a retry: the backoff before it


class _Run:
    """The state of one request's failover loop."""

    __slots__ = (
        "attempts",
        "ctx",
        "deadline",
        "errors",
        "hooks",
        "id",
        "last_tried",
        "limit",
        "now",
        "request",
        "router",
        "start",
    )

    def __init__(self, router: Router, request: ChatRequest, ctx: RequestContext, deadline: float) -> None:
        self.router = router
        self.request = request
        self.ctx = ctx
        self.deadline = deadline
        # With the default loop clock, read the loop's time directly for this request.
        self.now: Callable[[], float] = (
            asyncio.get_running_loop().time if type(router._clock) is LoopClock else router._clock.now
        )
        self.start = ctx.now
        self.limit = self.start + deadline
        self.attempts: list[Attempt] = []
        self.errors: list[UpstreamError] = []
        self.id = next(router._ids)
        self.hooks: Hooks | None = router._hooks if router._hooks else None
        self.last_tried: tuple[int, Offer] | None = None

    # -- reporting ---------------------------------------------------------------------------

    def emit(self, name: str, offer: Offer | None = None, **fields: Any) -> None:
        assert self.hooks is not None
        if offer is not None:
            fields.setdefault("gateway", offer.gateway)
            fields.setdefault("gateway_model", offer.gateway_model)
            fields.setdefault("model", offer.model)
        self.hooks.emit(Event(name=name, request_id=self.id, **fields))

    def transitions(self, reported: list[Reported]) -> None:
        if self.hooks is None:
            return
        for r in reported:
            name = {
                BreakerState.OPEN: "breaker.opened",
                BreakerState.HALF_OPEN: "breaker.half_opened",
                BreakerState.CLOSED: "breaker.closed",
            }[r.transition.after]
            latency = None if r.transition.until is None else r.transition.until - self.now()
            self.emit(
                name,
                gateway=r.gateway,
                gateway_model=r.gateway_model,
                detail=r.transition.reason,
                latency=latency,
            )

    def finish(self, error: BaseException | None) -> None:
        if self.hooks is not None:
            self.emit(
                "request.finished",
                outcome="ok" if error is None else type(error).__name__,
                attempt=len(self.attempts),
                latency=self.now() - self.start,
            )

    def fail(self, error: RouterError) -> RouterError:
        """Report ``error`` as the request's end and return it, chained to the first failure."""
        self.finish(error)
        error.__cause__ = self.errors[0] if self.errors else None
        return error

    @property
    def canonical(self) -> str:
        return self.ctx.request.model

    # -- the loop ----------------------------------------------------------------------------

    async def go(self, plan: Plan) -> Reply:
        """Each candidate once in order, then the deferred and the once-retried, inside the deadline."""
        router = self.router
        if self.hooks is not None:
            self.emit("request.started", model=plan[0][1].model, detail=self.request.model)
        router._budget.deposit(self.start)
        revisits: list[_Revisit] = []
        skipped: list[tuple[Offer, str]] = []
        context_floor: int | None = None
        stop_reason = "no candidate is left"
        failover_on = router._policy.failover_on
        try:
            for index, (tier, offer) in enumerate(plan):
                if context_floor is not None and (offer.context_window or 0) <= context_floor:
                    continue
                try:
                    return await self._attempt(index, tier, offer)
                except _Deferred as deferred:
                    revisits.append(_Revisit(index, offer, deferred.deferral.until, deferred.deferral, None))
                except _Skipped as exc:
                    skipped.append((offer, str(exc)))
                except _BudgetSpent:
                    stop_reason = "the retry budget is spent"
                    revisits = []
                    break
                except ContextLengthExceeded as exc:
                    # Only a candidate with a known, larger window may help; with none left,
                    # the gateway's own 400 goes to the caller at once.
                    context_floor = offer.context_window or (
                        self.ctx.prompt_tokens + (self.request.max_tokens or 0)
                    )
                    if not any((o.context_window or 0) > context_floor for _, o in plan[index + 1 :]):
                        exc.attempts = tuple(self.attempts)
                        raise
                except UpstreamError as exc:
                    if not failover_on(exc):
                        exc.attempts = tuple(self.attempts)
                        raise
                    if exc.retryable:
                        revisits.append(self._retry_of(index, offer, exc))
            if revisits:
                reply, stop_reason = await self._revisit(plan, revisits, context_floor, stop_reason)
                if reply is not None:
                    return reply
        except asyncio.CancelledError:
            raise  # the deadline guard (or the caller) cancelled us; whoever catches it reports
        except BaseException as exc:
            self.finish(exc)
            raise
        pending = [r.deferral for r in revisits if r.deferral is not None and r.error is None]
        if pending and not self.errors:
            now = self.now()
            frees = [d.until for d in pending if d.until is not None and d.until != math.inf]
            raise self.fail(
                SaturatedError(
                    self.canonical,
                    [d.describe(now) for d in pending],
                    None if not frees else max(0.0, min(frees) - now),
                )
            )
        if self.now() >= self.limit:
            raise self.fail(DeadlineExceeded(self.deadline, self.attempts, self.errors))
        if not self.attempts and skipped:
            raise self.fail(
                NoCandidatesError(
                    self.canonical, [(o.gateway or "", o.gateway_model, why) for o, why in skipped]
                )
            )
        raise self.fail(AllCandidatesFailed(self.canonical, self.attempts, self.errors, stop_reason))

    def _retry_of(self, index: int, offer: Offer, error: UpstreamError) -> _Revisit:
        """A failed candidate's one retry: after full-jitter backoff, never before its Retry-After."""
        router = self.router
        wait = router._backoff.delay(0, router._rng, error.retry_after)
        return _Revisit(index, offer, self.now() + wait, None, error, wait)

    async def _revisit(
        self, plan: Plan, revisits: list[_Revisit], context_floor: int | None, stop_reason: str
    ) -> tuple[Reply | None, str]:
        """Come back to deferred and failed candidates as they free, until none is left or the deadline."""
        router = self.router
        failover_on = router._policy.failover_on
        while revisits:
            now = self.now()
            if now >= self.limit:
                return None, stop_reason
            revisits[:] = [
                r
                for r in revisits
                if (r.ready is None or r.ready < self.limit)
                and not (context_floor is not None and (r.offer.context_window or 0) <= context_floor)
            ]
            if not revisits:
                return None, stop_reason
            freed = router._capacity_event()
            timed = [r.ready for r in revisits if r.ready is not None]
            soonest = min(timed) if timed else None
            # Times within a nanosecond count as now, and no wait is shorter than _MIN_WAIT:
            # a float-sized wait would not move a clock, and the loop would spin.
            due = [r for r in revisits if r.ready is not None and r.ready <= now + 1e-9]
            if not due:
                slot_bound = any(r.ready is None for r in revisits)
                wait = max((self.limit if soonest is None else soonest) - now, _MIN_WAIT)
                if slot_bound:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await freed.wait()
                else:
                    await asyncio.sleep(wait)
                now = self.now()
                due = [r for r in revisits if r.ready is None or r.ready <= now + 1e-9]
            for entry in sorted(due, key=lambda r: r.index):
                tier = plan[entry.index][0]
                if self.hooks is not None and entry.error is not None:
                    self.emit("retry", entry.offer, latency=entry.wait, attempt=len(self.attempts) + 1)
                try:
                    return await self._attempt(entry.index, tier, entry.offer), stop_reason
                except _Deferred as deferred:
                    entry.deferral = deferred.deferral
                    until = deferred.deferral.until
                    # Always wait a little before asking again: never spin on a time already here.
                    entry.ready = None if until is None else max(until, self.now() + _MIN_WAIT)
                    continue
                except _Skipped:
                    revisits.remove(entry)
                except _BudgetSpent:
                    return None, "the retry budget is spent"
                except UpstreamError as exc:
                    if isinstance(exc, ContextLengthExceeded) or not failover_on(exc):
                        exc.attempts = tuple(self.attempts)
                        raise
                    revisits.remove(entry)
                    # One retry per failure, except a 429: that says "come back after
                    # Retry-After", which is done as long as the deadline and budget allow.
                    if exc.retryable and (entry.error is None or isinstance(exc, RateLimited)):
                        revisits.append(self._retry_of(entry.index, entry.offer, exc))
        return None, stop_reason

    async def _attempt(self, index: int, tier: int, offer: Offer) -> Reply:
        """One attempt: admission, breaker permission, budget, send, parse; all released on any exit."""
        router = self.router
        now = self.now
        started = now()
        remaining = self.limit - started
        if remaining <= 0:
            raise DeadlineExceeded(self.deadline, self.attempts, self.errors)
        limits = router._limits
        admission = limits.admit(offer, self.ctx, started)
        if isinstance(admission, Deferral):
            if self.hooks is not None:
                wait = None if admission.until is None else admission.until - started
                self.emit("bucket.deferred", offer, detail=admission.limit, latency=wait)
            raise _Deferred(admission)
        reservation = admission
        permit, reported = router._health.acquire(offer, started)
        if reported:
            self.transitions(reported)
        if permit is None:
            limits.settle(reservation, None, None, started)
            raise _Skipped(router._health.exclusion(offer, started) or "the circuit refused it")
        if self.attempts and not router._budget.try_withdraw(started):
            router._health.release(permit, started)
            limits.settle(reservation, None, None, started)
            if self.hooks is not None:
                self.emit("budget.exhausted", offer)
            raise _BudgetSpent
        if self.hooks is not None and self.last_tried is not None:
            previous_tier, previous = self.last_tried
            if tier != previous_tier:
                self.emit("fallback", offer, detail=f"from {previous.model}")
            elif previous is not offer:
                self.emit("failover", offer, detail=f"from {previous.gateway}:{previous.gateway_model}")
        self.last_tried = (tier, offer)
        gateway = router._graph.gateways[offer.gateway or ""]
        adapter = router._adapters[gateway.name]
        number = len(self.attempts) + 1
        if self.hooks is not None:
            self.emit("attempt.started", offer, attempt=number)
        policy = router._policy if router._policy_learns else None
        if policy is not None:
            policy.started(offer, started)
        raw = None
        try:
            wire = adapter.build(self.request, offer, gateway)
            raw = await router._transport.send(wire, router._attempt_timeouts(remaining))
            ended = now()
            # The attempt is recorded before parsing so the reply's route can include it;
            # a reply that does not parse replaces it with the failure below.
            self._record(offer, "ok", ended - started, raw.status, None, number, announce=False)
            reply = adapter.parse(
                raw, wire, offer, gateway, wall_now=router._wall(), attempts=tuple(self.attempts)
            )
        except UpstreamError as exc:
            ended = now()
            if len(self.attempts) == number:
                self.attempts.pop()
            if policy is not None:
                policy.observe(Outcome(offer=offer, ok=False, latency=ended - started, now=ended, error=exc))
            self._record(offer, type(exc).__name__, ended - started, exc.status, str(exc), number)
            self.errors.append(exc)
            self.transitions(router._health.record(permit, offer, exc, ended - started, ended))
            if isinstance(exc, RateLimited):
                until = limits.rate_limited(offer, exc.retry_after, ended)
                if self.hooks is not None:
                    self.emit("bucket.closed", offer, detail="Retry-After", latency=until - ended)
            limits.settle(reservation, None, None if raw is None else raw.headers, ended)
            raise
        except BaseException:
            ended = now()
            if len(self.attempts) == number:
                self.attempts.pop()
            if policy is not None:
                policy.observe(Outcome(offer=offer, ok=False, latency=ended - started, now=ended))
            self._record(offer, "cancelled", ended - started, None, None, number)
            router._health.release(permit, ended)
            limits.settle(reservation, None, None, ended)
            raise
        reported = router._health.record(permit, offer, None, ended - started, ended)
        if reported:
            self.transitions(reported)
        limits.settle(reservation, reply.usage.total_tokens, raw.headers, ended)
        if policy is not None:
            policy.observe(Outcome(offer=offer, ok=True, latency=ended - started, now=ended))
        if self.hooks is not None:
            self.emit(
                "attempt.finished", offer, attempt=number, outcome="ok", status=200, latency=ended - started
            )
            self.finish(None)
        return reply

    def _record(
        self,
        offer: Offer,
        outcome: str,
        latency: float,
        status: int | None,
        error: str | None,
        number: int,
        *,
        announce: bool = True,
    ) -> None:
        self.attempts.append(
            Attempt(
                gateway=offer.gateway or "",
                gateway_model=offer.gateway_model,
                model=offer.model,
                outcome=outcome,
                latency=latency,
                status=status,
                error=error,
            )
        )
        if announce and self.hooks is not None:
            self.emit(
                "attempt.finished", offer, attempt=number, outcome=outcome, status=status, latency=latency
            )
