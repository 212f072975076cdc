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
never overflows what it may accept. Every conflict is kept in
:attr:`ProviderGraph.conflicts`, with the layer it came from. A conflict in data
the user supplies (a custom gateway's offers, extra offers, a live models listing)
is also reported with a :class:`CatalogConflictWarning`; one in a shipped snapshot
is known data, resolved by the same rule and recorded in that catalog's notes, so
building a graph from the shipped catalogs warns about nothing.

Lookups (:meth:`~ProviderGraph.offers`, :meth:`~ProviderGraph.candidates`,
:meth:`~ProviderGraph.resolve`) are dictionary reads: their cost does not grow
with the catalog. So is the "did you mean" of an unknown id: the index keeps
every known id sorted, and sorted by its reversed spelling, and hands difflib
only the few ids next to the asked one in either order (those sharing its longest
prefix or suffix, which a typo or two leaves intact), never the whole catalog.

Each layer is bound (canonical ids) and de-duplicated once, when it changes; a
rebuild only lays the prepared layers over each other, so a refresh of a large
listing costs in proportion to that listing, and a large one is prepared off the
event loop.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import difflib
import itertools
import logging
import operator
import warnings
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Final, Literal, TypeVar

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
Layer = Literal["snapshot", "gateway", "live", "user"]

_ALL_IN: Final = 128  # a catalog with this few ids is searched whole, as difflib always did
_NEAR: Final = 6  # ids taken on each side of an unknown one, in each of the two sort orders
_OFF_LOOP: Final = 5_000  # listing entries from which a refresh prepares its layer in a thread
_by_gateway_model: Final = operator.attrgetter("gateway_model")
_by_gateway: Final = operator.attrgetter("gateway")
_by_model: Final = operator.attrgetter("model")
_second: Final = operator.itemgetter(1)
_backwards: Final = operator.itemgetter(slice(None, None, -1))
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


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
        layer: where the rows came from: ``snapshot`` (a shipped catalog; known,
            not warned), ``gateway`` (a custom gateway's offers), ``live`` (a
            models listing) or ``user`` (:meth:`ProviderGraph.add_offers`).
    """

    gateway: str
    gateway_model: str
    rows: tuple[Offer, ...]
    kept: Offer
    layer: Layer = "snapshot"

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


class _Suggester:
    """Close-match candidates for an unknown id in bounded time (see the module docstring).

    Up to ``_ALL_IN`` ids are all candidates; beyond that, the ``_NEAR`` ids on
    either side of the asked one in id order and in reversed-id order, so difflib
    never compares more than ``4 * _NEAR`` ids whatever the catalog's size.
    """

    __slots__ = ("_ids", "_known", "_reversed")

    def __init__(self, ids: Iterable[str]) -> None:
        known = frozenset(ids)
        self._known = known
        self._ids = sorted(known)
        self._reversed = sorted(map(_backwards, known)) if len(known) > _ALL_IN else []

    def same_ids(self, ids: frozenset[str]) -> bool:
        """Whether this index was built from exactly ``ids`` (then it can be kept)."""
        return ids == self._known

    def candidates(self, query: str) -> list[str]:
        """The ids difflib is shown for ``query``."""
        ids = self._ids
        if len(ids) <= _ALL_IN:
            return ids
        i = bisect.bisect_left(ids, query)
        near = dict.fromkeys(ids[max(0, i - _NEAR) : i + _NEAR])
        flipped, backwards = self._reversed, query[::-1]
        j = bisect.bisect_left(flipped, backwards)
        near.update(dict.fromkeys(r[::-1] for r in flipped[max(0, j - _NEAR) : j + _NEAR]))
        return list(near)

    def close(self, query: str, keep: Callable[[str], bool], n: int = 3) -> list[str]:
        """The ids closest to ``query`` among the candidates ``keep`` accepts, best first."""
        return difflib.get_close_matches(query, [c for c in self.candidates(query) if keep(c)], n=n)


@attrs.frozen
class _Index:
    """One immutable merge of the layers; replaced as a whole, never mutated.

    ``offers`` and ``ids`` (wire ids, canonical ids) are ``by_key``'s, in order: the
    next build compares against them to keep what still holds and patch what changed.
    """

    by_model: MappingProxyType[str, tuple[Offer, ...]]
    by_key: Mapping[_Key, Offer]
    by_gateway_model: MappingProxyType[str, tuple[Offer, ...]]
    names: Mapping[str, str]
    chains: Mapping[str, tuple[str, ...]]
    candidates: Mapping[str, tuple[Offer, ...]]
    conflicts: tuple[Conflict, ...]
    suggester: _Suggester
    offers: tuple[Offer, ...]
    ids: tuple[tuple[str, ...], tuple[str, ...]]
    version: int


@attrs.frozen
class _Prepared:
    """One layer bound to canonical ids and de-duplicated: per gateway, offers sorted by wire id."""

    by_gateway: Mapping[str, Mapping[_Key, Offer]]
    conflicts: tuple[Conflict, ...] = ()
    spelled: Mapping[str, str] = attrs.field(factory=dict)  # listed id -> canonical, for the next refresh


_EMPTY: Final = _Prepared(MappingProxyType({}))


@attrs.frozen
class _Inputs:
    """What one index is built from: the prepared layers and the user's settings, as they were."""

    base: _Prepared
    live: tuple[_Prepared, ...]
    user: _Prepared
    prices: Mapping[_Key, tuple[float, float]]
    fallbacks: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]


# The index is built from whole-list passes (zip, map, dict, Counter, sort), which run
# in C; a Python-level step is taken only for what is rare: a repeated key, a live entry
# for a new id, a user price. Binding ids to canonical ones is the per-offer Python work
# left, and it is done once per layer, not once per rebuild.


def _repeated(keys: Sequence[_K], values: Sequence[_V]) -> dict[_K, list[_V]]:
    """Each key occurring more than once, with its values in order; the others cost no Python step."""
    counts = collections.Counter(keys)
    twice = {k for k, _ in itertools.takewhile(lambda kn: kn[1] > 1, counts.most_common())}
    groups: dict[_K, list[_V]] = {}
    for key, value in itertools.compress(zip(keys, values, strict=True), map(twice.__contains__, keys)):
        groups.setdefault(key, []).append(value)
    return groups


def _group(
    keys: Sequence[str], offers: Sequence[Offer], singles: Sequence[tuple[Offer]]
) -> dict[str, tuple[Offer, ...]]:
    """key -> the offers with that key, in order (``singles[i]`` is ``(offers[i],)``, made once)."""
    groups: dict[str, tuple[Offer, ...]] = dict(zip(keys, singles, strict=True))
    if len(groups) < len(keys):
        groups.update((k, tuple(v)) for k, v in _repeated(keys, offers).items())
    return groups


def _sorted_by_id(offers: Mapping[_Key, Offer]) -> dict[_Key, Offer]:
    """One gateway's offers ordered by wire id (its keys differ only there)."""
    keys = sorted(offers, key=_second)  # by the wire id alone: string comparisons, no new objects
    return dict(zip(keys, map(offers.__getitem__, keys), strict=True))


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

    # Every flag Capabilities has (a new one included): known only where all rows agree.
    flags = {f.name: agreed(f.name) for f in attrs.fields(Capabilities) if f.name != "unsupported_params"}
    dropped = frozenset().union(*(r.capabilities.unsupported_params for r in rows))
    capabilities = Capabilities.from_json({**flags, "unsupported_params": dropped})
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


def _dedupe(
    rows: Sequence[Offer],
    layer: Layer,
    gateway: str | None = None,
    bind: Callable[[Sequence[Offer]], list[Offer]] | None = None,
) -> tuple[dict[_Key, Offer], list[Conflict]]:
    """Key one layer's rows by (gateway, gateway model), resolving conflicts; keys in first-seen order.

    ``gateway``: every row's, when the rows are not bound to it yet; ``bind`` then
    binds the rows of a conflict before it is resolved (the rest are bound later,
    and only when they need it).
    """
    sellers = itertools.repeat(gateway) if gateway is not None else map(_by_gateway, rows)
    keys: list[_Key] = list(zip(sellers, map(_by_gateway_model, rows), strict=False))  # repeat() is endless
    merged = dict(zip(keys, rows, strict=True))
    conflicts: list[Conflict] = []
    if len(merged) == len(rows):
        return merged, conflicts
    for key, group in _repeated(keys, rows).items():
        distinct = tuple(dict.fromkeys(group if bind is None else bind(group)))
        merged[key] = distinct[0]
        if len(distinct) > 1:
            kept = _most_conservative(distinct)
            conflicts.append(Conflict(key[0], key[1], distinct, kept, layer))
            merged[key] = kept
    return merged, conflicts


def _by_gateway_split(offers: Mapping[_Key, Offer]) -> dict[str, dict[_Key, Offer]]:
    """Split keyed offers per gateway, each sorted by wire id."""
    split: dict[str, dict[_Key, Offer]] = {}
    for key, offer in offers.items():
        split.setdefault(key[0], {})[key] = offer
    return {gateway: _sorted_by_id(part) for gateway, part in split.items()}


def _rebound(offer: Offer, model: str, gateway: str) -> Offer:
    """``offer`` under its canonical id and gateway (as ``attrs.evolve``, without its overhead)."""
    return Offer(
        model,
        offer.gateway_model,
        offer.input_price,
        offer.output_price,
        offer.context_window,
        price_source=offer.price_source,
        price_reference=offer.price_reference,
        capabilities=offer.capabilities,
        gateway=gateway,
    )


def _apply_live(base: Offer, live: Offer) -> Offer:
    """Lay a live listing entry over the snapshot offer."""
    if not live.priced and live.context_window is None:
        return base
    return Offer(
        base.model,
        base.gateway_model,
        live.input_price if live.priced else base.input_price,
        live.output_price if live.priced else base.output_price,
        base.context_window if live.context_window is None else live.context_window,
        price_source=PriceSource.LIVE if live.priced else base.price_source,
        price_reference=None if live.priced else base.price_reference,
        capabilities=base.capabilities,
        gateway=base.gateway,
    )


def _assemble(inputs: _Inputs, previous: _Index | None, version: int) -> _Index:
    """Lay the prepared layers over each other and index the result (pure: safe in a thread)."""
    overlays = (*inputs.live, inputs.user)
    by_key: dict[_Key, Offer] = {}
    for gateway in inputs.order:
        part = dict(inputs.base.by_gateway.get(gateway, {}))
        size = len(part)
        for layer in overlays:
            part.update(layer.by_gateway.get(gateway, {}))
        by_key.update(part if len(part) == size else _sorted_by_id(part))  # new ids: sort again
    for key, (inp, out) in inputs.prices.items():
        if key in by_key:
            by_key[key] = attrs.evolve(
                by_key[key],
                input_price=inp,
                output_price=out,
                price_source=PriceSource.USER,
                price_reference=None,
            )

    offers = tuple(by_key.values())
    wire_ids = tuple(map(_second, by_key))
    canonical = tuple(map(_by_model, offers))
    # The same ids in the same places as last time: the names and the suggestion index
    # hold, and when few offers changed, the groups are patched rather than made again.
    same = previous if previous is not None and (wire_ids, canonical) == previous.ids else None
    patched = _patch(same, offers) if same is not None else None
    if patched is not None:
        models, by_gateway_model = patched
    else:
        singles = list(zip(offers))  # shared by both groupings: half the allocations, less GC work
        models = _group(canonical, offers, singles)
        by_gateway_model = _group(wire_ids, offers, singles)
    names: Mapping[str, str]
    if same is not None:
        names, suggester = same.names, same.suggester
    else:
        # Any spelling -> canonical id: a wire id, its case-folded form (the first offer to
        # spell it wins, hence the reversed pairs), then every canonical id itself.
        folded = map(str.casefold, wire_ids)
        spellings = list(itertools.chain.from_iterable(zip(wire_ids, folded, strict=True)))
        targets = list(itertools.chain.from_iterable(zip(canonical, canonical, strict=True)))
        names = dict(zip(reversed(spellings), reversed(targets), strict=True))
        names.update(zip(models, models, strict=True))
        names = MappingProxyType(names)
        ids = frozenset(itertools.chain(models, by_gateway_model))
        known = None if previous is None else previous.suggester
        suggester = known if known is not None and known.same_ids(ids) else _Suggester(ids)

    chains: dict[str, tuple[str, ...]] = {}
    candidates: dict[str, tuple[Offer, ...]] = dict(models)
    for model in inputs.fallbacks:
        if model not in models:
            continue
        chain = _chain(model, models, inputs.fallbacks)
        chains[model] = chain
        candidates[model] = tuple(o for m in chain for o in models[m])

    conflicts = (
        *inputs.base.conflicts,
        *(c for live in inputs.live for c in live.conflicts),
        *inputs.user.conflicts,
    )
    return _Index(
        by_model=MappingProxyType(models),
        by_key=MappingProxyType(by_key),
        by_gateway_model=MappingProxyType(by_gateway_model),
        names=names,
        chains=MappingProxyType(chains),
        candidates=MappingProxyType(candidates),
        conflicts=conflicts,
        suggester=suggester,
        offers=offers,
        ids=(wire_ids, canonical),
        version=version,
    )


def _patch(
    previous: _Index, offers: tuple[Offer, ...]
) -> tuple[dict[str, tuple[Offer, ...]], dict[str, tuple[Offer, ...]]] | None:
    """The previous groups with the offers that changed put in, or None when most changed.

    Which offers changed is found by identity, in C (``map(operator.is_not, ...)``);
    copying the group dicts allocates nothing per entry, so a price override or a
    refresh that only moves prices costs little more than the changed offers.
    """
    old = previous.offers
    changed = list(itertools.compress(range(len(offers)), map(operator.is_not, offers, old)))
    if len(changed) > len(offers) // 4:
        return None
    models = previous.by_model.copy()
    by_gateway_model = previous.by_gateway_model.copy()
    for i in changed:
        before, after = old[i], offers[i]
        for groups, key in ((models, after.model), (by_gateway_model, after.gateway_model)):
            groups[key] = tuple(after if o is before else o for o in groups[key])
    return models, by_gateway_model


def _chain(
    model: str, models: Mapping[str, tuple[Offer, ...]], fallbacks: Mapping[str, tuple[str, ...]]
) -> tuple[str, ...]:
    """The model, then its fallbacks depth-first, each model once (cycles are cut)."""
    chain: list[str] = []
    stack = [model]
    while stack:
        current = stack.pop()
        if current in chain or current not in models:
            continue
        chain.append(current)
        stack.extend(reversed(fallbacks.get(current, ())))
    return tuple(chain)


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
        self._live: dict[str, _Prepared] = {}
        self._listing_cache: cachetools.TTLCache[str, tuple[Offer, ...]] = cachetools.TTLCache(
            maxsize=max(len(by_name), 1), ttl=refresh_ttl, timer=self._clock.now
        )
        self._user_offers: tuple[Offer, ...] = ()
        self._user = _EMPTY
        self._prices: dict[_Key, tuple[float, float]] = {}
        self._fallbacks: dict[str, tuple[str, ...]] = {}
        self._version = 0
        self._changes = 0  # counts changes to the inputs, so a build made off the loop can tell
        self._reported: set[tuple[str, str, tuple[Offer, ...]]] = set()
        self._base = self._prepare_base()
        self._index = self._build(None)
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

    def _bind(
        self, rows: Iterable[Offer], gateway: str, spelled: dict[str, str] | None = None
    ) -> list[Offer]:
        """``rows`` with canonical model ids, sold by ``gateway``.

        ``spelled`` (listed id -> canonical id) is read first and filled in, so a
        listing fetched again does not run the rules again for ids it had before.
        """
        canon = self._canon
        known = spelled if spelled is not None else {}
        bound = []
        for offer in rows:
            listed = offer.model
            model = known.get(listed)
            if model is None:
                model = known[listed] = canon(listed)
            same = model == listed and offer.gateway == gateway
            bound.append(offer if same else _rebound(offer, model, gateway))
        return bound

    def _prepare_base(self) -> _Prepared:
        """The gateways' own offers (shipped snapshots, custom offers): bound once, as they never change."""
        by_gateway: dict[str, dict[_Key, Offer]] = {}
        conflicts: list[Conflict] = []
        for name, gw in self._gateways.items():
            layer: Layer = "snapshot" if gw.catalog is not None else "gateway"
            rows = snapshot(gw.catalog) if gw.catalog is not None else gw.offers or ()
            offers, found = _dedupe(self._bind(rows, name), layer)
            by_gateway[name] = _sorted_by_id(offers)
            conflicts.extend(found)
        return _Prepared(by_gateway, tuple(conflicts))

    def _prepare_live(self, gateway: str, listing: Sequence[Offer]) -> _Prepared:
        """One gateway's listing laid over its snapshot offers (pure: safe in a thread).

        An entry for an offer the gateway already sells only lends it prices and a
        context window, so only the entries for new ids are bound to canonical ids.
        """
        last = self._live.get(gateway)
        spelled = dict(last.spelled) if last is not None else {}

        def bind(rows: Sequence[Offer]) -> list[Offer]:
            return self._bind(rows, gateway, spelled)

        offers, conflicts = _dedupe(listing, "live", gateway, bind)
        base = self._base.by_gateway.get(gateway, {})
        known = offers.keys() & base.keys()
        for key in known:
            offers[key] = _apply_live(base[key], offers[key])
        new = [key for key in offers if key not in known]
        offers.update(zip(new, bind([offers[key] for key in new]), strict=True))
        if len(spelled) > 2 * len(offers):  # ids the gateway stopped listing: start afresh
            spelled = {o.model: s for o in listing if (s := spelled.get(o.model)) is not None}
        return _Prepared({gateway: _sorted_by_id(offers)}, tuple(conflicts), spelled)

    def _inputs(self) -> _Inputs:
        return _Inputs(
            base=self._base,
            live=tuple(self._live.values()),
            user=self._user,
            prices=dict(self._prices),
            fallbacks=dict(self._fallbacks),
            order=tuple(self._gateways),
        )

    def _build(self, previous: _Index | None) -> _Index:
        self._version += 1
        index = _assemble(self._inputs(), previous, self._version)
        self._report(index.conflicts)
        return index

    def _report(self, conflicts: Sequence[Conflict]) -> None:
        """Warn once about each conflict in supplied data, for as long as it stays in the index."""
        current: set[tuple[str, str, tuple[Offer, ...]]] = set()
        for conflict in conflicts:
            if conflict.layer == "snapshot":
                continue  # shipped data: resolved by the same rule and recorded in the catalog's notes
            key = (conflict.gateway, conflict.gateway_model, conflict.rows)
            current.add(key)
            if key not in self._reported:
                warnings.warn(str(conflict), CatalogConflictWarning, stacklevel=5)
        self._reported = current  # only what is still there: bounded however often listings change

    def _rebuild(self) -> None:
        self._changes += 1
        self._index = self._build(self._index)

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
        bound = [b for o in self._user_offers for b in self._bind((o,), o.gateway or "")]
        keyed, conflicts = _dedupe(bound, "user")
        self._user = _Prepared(_by_gateway_split(keyed), tuple(conflicts))
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
            close = self._suggest_offer(gateway, gateway_model)
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
        """The closest canonical ids, else the closest gateway ids: bounded work (module docstring)."""
        index = self._index
        found = index.suggester.close(normalised, index.by_model.__contains__)
        if not found:
            found = index.suggester.close(model, index.by_gateway_model.__contains__)
        return found

    def _suggest_offer(self, gateway: str, gateway_model: str) -> list[str]:
        """The closest ids ``gateway`` sells."""
        by_key = self._index.by_key
        return self._index.suggester.close(gateway_model, lambda gm: (gateway, gm) in by_key)

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
            raise UnknownModelError(
                f"{gateway}:{gateway_model}", self._suggest_offer(gateway, gateway_model)
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
        while this runs; the new index replaces it in one step at the end. Listings
        of 5,000 entries or more are merged in a worker thread, so a large one does
        not hold up the event loop. A gateway
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
        listings: dict[str, tuple[Offer, ...]] = {}
        for gw, result in outcomes:
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failed[gw.name] = str(result)
                logger.warning("models listing of %s not refreshed: %s", gw.name, result)
                continue
            assert isinstance(result, tuple)
            listing, bad = result
            listings[gw.name] = listing
            fetched.append(gw.name)
            if bad:
                skipped[gw.name] = bad
        if listings:
            await self._merge_listings(listings)
        return RefreshReport(
            fetched=tuple(fetched), cached=tuple(cached), failed=failed, skipped_entries=skipped
        )

    async def _merge_listings(self, listings: Mapping[str, tuple[Offer, ...]]) -> None:
        """Prepare each listing's layer and swap in the new index; a large one off the event loop.

        Preparing binds and de-duplicates the listing and lays it over the snapshot,
        and assembling indexes everything: pure work on values that do not change,
        so a worker thread does it while lookups keep answering from the current
        index. If the configuration changed meanwhile (an override, new offers), the
        index is built again here from the current inputs.
        """

        def prepare() -> dict[str, _Prepared]:
            return {name: self._prepare_live(name, listing) for name, listing in listings.items()}

        large = sum(map(len, listings.values())) >= _OFF_LOOP
        layers = await asyncio.to_thread(prepare) if large else prepare()
        for name, listing in listings.items():
            self._listing_cache[name] = listing
            self._live[name] = layers[name]
        if not large:
            self._rebuild()
            return
        self._changes += 1
        changes, inputs, previous = self._changes, self._inputs(), self._index
        index = await asyncio.to_thread(_assemble, inputs, previous, self._version + 1)
        if changes != self._changes:  # the inputs moved while the thread worked
            self._rebuild()
            return
        self._version = index.version
        self._index = index
        self._report(index.conflicts)
