"""The router: a thin facade over planning (``_plan.py``), the failover loop (``_loop.py``),
one attempt (``_attempt.py``), streamed delivery (``_deliver.py``, ``_streamed.py``).

The constructor validates its settings and builds one frozen :class:`Runtime` (the
shared parts and settings) that every request reads; nothing reaches into the
Router's own fields. A request is validated, planned, then run by the failover
loop; what a failure means is the failure table's (``providers/_failures.py``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import aiohttp

from ..policies import CheapestPerToken, Policy, RateLimitAware, RequestContext
from ..providers import (
    AiohttpTransport,
    ChatRequest,
    ConfigError,
    HeuristicEstimator,
    NoCandidatesError,
    ProviderGraph,
    Reply,
    RouterError,
    Timeouts,
    TokenEstimator,
    Transport,
    ValidationError,
)
from ..providers.wire import adapter_for
from ._admission import Admission
from ._attempt import complete
from ._backoff import Backoff
from ._breaker import BreakerConfig
from ._budget import RetryBudget
from ._closures import Closures
from ._env import gateways_from_env
from ._events import Hook, Hooks
from ._health import Health
from ._hedge import Hedge, Hedging
from ._outliers import Outliers
from ._plan import Plan, Planner
from ._run import Run, rejected
from ._runtime import Capacity, Runtime, check_deadline, check_settings, learner_of
from ._store import MemoryStore, Store
from ._stream import Stream
from ._streamed import assemble, chunks, run_for

if TYPE_CHECKING:
    from ._explain import Explanation  # loaded by the first explain()

__all__ = ["Router"]


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
        default_output_tokens: the output expected when a request sets no ``max_tokens``, for cost estimates.
        hooks: callables receiving each :class:`Event`.
        transport: how requests are sent (default: aiohttp; tests may pass a
            ``MockTransport``). Each gateway's requests in flight are capped at the
            transport's ``connections_per_host`` (the aiohttp default: 64), so none
            waits inside the client for a connection with its timeouts running.
        session: an aiohttp session for the default transport; never closed here.
        wall_clock: Unix time, for reply timestamps and HTTP-date Retry-After.
        seed: seeds backoff jitter (and breaker-break jitter, with the default store).
        breaker: thresholds and breaks of the circuit breakers.
        store: where the breakers and the rate-limit accounts keep their state (default: a
            :class:`MemoryStore` of this router's own). Routers given the same store share limits
            and breakers; routers in many processes share them through a :class:`RedisStore`.
        stream_upstream: have :meth:`chat` stream from the gateway by default (see there).
            Off by default: a plain reply costs less CPU, and the per-attempt timeouts
            bound it; turn it on to catch a stalled answer within the stall limit.
        max_retry_after: the longest one ``Retry-After`` may close an account or a
            target, in seconds (a gateway asking for more is taken to mean this).
            A zero, negative, NaN or past ``Retry-After`` counts as none.
        unavailable_for: how long an offer is left out of plans after its gateway
            answered that it does not serve the model (a stale snapshot).
        slow_start: a gateway with no recent success (a fresh router, or one of its
            breakers just opened) admits this many requests in flight; each answer
            widens it by one (doubling per round of answers) up to its cap. None
            turns slow start off.
        hedge: send a slow request's twin to the next candidate and take the first
            answer (:class:`Hedge`; off by default).
        outliers: rank last a target failing far more often than the other candidates
            of its model (:class:`Outliers`; off by default).

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
        wall_clock: Callable[[], float] = time.time,
        seed: int | None = None,
        breaker: BreakerConfig | None = None,
        store: Store | None = None,
        stream_upstream: bool = False,
        max_retry_after: float = 120.0,
        unavailable_for: float = 300.0,
        slow_start: int | None = 4,
        hedge: Hedge | None = None,
        outliers: Outliers | None = None,
    ) -> None:
        if not isinstance(graph, ProviderGraph):
            raise ConfigError(f"Router takes a ProviderGraph, not {type(graph).__name__}")
        if policy is not None and not isinstance(policy, Policy):
            raise ConfigError(f"policy must be a policy object such as CheapestPerToken(), not {policy!r}")
        check_settings(
            deadline=deadline,
            max_retry_after=max_retry_after,
            unavailable_for=unavailable_for,
            default_output_tokens=default_output_tokens,
            slow_start=slow_start,
        )
        if hedge is not None and not isinstance(hedge, Hedge):
            raise ConfigError(f"hedge takes a Hedge(...), not {hedge!r}")
        if outliers is not None and not isinstance(outliers, Outliers):
            raise ConfigError(f"outliers takes an Outliers(...), not {outliers!r}")
        if transport is not None and session is not None:
            raise ConfigError("pass a transport or a session, not both")
        # Rate-limit awareness is always on: a tier given to a gateway, or a 429's
        # Retry-After, is never ignored whatever ordering policy is chosen.
        inner = policy if policy is not None else CheapestPerToken()
        inner.check(graph.gateways)
        ranking = inner if isinstance(inner, RateLimitAware) else RateLimitAware(inner)
        chosen: Transport = transport if transport is not None else AiohttpTransport(session)
        state: Store = store if store is not None else MemoryStore(seed=seed)
        capacity = Capacity()
        self._stop_listening = state.on_release(capacity.freed)
        self._deadline = float(deadline)
        self._stream_upstream = stream_upstream
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rt = Runtime(
            graph=graph,
            gateways=graph.gateways,
            adapters={name: adapter_for(gw) for name, gw in graph.gateways.items()},
            transport=chosen,
            policy=ranking,
            # Each gateway's requests in flight are capped at the connection pool's size per host.
            admission=Admission(graph.gateways, state, chosen.connections_per_host, slow_start),
            health=Health(state, breaker),
            closures=Closures(),
            budget=retry_budget if retry_budget is not None else RetryBudget(),
            backoff=backoff if backoff is not None else Backoff(),
            rng=random.Random(seed),
            estimator=estimator if estimator is not None else HeuristicEstimator(),
            hooks=Hooks(tuple(hooks)),
            timeouts=timeout if isinstance(timeout, Timeouts) else Timeouts(total=timeout),
            capacity=capacity,
            wall=wall_clock,
            ids=itertools.count(1),
            fallbacks=graph.validate_fallbacks(fallbacks or {}),
            default_output=default_output_tokens,
            max_retry_after=float(max_retry_after),
            unavailable_for=float(unavailable_for),
            learner=learner_of(ranking),
            retry_same=ranking.retry_same,
            hedging=None if hedge is None else Hedging(hedge),
            outliers=outliers,
            honours_timeouts=chosen.honours_timeouts,
        )
        self._planner = Planner(self._rt)

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
        return cls(ProviderGraph.from_catalogs(gateways_from_env(env)), **kwargs)

    # -- life cycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> Router:
        if self._closed:
            raise RouterError("this router is closed; make a new one")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport (and the session, if the router made it) and let the store go of
        its connections (a store shared with other routers connects again when they use it)."""
        self._closed = True
        self._stop_listening()
        try:
            await self._rt.transport.aclose()
        finally:
            await self._rt.admission.store.aclose()

    def __repr__(self) -> str:
        return f"Router(gateways={list(self._rt.gateways)}, policy={self._rt.policy!r})"

    @property
    def graph(self) -> ProviderGraph:
        """The provider graph."""
        return self._rt.graph

    @property
    def policy(self) -> Policy:
        """The policy."""
        return self._rt.policy

    @property
    def retry_budget(self) -> RetryBudget:
        """The retry budget all requests share."""
        return self._rt.budget

    @property
    def health(self) -> Health:
        """The circuit breakers."""
        return self._rt.health

    @property
    def admission(self) -> Admission:
        """The rate-limit accounts (token buckets and slots per gateway)."""
        return self._rt.admission

    def subscribe(self, hook: Hook) -> Callable[[], None]:
        """Receive every :class:`Event`; returns a function that unsubscribes."""
        return self._rt.hooks.add(hook)

    def explain(self, model: str, messages: Iterable[object], **params: Any) -> Explanation:
        """The ordered candidates for this request, with the reason for each rank and exclusion.

        Sends nothing.

        Raises:
            ValidationError: on bad input.
            UnknownModelError: when no gateway serves the model.
        """
        return self._planner.explain(model, messages, **params)

    # -- sending -----------------------------------------------------------------------------

    def _check_loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop (None outside one), asked for once per request; a router's session,
        events and locks belong to one event loop: the first it runs on."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return None  # stream() builds its Stream outside a loop; iterating it checks again
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise RouterError(
                "this router is bound to another event loop (the first it was used on); "
                "make one Router per event loop"
            )
        return loop

    def _request(
        self,
        model: str,
        messages: Iterable[object],
        deadline: float | None,
        params: Mapping[str, Any],
        stream: bool,
    ) -> tuple[ChatRequest, Plan, RequestContext, float, asyncio.AbstractEventLoop | None]:
        if self._closed:
            raise RouterError("this router is closed; make a new one")
        loop = self._check_loop()
        if "stream" in params:
            raise ValidationError(
                "chat() returns a complete reply; to stream, iterate router.stream(model, messages, ...)"
                if params["stream"]
                else "stream is not a chat() parameter; chat() always returns a complete reply",
                param="stream",
            )
        request = ChatRequest.create(model, messages, **params)
        try:
            plan, ctx = self._planner.plan(request, stream=stream, now=None if loop is None else loop.time())
        except (NoCandidatesError, ValidationError) as exc:  # every candidate excluded: nothing sent
            rejected(self._rt, request, exc, stream=stream)
            raise
        # The router's own deadline was checked when it was made.
        return request, plan, ctx, self._deadline if deadline is None else check_deadline(deadline), loop

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
        request, plan, ctx, limit, loop = self._request(model, messages, deadline, params, stream=False)
        if stream_upstream if stream_upstream is not None else self._stream_upstream:
            return await assemble(self._rt, run_for(self._rt, request, ctx, limit), plan)
        return await complete(Run(self._rt, request, ctx, limit, loop.time if loop else None), plan)

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
        request, plan, ctx, limit, _ = self._request(model, messages, deadline, params, stream=True)
        return Stream(chunks(lambda: self._start(request, ctx, limit), plan, restart=restart))

    def _start(self, request: ChatRequest, ctx: RequestContext, limit: float) -> Run:
        """A stream's run, made at its first read (perhaps on another loop than stream() ran on)."""
        self._check_loop()
        return run_for(self._rt, request, ctx, limit)
