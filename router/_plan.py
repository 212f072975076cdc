"""Planning: a request's candidates, the hard filters, the policy's order, and ``explain()``.

The candidates are the model's offers, then each fallback model's (depth-first,
each model once: a *tier* per model). Hard filters drop what cannot serve: no key,
an offer closed as unavailable, an open circuit, a feature the target cannot carry,
a context window too small for the estimated prompt + ``max_tokens``, an expected
cost over ``max_cost_usd`` (or unknown when a cap is set). The policy ranks what is
left within each tier; at an equal rank a target that carries every requested
parameter comes before one that would drop some (the policies' sorts are stable).
"""

from __future__ import annotations

import math
from asyncio import get_running_loop
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..policies import RequestContext
from ..providers import ChatRequest, LoopClock, NoCandidatesError, Offer, PromptTooLong, UnsupportedFeature
from ..providers.wire import MAY_DROP, ModelOffers, env_var
from ._breaker import BreakerState, Tally
from ._outliers import ejected
from ._runtime import Runtime

if TYPE_CHECKING:
    from ._explain import Explanation

__all__ = ["Candidate", "Plan", "Planner"]

_CLOSED: Final = BreakerState.CLOSED
_WALKS_KEPT: Final = 1024  # model spellings whose walk a planner keeps (then it starts again)
_LOOP_CLOCK: Final = LoopClock()  # the loop's time; monotonic time outside a loop (explain() may be)


class Candidate(NamedTuple):
    """One entry of a plan: the offer, and its tier (0: the model asked for; n: the n-th fallback)."""

    tier: int
    offer: Offer


Plan = list[Candidate]
_candidate: Final = tuple.__new__  # Candidate(tier, offer) without the NamedTuple's Python-level __new__


class _Exclusions:
    """Why each excluded candidate was left out, and of which kind."""

    __slots__ = ("context", "feature", "items")

    def __init__(self) -> None:
        self.items: list[tuple[Offer, str]] = []
        self.context = 0
        self.feature = 0


_NO_EXCLUSIONS: Final = _Exclusions()  # shared, read-only: what a request with none gets


class _Tier(NamedTuple):
    """A tier's offers and what planning reads of them: the parameters some of its offers may
    drop (their unsupported ones, and those some wire format drops), whether every offer's
    gateway has a key, and the smallest context window (inf: none known)."""

    offers: tuple[Offer, ...]
    droppable: frozenset[str]
    keyed: bool
    window: float


class Planner:
    """Plans requests for one router (its runtime)."""

    __slots__ = ("_keyed_gateways", "_rt", "_tally", "_tiers", "_version", "_walks")

    def __init__(self, runtime: Runtime) -> None:
        self._rt = runtime
        # Kept per graph version (_current() starts them over when the graph changes):
        # per tier (by identity, with the tuple kept so the id cannot be reused), what
        # _tier() says of it; the gateways with a key; each model spelling's walk.
        self._version = -1
        self._tiers: dict[int, _Tier] = {}
        self._keyed_gateways: frozenset[str | None] = frozenset()
        self._walks: dict[str, tuple[ModelOffers, ...]] = {}  # by the model id as asked
        # How many breakers are not closed, where the store keeps that count (MemoryStore
        # does; another store's breakers are read one by one).
        self._tally: Tally | None = getattr(runtime.health.store, "tally", None)

    def _current(self) -> None:
        """Start the per-version caches over when the graph has changed (one check per plan)."""
        version = self._rt.graph.version
        if version != self._version:
            self._tiers.clear()
            self._walks.clear()
            self._keyed_gateways = frozenset(
                name for name, gateway in self._rt.gateways.items() if gateway.api_key is not None
            )
            self._version = version

    def tiers(self, canonical: str) -> tuple[ModelOffers, ...]:
        """The model and its fallbacks (depth-first, each once) with their offers: the graph's walk,
        with the router's own ``fallbacks=`` replacing the graph's edges for the models they name."""
        return self._rt.graph.tiers(canonical, self._rt.fallbacks)

    def context(self, request: ChatRequest, stream: bool, now: float | None = None) -> RequestContext:
        """What the policy knows of the request: its token estimates and the time (``now``, else
        the loop's; monotonic time outside a loop, where explain() may run)."""
        rt = self._rt
        if now is None:
            try:
                now = get_running_loop().time()
            except RuntimeError:
                now = _LOOP_CLOCK.now()
        return RequestContext(
            request,
            rt.estimator.prompt_tokens(request),
            request.max_tokens or rt.default_output,
            now,
            stream,
            rt.admission,
        )

    def _exclusion(
        self, offer: Offer, request: ChatRequest, ctx: RequestContext, needs: frozenset[str]
    ) -> tuple[str, str] | None:
        """Why ``offer`` cannot serve this request, as (kind, reason); None when it can."""
        rt = self._rt
        gateway = rt.gateways[offer.gateway or ""]
        if gateway.api_key is None:
            return "key", f"no API key for {gateway.name} (set {env_var(gateway.name, 'API_KEY')})"
        if rt.closures.entries:
            closure = rt.closures.get((gateway.name, offer.gateway_model), ctx.now)
            if closure is not None and closure.exclude:
                return "health", f"{closure.reason} ({closure.until - ctx.now:.0f}s more)"
        unhealthy = rt.health.exclusion(offer, ctx.now)
        if unhealthy is not None:
            return "health", unhealthy
        if needs:
            unmet = rt.adapters[gateway.name].unmet(request, offer)
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

    def _tier(self, offers: tuple[Offer, ...]) -> _Tier:
        """What planning reads of a tier's offers on every request, worked out once per version."""
        entry = self._tiers.get(id(offers))
        if entry is None or entry.offers is not offers:
            windows = [o.context_window for o in offers if o.context_window is not None]
            entry = _Tier(
                offers,
                MAY_DROP.union(*(o.capabilities.unsupported_params for o in offers)),
                all(o.gateway in self._keyed_gateways for o in offers),
                min(windows, default=math.inf),
            )
            self._tiers[id(offers)] = entry
        return entry

    def _usable(
        self, tiers: tuple[ModelOffers, ...], request: ChatRequest, ctx: RequestContext
    ) -> tuple[list[tuple[str, Sequence[Offer]]], _Exclusions]:
        """Each tier's offers that pass the hard filters, and what was excluded, with why."""
        found = _NO_EXCLUSIONS
        needs = request.needs
        sampling = request.sampling()
        rt = self._rt
        adapters = rt.adapters
        # The common case in one test per offer (a key, no closure, both breakers closed, within
        # its window, no cap and no needs); anything else goes through _exclusion for its reason.
        keyed = self._keyed_gateways
        breakers, config = rt.health.store.breakers, rt.health.config
        simple = not needs and not rt.closures.entries and request.max_cost_usd is None
        tally = self._tally
        all_closed = simple and tally is not None and tally.not_closed == 0
        budget = ctx.prompt_tokens + (request.max_tokens or 0)
        usable_tiers: list[tuple[str, Sequence[Offer]]] = []
        for tier in tiers:
            offers: Sequence[Offer] = tier.offers
            facts = self._tier(tier.offers)
            if sampling and len(offers) > 1 and not facts.droppable.isdisjoint(sampling):
                # A list, not a tuple: only the tier's own tuple is the identity policies keep
                # facts by (CheapestPerToken's price chain); a new tuple per request would miss.
                offers = sorted(offers, key=lambda o: adapters[o.gateway or ""].drops(request, o))
            if all_closed and facts.keyed and budget <= facts.window:
                usable_tiers.append((tier.model, offers))  # every offer passes: the tier as it is
                continue
            usable = []
            for offer in offers:
                window = offer.context_window
                if simple and offer.gateway in keyed and (window is None or budget <= window):
                    g_breaker, m_breaker = breakers(offer.gateway or "", offer.gateway_model, config)
                    if g_breaker.state is _CLOSED and m_breaker.state is _CLOSED:
                        usable.append(offer)
                        continue
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
            usable_tiers.append((tier.model, usable))
        return usable_tiers, found

    def _walk(self, model: str) -> tuple[ModelOffers, ...]:
        """The graph's walk for ``model`` as asked (any spelling), kept per graph version; an
        unknown model raises each time and is not kept."""
        walk = self._walks.get(model)
        if walk is None:
            walk = self._rt.graph.tiers(model, self._rt.fallbacks)  # resolves the model once
            if len(self._walks) >= _WALKS_KEPT:
                self._walks.clear()
            self._walks[model] = walk
        return walk

    def plan(
        self, request: ChatRequest, *, stream: bool, now: float | None = None
    ) -> tuple[Plan, RequestContext]:
        """The ordered candidates for ``request``, as of ``now`` (default: the loop's time).

        Raises:
            UnknownModelError: when no gateway serves the model.
            PromptTooLong, UnsupportedFeature, NoCandidatesError: when every
                candidate is excluded (all by context, all by feature, or otherwise).
        """
        if self._rt.graph.version != self._version:
            self._current()
        walk = self._walks.get(request.model) or self._walk(request.model)
        canonical = walk[0].model
        ctx = self.context(request, stream, now)
        tiers, found = self._usable(walk, request, ctx)
        plan: Plan = []
        rank = self._rt.policy.rank
        outliers = self._rt.outliers
        for tier, (_, usable) in enumerate(tiers):
            if len(usable) == 1:
                plan.append(_candidate(Candidate, (tier, usable[0])))
            elif usable:
                ranked = rank(usable, ctx)
                if outliers is not None:
                    out = ejected(outliers, self._rt.health, usable, ctx.now)
                    if out:
                        ranked = [o for o in ranked if o not in out] + [o for o in ranked if o in out]
                plan += [_candidate(Candidate, (tier, o)) for o in ranked]
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
        return plan, ctx

    def explain(self, model: str, messages: Iterable[object], **params: Any) -> Explanation:
        """The ordered candidates with the reason for each rank and each exclusion; sends nothing."""
        from ._explain import Excluded, Explanation, Ranked

        request = ChatRequest.create(model, messages, **params)
        self._current()
        canonical = self._rt.graph.resolve(request.model)
        ctx = self.context(request, False)
        tiers, found = self._usable(self.tiers(canonical), request, ctx)
        ranked: list[Ranked] = []
        outliers = self._rt.outliers
        for tier, (tier_model, usable) in enumerate(tiers):
            explained = self._rt.policy.explain(usable, ctx)
            out = (
                {}
                if outliers is None or len(usable) < 2
                else ejected(outliers, self._rt.health, usable, ctx.now)
            )
            if out:
                explained = [(o, r) for o, r in explained if o not in out] + [
                    (o, f"{out[o]}; {r}") for o, r in explained if o in out
                ]
            for offer, reason in explained:
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
            policy=self._rt.policy.name,
            prompt_tokens=ctx.prompt_tokens,
            output_tokens=ctx.output_tokens,
            candidates=tuple(ranked),
            excluded=tuple(
                Excluded(o.gateway or "", o.gateway_model, o.model, why) for o, why in found.items
            ),
        )
