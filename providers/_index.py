"""The provider graph's index: its prepared layers merged into one immutable value.

The graph keeps its inputs in layers (each gateway's own offers, the live
listings, the user's offers and prices), each bound to canonical ids and
de-duplicated once, when it changes (:class:`Prepared`). :func:`assemble` lays
them over each other and indexes the result (:class:`Index`), which lookups read
without awaiting anything and which is replaced as a whole, never mutated.

The index is built from whole-list passes (zip, map, dict, Counter, sort), which run
in C; a Python-level step is taken only for what is rare: a repeated key, a user
price. A rebuild whose ids did not move keeps the names and the suggester, and
patches the groups rather than making them again. A live layer holds its gateway's
whole catalog, already ordered, so a refresh copies and sorts nothing here.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import attrs

from ._conflicts import Conflict, Key, repeated
from ._offer import Offer, PriceSource
from ._suggest import Suggester, sorted_in_steps

if TYPE_CHECKING:
    from ._listing import ListedRow  # the module itself loads with a live listing

__all__ = [
    "EMPTY",
    "Group",
    "Index",
    "Inputs",
    "ModelOffers",
    "Prepared",
    "assemble",
    "offers_in",
    "sorted_by_id",
    "walk",
]

_by_model: Final = operator.attrgetter("model")
_WALKS_KEPT: Final = 1_024  # cached chains kept beyond one per model, for callers' overrides


@attrs.frozen
class ModelOffers:
    """One model of a fallback chain and every offer of it, in gateway order.

    Attributes:
        model: the canonical model id.
        offers: its offers, in gateway order.
    """

    model: str
    offers: tuple[Offer, ...]


Chain = tuple[ModelOffers, ...]
"""A model, then its fallbacks depth-first, each with its offers."""

Group = Offer | tuple[Offer, ...]
"""The offers under one id: the offer itself when it is the only one, else a tuple of them
in order. A catalog's ids mostly name one offer each; no 1-tuple is made for those, so a
rebuild of 100,000 offers leaves 100,000 fewer objects for the garbage collector to traverse."""


def offers_in(group: Group) -> tuple[Offer, ...]:
    """The offers of a :data:`Group`, as a tuple."""
    return group if isinstance(group, tuple) else (group,)


@attrs.frozen
class Index:
    """One immutable merge of the layers; replaced as a whole, never mutated.

    ``by_gateway``: gateway -> wire id -> offer. ``names``: wire spellings -> canonical
    ids (:meth:`canonical_of` reads it). ``by_model`` and ``by_gateway_model`` hold
    :data:`Group` values (read them through :meth:`offers_of`, :meth:`wire_offers`);
    ``candidates`` holds only the models that have fallbacks (:meth:`candidates_of`).
    ``offers`` and ``ids`` (wire ids, canonical ids) are every offer's, by gateway then
    wire id: the next build compares against them to keep what still holds and patch
    what changed. ``fallbacks`` are the graph's edges this index was built with;
    ``walks`` caches :meth:`ProviderGraph.tiers` for this index alone: (model, id of the
    overrides) -> (the overrides, the chain), holding the overrides so their id is not
    reused.
    """

    by_model: MappingProxyType[str, Group]
    by_gateway: Mapping[str, Mapping[str, Offer]]
    by_gateway_model: MappingProxyType[str, Group]
    names: Mapping[str, str]
    fallbacks: Mapping[str, tuple[str, ...]]
    chains: Mapping[str, tuple[str, ...]]
    candidates: Mapping[str, tuple[Offer, ...]]
    conflicts: tuple[Conflict, ...]
    suggester: Suggester
    offers: tuple[Offer, ...]
    ids: tuple[tuple[str, ...], tuple[str, ...]]
    version: int
    walks: dict[tuple[str, int], tuple[object, Chain]] = attrs.field(factory=dict, eq=False, repr=False)

    def canonical_of(self, spelling: str) -> str | None:
        """The canonical id ``spelling`` names (itself, a wire id, a wire id case-folded), or None."""
        return spelling if spelling in self.by_model else self.names.get(spelling)

    def offers_of(self, canonical: str) -> tuple[Offer, ...]:
        """The offers of the canonical model ``canonical`` (KeyError when none)."""
        return offers_in(self.by_model[canonical])

    def wire_offers(self, gateway_model: str) -> tuple[Offer, ...]:
        """The offers whose wire id is ``gateway_model`` (empty when none)."""
        group = self.by_gateway_model.get(gateway_model)
        return () if group is None else offers_in(group)

    def candidates_of(self, canonical: str) -> tuple[Offer, ...]:
        """The offers of ``canonical``, then those of its fallbacks in order."""
        chained = self.candidates.get(canonical)
        return self.offers_of(canonical) if chained is None else chained

    def tiers(self, canonical: str, overrides: Mapping[str, Sequence[str]] | None) -> Chain:
        """The chain of ``canonical`` (see :meth:`ProviderGraph.tiers`), cached per ``overrides`` object."""
        key = (canonical, id(overrides))
        hit = self.walks.get(key)
        if hit is not None and hit[0] is overrides:
            return hit[1]
        by_model = self.by_model
        tiers = tuple(
            ModelOffers(m, offers_in(by_model[m]))
            for m in walk(canonical, by_model, self.fallbacks, overrides)
        )
        if len(self.walks) >= len(by_model) + _WALKS_KEPT:
            self.walks.clear()  # a caller passing a new overrides mapping each time: stay bounded
        self.walks[key] = (overrides, tiers)  # holding ``overrides`` keeps its id from being reused
        return tiers

    def suggest(self, model: str, normalised: str) -> list[str]:
        """The canonical ids closest to an unknown one, else the closest gateway ids (bounded work)."""
        found = self.suggester.close(normalised, self.by_model.__contains__)
        if not found:
            found = self.suggester.close(model, self.by_gateway_model.__contains__)
        return found

    def suggest_offer(self, gateway: str, gateway_model: str) -> list[str]:
        """The ids closest to ``gateway_model`` that ``gateway`` sells."""
        return self.suggester.close(gateway_model, self.by_gateway.get(gateway, {}).__contains__)


@attrs.frozen
class Prepared:
    """One layer bound to canonical ids and de-duplicated: per gateway, offers by wire id, sorted.

    ``whole``: each gateway's offers here are its whole catalog (a live layer: the gateway's
    own offers with the listing laid over them, and the listed new ids), which replaces the
    layers below rather than being laid over them. ``rows``: for a live layer, the listing
    row each listed id was read as (None for an id listed twice), so the next refresh can
    tell which entries did not change.
    """

    by_gateway: Mapping[str, Mapping[str, Offer]]
    conflicts: tuple[Conflict, ...] = ()
    rows: Mapping[str, ListedRow | None] = attrs.field(factory=dict)
    whole: bool = False


EMPTY: Final = Prepared(MappingProxyType({}))


@attrs.frozen
class Inputs:
    """What one index is built from: the prepared layers and the user's settings, as they were."""

    base: Prepared
    live: tuple[Prepared, ...]
    user: Prepared
    prices: Mapping[Key, tuple[float, float]]
    fallbacks: Mapping[str, tuple[str, ...]]
    order: tuple[str, ...]


def _group(keys: Sequence[str], offers: Sequence[Offer]) -> dict[str, Group]:
    """key -> the offers with that key, in order (see :data:`Group`)."""
    groups: dict[str, Group] = dict(zip(keys, offers, strict=True))
    if len(groups) < len(keys):
        groups.update((k, tuple(v)) for k, v in repeated(keys, offers).items())
    return groups


def sorted_by_id(offers: Mapping[str, Offer]) -> dict[str, Offer]:
    """One gateway's offers (wire id -> offer) in wire id order.

    The ids are sorted in steps (:func:`sorted_in_steps`): a worker thread sorting a large
    listing holds up the event loop for one merge of it at most.
    """
    ordered = sorted_in_steps(offers)
    return dict(zip(ordered, map(offers.__getitem__, ordered), strict=True))


def walk(
    model: str,
    models: Mapping[str, object],
    fallbacks: Mapping[str, Sequence[str]],
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...]:
    """The model, then its fallbacks depth-first, each model once (cycles are cut).

    ``overrides`` replace ``fallbacks``' edges for the models they name. A model
    not in ``models`` (one only a live listing had, gone from the next) is skipped.
    """
    chain: list[str] = []
    stack = [model]
    while stack:
        current = stack.pop()
        if current in chain or current not in models:
            continue
        chain.append(current)
        edges = None if overrides is None else overrides.get(current)
        stack.extend(reversed(fallbacks.get(current, ()) if edges is None else edges))
    return tuple(chain)


def assemble(inputs: Inputs, previous: Index | None, version: int) -> Index:
    """Lay the prepared layers over each other and index the result (pure: safe in a thread)."""
    overlays = (*inputs.live, inputs.user)
    parts: dict[str, Mapping[str, Offer]] = {}
    for gateway in inputs.order:
        part = inputs.base.by_gateway.get(gateway, {})
        for layer in overlays:
            mine = layer.by_gateway.get(gateway)
            if not mine:
                continue
            if layer.whole:  # the gateway's whole catalog, ordered already: no copy, no sort
                part = mine
                continue
            laid = dict(part)
            laid.update(mine)
            part = laid if len(laid) == len(part) else sorted_by_id(laid)  # new ids: sort again
        parts[gateway] = part
    priced: dict[str, dict[str, Offer]] = {}  # the parts the user's prices change, copied once
    for (gateway, wire), (inp, out) in inputs.prices.items():
        if wire in parts.get(gateway, {}):
            part = priced.get(gateway) or priced.setdefault(gateway, dict(parts[gateway]))
            part[wire] = attrs.evolve(
                part[wire],
                input_price=inp,
                output_price=out,
                price_source=PriceSource.USER,
                price_reference=None,
            )
    parts.update(priced)

    offers = tuple(itertools.chain.from_iterable(part.values() for part in parts.values()))
    wire_ids = tuple(itertools.chain.from_iterable(parts.values()))
    canonical = tuple(map(_by_model, offers))
    # The same ids in the same places as last time: the names and the suggestion index
    # hold, and when few offers changed, the groups are patched rather than made again.
    same = previous if previous is not None and (wire_ids, canonical) == previous.ids else None
    patched = _patch(same, offers) if same is not None else None
    if patched is not None:
        models, by_gateway_model = patched
    else:
        models = _group(canonical, offers)
        by_gateway_model = _group(wire_ids, offers)
    names: Mapping[str, str]
    if same is not None:
        names, suggester = same.names, same.suggester
    else:
        names = MappingProxyType(_names(wire_ids, canonical))
        # The suggestion index is made when first needed (see _suggest.py), from the last one.
        known = None if previous is None else previous.suggester
        suggester = Suggester(models.keys(), by_gateway_model.keys(), previous=known)

    chains: dict[str, tuple[str, ...]] = {}
    candidates: dict[str, tuple[Offer, ...]] = {}
    for model in inputs.fallbacks:
        if model not in models:
            continue
        chain = walk(model, models, inputs.fallbacks)
        chains[model] = chain
        candidates[model] = tuple(o for m in chain for o in offers_in(models[m]))

    conflicts = (
        *inputs.base.conflicts,
        *(c for live in inputs.live for c in live.conflicts),
        *inputs.user.conflicts,
    )
    return Index(
        by_model=MappingProxyType(models),
        by_gateway=MappingProxyType({g: MappingProxyType(part) for g, part in parts.items()}),
        by_gateway_model=MappingProxyType(by_gateway_model),
        names=names,
        fallbacks=MappingProxyType(dict(inputs.fallbacks)),
        chains=MappingProxyType(chains),
        candidates=MappingProxyType(candidates),
        conflicts=conflicts,
        suggester=suggester,
        offers=offers,
        ids=(wire_ids, canonical),
        version=version,
    )


def _names(wire_ids: tuple[str, ...], canonical: tuple[str, ...]) -> dict[str, str]:
    """Any wire id, and its case-folded form -> the canonical id (a canonical id itself is looked up
    in ``by_model`` first: :meth:`Index.canonical_of`).

    The first offer to spell an id wins, hence the pairs laid in reverse.
    """
    folded = tuple(map(str.casefold, wire_ids))
    if folded == wire_ids:  # every id in lower case already (the usual case): each spelling once
        names = dict(zip(reversed(wire_ids), reversed(canonical), strict=True))
    else:
        spellings = list(itertools.chain.from_iterable(zip(wire_ids, folded, strict=True)))
        targets = list(itertools.chain.from_iterable(zip(canonical, canonical, strict=True)))
        names = dict(zip(reversed(spellings), reversed(targets), strict=True))
    return names


def _patch(previous: Index, offers: tuple[Offer, ...]) -> tuple[dict[str, Group], dict[str, Group]] | None:
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
            group = groups[key]
            groups[key] = (
                after if group is before else tuple(after if o is before else o for o in offers_in(group))
            )
    return models, by_gateway_model
