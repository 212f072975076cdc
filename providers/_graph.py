"""The provider graph: every (gateway, offer) by canonical model, with fallback edges.

The graph keeps its inputs in layers and merges them into an immutable index
that lookups read without awaiting anything:

1. each gateway's offers: its shipped snapshot, or a custom gateway's own offers;
2. the live layer: the last good models listing of each gateway that has one
   (:meth:`ProviderGraph.refresh`), which updates prices (source ``live``) and
   context windows and adds the models the snapshot does not know;
3. the user layer: extra offers (:meth:`ProviderGraph.add_offers`) and price
   overrides (:meth:`ProviderGraph.set_price`, source ``user``), which win.

Conflict rule: when one layer lists the same (gateway, gateway model) twice with
different terms (OneAI lists ``deepseek-r1`` at $0.80/$3.50 and at $0.55/$2.19),
the graph takes the most conservative reading of each field: the highest price
of each kind (unknown if any row's price is unknown), the smallest context
window (unknown if any row's is), and a capability only where every row agrees.
A cost estimate then never undershoots what the gateway may bill, and a prompt
never overflows what it may accept. Every conflict is kept in :attr:`ProviderGraph.conflicts` and reported
with a :class:`CatalogConflictWarning`.

Lookups (:meth:`~ProviderGraph.offers`, :meth:`~ProviderGraph.candidates`,
:meth:`~ProviderGraph.resolve`) are dictionary reads: their cost does not grow
with the catalog.
"""

from __future__ import annotations

import asyncio
import difflib
import logging
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final

import aiohttp
import attrs
import cachetools

from ._catalog import shipped_canonicalizer, snapshot
from ._clock import Clock, MonotonicClock
from ._errors import ConfigError, UnknownModelError
from ._gateway import Gateway
from ._listing import fetch_listing
from ._offer import Capabilities, Offer, PriceSource

__all__ = ["CatalogConflictWarning", "Conflict", "ProviderGraph", "RefreshReport"]

logger: Final = logging.getLogger("switchyard.catalog")

_Key = tuple[str, str]


class CatalogConflictWarning(UserWarning):
    """A catalog lists one (gateway, model) twice with different terms."""


@attrs.frozen
class Conflict:
    """One duplicate (gateway, gateway model) with different terms, and how it was resolved.

    Attributes:
        gateway: the gateway whose listing has the duplicate.
        gateway_model: the duplicated id.
        rows: the rows as listed.
        kept: the offer the graph uses.
    """

    gateway: str
    gateway_model: str
    rows: tuple[Offer, ...]
    kept: Offer

    def __str__(self) -> str:
        def terms(o: Offer) -> str:
            price = "unknown price" if not o.priced else f"${o.input_price:.2f}/${o.output_price:.2f} per 1M"
            ctx = "?" if o.context_window is None else f"{o.context_window:,}"
            return f"{price}, context {ctx}"

        listed = "; ".join(terms(r) for r in self.rows)
        return (
            f"{self.gateway} lists {self.gateway_model!r} {len(self.rows)} times with different terms "
            f"({listed}); using {terms(self.kept)}: the highest price of each kind and the smallest "
            "context window, so no estimate undershoots"
        )


@attrs.frozen
class RefreshReport:
    """What one :meth:`ProviderGraph.refresh` did.

    Attributes:
        fetched: gateways whose listing was read from the network.
        cached: gateways whose listing was still fresh and was not fetched again.
        failed: gateway -> why its listing could not be read (its last good one stays).
        skipped_entries: gateway -> how many listing entries were unusable.
    """

    fetched: tuple[str, ...] = ()
    cached: tuple[str, ...] = ()
    failed: Mapping[str, str] = attrs.field(factory=dict)
    skipped_entries: Mapping[str, int] = attrs.field(factory=dict)


@attrs.frozen
class _Index:
    """One immutable merge of the layers; replaced as a whole, never mutated."""

    by_model: Mapping[str, tuple[Offer, ...]]
    by_key: Mapping[_Key, Offer]
    by_gateway_model: Mapping[str, tuple[Offer, ...]]
    names: Mapping[str, str]
    chains: Mapping[str, tuple[str, ...]]
    candidates: Mapping[str, tuple[Offer, ...]]
    conflicts: tuple[Conflict, ...]
    version: int


def _most_conservative(rows: Sequence[Offer]) -> Offer:
    """Resolve duplicate rows by the rule in the module docstring."""
    first = rows[0]
    inp: float | None
    out: float | None
    if all(r.priced for r in rows):
        dearest = max(rows, key=lambda r: (r.input_price or 0.0, r.output_price or 0.0))
        inp = max(r.input_price or 0.0 for r in rows)
        out = max(r.output_price or 0.0 for r in rows)
        source, reference = dearest.price_source, dearest.price_reference
    else:
        inp = out = None
        source, reference = PriceSource.UNKNOWN, None
    windows = [r.context_window for r in rows if r.context_window is not None]

    def agreed(name: str) -> bool | None:
        values = {getattr(r.capabilities, name) for r in rows}
        return values.pop() if len(values) == 1 else None

    capabilities = Capabilities(
        streaming=agreed("streaming"),
        tools=agreed("tools"),
        web_search=agreed("web_search"),
        assistant_prefill=agreed("assistant_prefill"),
        unsupported_params=frozenset().union(*(r.capabilities.unsupported_params for r in rows)),
    )
    return Offer(
        first.model,
        first.gateway_model,
        inp,
        out,
        min(windows) if len(windows) == len(rows) else None,
        price_source=source,
        price_reference=reference,
        capabilities=capabilities,
        gateway=first.gateway,
    )


def _dedupe(rows: Iterable[Offer], conflicts: list[Conflict]) -> dict[_Key, Offer]:
    """Group one layer's rows by (gateway, gateway model), resolving conflicts."""
    groups: dict[_Key, list[Offer]] = {}
    for row in rows:
        assert row.gateway is not None
        groups.setdefault((row.gateway, row.gateway_model), []).append(row)
    merged: dict[_Key, Offer] = {}
    for key, group in groups.items():
        distinct = list(dict.fromkeys(group))
        if len(distinct) == 1:
            merged[key] = distinct[0]
        else:
            kept = _most_conservative(distinct)
            conflicts.append(Conflict(gateway=key[0], gateway_model=key[1], rows=tuple(distinct), kept=kept))
            merged[key] = kept
    return merged


def _apply_live(base: Offer | None, live: Offer) -> Offer:
    """Lay a live listing entry over the snapshot offer, if there is one."""
    if base is None:
        return live
    merged = base
    if live.priced:
        merged = attrs.evolve(
            merged,
            input_price=live.input_price,
            output_price=live.output_price,
            price_source=PriceSource.LIVE,
            price_reference=None,
        )
    if live.context_window is not None:
        merged = attrs.evolve(merged, context_window=live.context_window)
    return merged


class ProviderGraph:
    """Every offer of every configured gateway, by canonical model, with fallbacks.

    Build it with :meth:`from_catalogs`. Lookups never await and never do I/O;
    :meth:`refresh` reads the gateways' live models listings and swaps in a new
    index when it is done.
    """

    def __init__(
        self,
        gateways: Iterable[Gateway],
        *,
        offers: Iterable[Offer] = (),
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        aliases: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        refresh_ttl: float = 900.0,
    ) -> None:
        """See :meth:`from_catalogs`."""
        gws = tuple(gateways)
        if not gws:
            raise ConfigError("a provider graph needs at least one gateway")
        by_name: dict[str, Gateway] = {}
        for gw in gws:
            if not isinstance(gw, Gateway):
                raise ConfigError(f"gateways must be Gateway values, not {gw!r}")
            if gw.name in by_name:
                raise ConfigError(f"two gateways are called {gw.name!r}; gateway names must be unique")
            by_name[gw.name] = gw
        if refresh_ttl <= 0:
            raise ConfigError(f"refresh_ttl must be positive seconds, not {refresh_ttl!r}")
        self._gateways: Mapping[str, Gateway] = MappingProxyType(by_name)
        self._order = {name: i for i, name in enumerate(by_name)}
        self._canon = (
            shipped_canonicalizer() if not aliases else shipped_canonicalizer().with_aliases(aliases)
        )
        self._clock = clock if clock is not None else MonotonicClock()
        self._live: dict[str, tuple[Offer, ...]] = {}
        self._listing_cache: cachetools.TTLCache[str, tuple[Offer, ...]] = cachetools.TTLCache(
            maxsize=max(len(by_name), 1), ttl=refresh_ttl, timer=self._clock.now
        )
        self._user_offers: tuple[Offer, ...] = ()
        self._prices: dict[_Key, tuple[float, float]] = {}
        self._fallbacks: dict[str, tuple[str, ...]] = {}
        self._version = 0
        self._reported: set[tuple[str, str, tuple[Offer, ...]]] = set()
        self._index = self._build()
        if offers:
            self.add_offers(offers)
        if fallbacks:
            self.set_fallbacks(fallbacks)

    @classmethod
    def from_catalogs(
        cls,
        gateways: Iterable[Gateway],
        *,
        offers: Iterable[Offer] = (),
        fallbacks: Mapping[str, Sequence[str]] | None = None,
        aliases: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        refresh_ttl: float = 900.0,
    ) -> ProviderGraph:
        """Build the graph from each gateway's catalog.

        A built-in gateway sells from its shipped snapshot; a custom gateway
        (:meth:`Gateway.openai_compatible`) sells its own offers.

        Args:
            gateways: the gateways, in the order used to break ties.
            offers: extra offers (the user layer); each names its ``gateway``.
            fallbacks: model -> models to try when none of its offers can serve.
            aliases: extra aliases laid over the shipped table (id -> canonical id).
            clock: the clock for the live listing cache; monotonic by default.
            refresh_ttl: seconds a fetched models listing stays fresh.

        Raises:
            ConfigError: on no gateways, duplicate names, an offer for an unknown
                gateway, or a bad TTL.
            UnknownModelError: when a fallback names a model no gateway serves.
        """
        return cls(
            gateways,
            offers=offers,
            fallbacks=fallbacks,
            aliases=aliases,
            clock=clock,
            refresh_ttl=refresh_ttl,
        )

    # -- building the index --------------------------------------------------------------

    def _bind(self, offer: Offer, gateway: str) -> Offer:
        canonical = self._canon(offer.model)
        if canonical == offer.model and offer.gateway == gateway:
            return offer
        return attrs.evolve(offer, model=canonical, gateway=gateway)

    def _build(self) -> _Index:
        conflicts: list[Conflict] = []
        base_rows: list[Offer] = []
        for name, gw in self._gateways.items():
            rows = snapshot(gw.catalog) if gw.catalog is not None else gw.offers or ()
            base_rows.extend(self._bind(o, name) for o in rows)
        merged = _dedupe(base_rows, conflicts)
        for name, listing in self._live.items():
            for key, live in _dedupe((self._bind(o, name) for o in listing), conflicts).items():
                merged[key] = _apply_live(merged.get(key), live)
        for key, user in _dedupe(
            (self._bind(o, o.gateway or "") for o in self._user_offers), conflicts
        ).items():
            merged[key] = user
        for key, (inp, out) in self._prices.items():
            if key in merged:
                merged[key] = attrs.evolve(
                    merged[key],
                    input_price=inp,
                    output_price=out,
                    price_source=PriceSource.USER,
                    price_reference=None,
                )

        ordered = sorted(merged.values(), key=lambda o: (self._order[o.gateway or ""], o.gateway_model))
        by_model: dict[str, list[Offer]] = {}
        by_gateway_model: dict[str, list[Offer]] = {}
        for offer in ordered:
            by_model.setdefault(offer.model, []).append(offer)
            by_gateway_model.setdefault(offer.gateway_model, []).append(offer)
        models = {m: tuple(v) for m, v in by_model.items()}
        names: dict[str, str] = {}
        for offer in ordered:
            names.setdefault(offer.gateway_model, offer.model)
            names.setdefault(offer.gateway_model.casefold(), offer.model)
        names.update({m: m for m in models})

        chains: dict[str, tuple[str, ...]] = {}
        candidates: dict[str, tuple[Offer, ...]] = dict(models)
        for model in self._fallbacks:
            if model not in models:
                continue
            chain = self._chain(model, models)
            chains[model] = chain
            candidates[model] = tuple(o for m in chain for o in models[m])

        self._report(conflicts)
        self._version += 1
        return _Index(
            by_model=MappingProxyType(models),
            by_key=MappingProxyType({(o.gateway or "", o.gateway_model): o for o in ordered}),
            by_gateway_model=MappingProxyType({k: tuple(v) for k, v in by_gateway_model.items()}),
            names=MappingProxyType(names),
            chains=MappingProxyType(chains),
            candidates=MappingProxyType(candidates),
            conflicts=tuple(conflicts),
            version=self._version,
        )

    def _chain(self, model: str, models: Mapping[str, tuple[Offer, ...]]) -> tuple[str, ...]:
        """The model, then its fallbacks depth-first, each model once (cycles are cut)."""
        chain: list[str] = []
        stack = [model]
        while stack:
            current = stack.pop()
            if current in chain or current not in models:
                continue
            chain.append(current)
            stack.extend(reversed(self._fallbacks.get(current, ())))
        return tuple(chain)

    def _report(self, conflicts: Sequence[Conflict]) -> None:
        for conflict in conflicts:
            key = (conflict.gateway, conflict.gateway_model, conflict.rows)
            if key in self._reported:
                continue
            self._reported.add(key)
            warnings.warn(str(conflict), CatalogConflictWarning, stacklevel=5)

    def _rebuild(self) -> None:
        self._index = self._build()

    # -- configuration ---------------------------------------------------------------------

    @property
    def gateways(self) -> Mapping[str, Gateway]:
        """The gateways by name, in configuration order."""
        return self._gateways

    def gateway(self, name: str) -> Gateway:
        """The gateway called ``name``.

        Raises:
            ConfigError: when there is none.
        """
        try:
            return self._gateways[name]
        except KeyError:
            raise ConfigError(
                f"no gateway called {name!r} in this graph; it has {', '.join(self._gateways)}"
            ) from None

    def add_offers(self, offers: Iterable[Offer]) -> None:
        """Add offers to the user layer; each replaces any offer with its (gateway, gateway model).

        Raises:
            ConfigError: when an offer names no gateway, or one not in this graph.
        """
        new = tuple(offers)
        for offer in new:
            if not isinstance(offer, Offer):
                raise ConfigError(f"offers must be Offer values, not {offer!r}")
            if offer.gateway is None:
                raise ConfigError(
                    f"offer {offer.model!r} must name its gateway (Offer(..., gateway='oneai'))"
                )
            self.gateway(offer.gateway)
        self._user_offers += new
        self._rebuild()

    def set_price(self, gateway: str, gateway_model: str, input_price: float, output_price: float) -> Offer:
        """Override one offer's price with the user's own numbers (source ``user``).

        The override outlives live refreshes. Returns the updated offer.

        Raises:
            ConfigError: on an unknown gateway or offer, or an invalid price.
        """
        self.gateway(gateway)
        Offer("price-check", input_price=input_price, output_price=output_price)  # validates the numbers
        if (gateway, gateway_model) not in self._index.by_key:
            close = difflib.get_close_matches(
                gateway_model, [gm for (g, gm) in self._index.by_key if g == gateway], n=3
            )
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"gateway {gateway!r} has no offer {gateway_model!r}{hint}")
        self._prices[(gateway, gateway_model)] = (float(input_price), float(output_price))
        self._rebuild()
        return self._index.by_key[(gateway, gateway_model)]

    def set_fallbacks(self, fallbacks: Mapping[str, Sequence[str]]) -> None:
        """Set fallback edges: model -> models to try, in order, when it cannot be served.

        Fallbacks are followed depth-first (a fallback's own fallbacks come right
        after it), each model at most once. Ids may be canonical or any gateway's.

        Raises:
            UnknownModelError: when an id names no model in the graph.
            ConfigError: when a model lists itself.
        """
        resolved: dict[str, tuple[str, ...]] = {}
        for model, targets in fallbacks.items():
            if isinstance(targets, str):
                raise ConfigError(
                    f"fallbacks[{model!r}] must be a list of models, not the string {targets!r}"
                )
            source = self.resolve(model)
            chain = tuple(dict.fromkeys(self.resolve(t) for t in targets))
            if source in chain:
                raise ConfigError(f"model {model!r} lists itself as its own fallback")
            resolved[source] = chain
        self._fallbacks.update(resolved)
        self._rebuild()

    # -- lookups -----------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Increases every time the index is rebuilt; callers cache per version."""
        return self._index.version

    @property
    def conflicts(self) -> tuple[Conflict, ...]:
        """The duplicate listings the graph resolved, and how."""
        return self._index.conflicts

    def models(self) -> tuple[str, ...]:
        """Every canonical model some gateway serves, sorted."""
        return tuple(sorted(self._index.by_model))

    def __iter__(self) -> Iterator[Offer]:
        """Every offer, ordered by gateway then gateway model id."""
        return iter(self._index.by_key.values())

    def __len__(self) -> int:
        return len(self._index.by_key)

    def resolve(self, model: str) -> str:
        """The canonical id for ``model``, which may be canonical or any gateway's id.

        Raises:
            UnknownModelError: naming the closest known ids.
        """
        index = self._index
        canonical = index.names.get(model)
        if canonical is not None:
            return canonical
        if not isinstance(model, str):
            raise ConfigError(f"a model id is a str, not {type(model).__name__}")
        normalised = self._canon(model)
        canonical = index.names.get(normalised)
        if canonical is not None:
            return canonical
        raise UnknownModelError(model, self._suggest(model, normalised))

    def _suggest(self, model: str, normalised: str) -> list[str]:
        known = list(self._index.by_model)
        found = difflib.get_close_matches(normalised, known, n=3, cutoff=0.6)
        if not found:
            by_id = difflib.get_close_matches(model, list(self._index.by_gateway_model), n=3, cutoff=0.6)
            found = list(dict.fromkeys(by_id))
        return found

    def offers(self, model: str) -> tuple[Offer, ...]:
        """Every offer of ``model`` (canonical or any gateway's id), in gateway order.

        Raises:
            UnknownModelError: naming the closest known ids.
        """
        return self._index.by_model[self.resolve(model)]

    def offer(self, gateway: str, gateway_model: str) -> Offer:
        """The offer ``gateway`` sells as ``gateway_model``.

        Raises:
            ConfigError: on an unknown gateway.
            UnknownModelError: when that gateway has no such offer.
        """
        self.gateway(gateway)
        try:
            return self._index.by_key[(gateway, gateway_model)]
        except KeyError:
            ids = [gm for (g, gm) in self._index.by_key if g == gateway]
            raise UnknownModelError(
                f"{gateway}:{gateway_model}", difflib.get_close_matches(gateway_model, ids, n=3)
            ) from None

    def by_gateway_model(self, gateway_model: str) -> tuple[Offer, ...]:
        """Every offer whose gateway id is exactly ``gateway_model`` (empty when none)."""
        return self._index.by_gateway_model.get(gateway_model, ())

    def fallbacks(self, model: str) -> tuple[str, ...]:
        """The models tried after ``model``, in order (depth-first, each once)."""
        canonical = self.resolve(model)
        return self._index.chains.get(canonical, (canonical,))[1:]

    def direct_fallbacks(self, model: str) -> tuple[str, ...]:
        """The fallback models configured for ``model`` itself, in order (not followed further)."""
        return self._fallbacks.get(self.resolve(model), ())

    def candidates(self, model: str) -> tuple[Offer, ...]:
        """The offers of ``model``, then those of its fallbacks in order.

        Raises:
            UnknownModelError: naming the closest known ids.
        """
        return self._index.candidates[self.resolve(model)]

    # -- live refresh ------------------------------------------------------------------------

    async def refresh(
        self,
        session: aiohttp.ClientSession | None = None,
        *,
        force: bool = False,
        timeout: float = 10.0,
    ) -> RefreshReport:
        """Read the models listing of every gateway that has one, and merge it (source ``live``).

        A listing stays fresh for ``refresh_ttl`` seconds and is not fetched again
        before that unless ``force``. Lookups keep answering from the current index
        while this runs; the new index replaces it in one step at the end. A gateway
        whose listing fails keeps its last good one; the failure is in the report and
        logged, never raised.

        Args:
            session: the session to use; a short-lived one is made when None.
            force: fetch even listings that are still fresh.
            timeout: seconds allowed for each listing.
        """
        due: list[Gateway] = []
        cached: list[str] = []
        for gw in self._gateways.values():
            if gw.models_url is None:
                continue
            if not force and gw.name in self._listing_cache:
                cached.append(gw.name)
            else:
                due.append(gw)
        if not due:
            return RefreshReport(cached=tuple(cached))

        async def run(s: aiohttp.ClientSession) -> list[tuple[Gateway, object]]:
            results = await asyncio.gather(
                *(fetch_listing(s, gw, timeout) for gw in due), return_exceptions=True
            )
            return list(zip(due, results, strict=True))

        if session is None:
            async with aiohttp.ClientSession() as own:
                outcomes = await run(own)
        else:
            outcomes = await run(session)

        fetched: list[str] = []
        failed: dict[str, str] = {}
        skipped: dict[str, int] = {}
        for gw, result in outcomes:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failed[gw.name] = str(result)
                logger.warning("models listing of %s not refreshed: %s", gw.name, result)
                continue
            assert isinstance(result, tuple)
            listing, bad = result
            self._listing_cache[gw.name] = listing
            self._live[gw.name] = listing
            fetched.append(gw.name)
            if bad:
                skipped[gw.name] = bad
        if fetched:
            self._rebuild()
        return RefreshReport(
            fetched=tuple(fetched), cached=tuple(cached), failed=failed, skipped_entries=skipped
        )
