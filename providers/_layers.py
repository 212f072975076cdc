"""The provider graph's inputs, in layers, each bound and de-duplicated once, when it changes.

1. each gateway's offers: its shipped snapshot, or a custom gateway's own offers;
2. the live layer: the last good models listing of each gateway that has one,
   which updates prices (source ``live``) and context windows and adds the models
   the snapshot does not know;
3. the user layer: extra offers and price overrides (source ``user``), which win.

Binding ids to canonical ones is the per-offer Python work of a build, so it is
done once per layer, not once per rebuild, and for a whole list at once
(:meth:`Canonicalizer.many`). A refresh makes again only the offers whose listing
entry changed since the last listing: its Python-level work is in proportion to
what changed, the rest is a few passes in C.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

from ._canonical import Canonicalizer
from ._catalog import snapshot
from ._conflicts import Conflict, Key, Layer, dedupe, repeated
from ._errors import ConfigError
from ._gateway import Gateway
from ._index import EMPTY, Inputs, Prepared, sorted_by_id
from ._offer import Offer, PriceSource, trusted_offer

if TYPE_CHECKING:
    from ._listing import ListedRow  # the module itself loads with a live listing

__all__ = ["Layers", "gateways_by_name", "resolve_fallbacks"]

_model: Final = operator.attrgetter("model")
_first: Final = operator.itemgetter(0)
_row_of: Final = operator.attrgetter("gateway_model", "input_price", "output_price", "context_window")


def _lay(own: Offer, row: ListedRow) -> Offer:
    """A listing entry's terms (both prices or neither, a context window) laid over the offer ``own``."""
    _, inp, out, window = row
    if inp is None and window is None:
        return own
    priced = inp is not None
    return trusted_offer(  # every field from an offer, or from a row parse_rows checked
        own.model,
        own.gateway_model,
        inp if priced else own.input_price,
        out if priced else own.output_price,
        own.context_window if window is None else window,
        PriceSource.LIVE if priced else own.price_source,
        None if priced else own.price_reference,
        own.capabilities,
        own.gateway,
    )


def gateways_by_name(gateways: Iterable[Gateway]) -> dict[str, Gateway]:
    """The gateways by name, in the order given.

    Raises:
        ConfigError: on no gateways, a value that is not a :class:`Gateway`, or two with one name.
    """
    by_name: dict[str, Gateway] = {}
    for gw in gateways:
        if not isinstance(gw, Gateway):
            raise ConfigError(f"gateways must be Gateway values, not {gw!r}")
        if gw.name in by_name:
            raise ConfigError(f"two gateways are called {gw.name!r}; gateway names must be unique")
        by_name[gw.name] = gw
    if not by_name:
        raise ConfigError("a provider graph needs at least one gateway")
    return by_name


def resolve_fallbacks(
    fallbacks: Mapping[str, Sequence[str]], resolve: Callable[[str], str]
) -> dict[str, tuple[str, ...]]:
    """Fallback edges checked and resolved by ``resolve`` (see :meth:`ProviderGraph.validate_fallbacks`)."""
    if not isinstance(fallbacks, Mapping):
        raise ConfigError(f"fallbacks must map a model to a list of models, not {type(fallbacks).__name__}")
    resolved: dict[str, tuple[str, ...]] = {}
    named: dict[str, str] = {}
    for model, targets in fallbacks.items():
        if isinstance(targets, str):
            raise ConfigError(f"fallbacks[{model!r}] must be a list of models, not the string {targets!r}")
        if not isinstance(targets, Sequence) or not all(isinstance(t, str) for t in targets):
            raise ConfigError(f"fallbacks[{model!r}] must be a list of model ids, not {targets!r}")
        source = resolve(model)
        if source in named:
            raise ConfigError(
                f"fallbacks name the model {source!r} twice ({named[source]!r} and {model!r}); "
                "give it one entry"
            )
        named[source] = model
        chain = tuple(dict.fromkeys(resolve(t) for t in targets))
        if source in chain:
            raise ConfigError(f"model {model!r} lists itself as its own fallback")
        resolved[source] = chain
    return resolved


class Layers:
    """The prepared layers and the user's settings one graph is built from.

    Args:
        gateways: the graph's gateways by name, in configuration order.
        canon: turns any listed id into its canonical id.
    """

    def __init__(self, gateways: Mapping[str, Gateway], canon: Canonicalizer) -> None:
        self._gateways = gateways
        self._canon = canon
        self._live: dict[str, Prepared] = {}
        self._user_offers: tuple[Offer, ...] = ()
        self._user = EMPTY
        self._prices: dict[Key, tuple[float, float]] = {}
        self._fallbacks: dict[str, tuple[str, ...]] = {}
        self._base = self._prepare_base()

    def bind(self, rows: Sequence[Offer], gateway: str | None = None) -> list[Offer]:
        """``rows`` with canonical model ids, sold by ``gateway`` (None: each by its own).

        A row that is so already is kept as it is.
        """
        listed = list(map(_model, rows))
        canonical = self._canon.many(listed)
        return [
            offer
            if model == name and (gateway is None or offer.gateway == gateway)
            else offer.rebound(model, offer.gateway or "" if gateway is None else gateway)
            for offer, name, model in zip(rows, listed, canonical, strict=True)
        ]

    def _prepare_base(self) -> Prepared:
        """The gateways' own offers (shipped snapshots, custom offers): bound once, as they never change."""
        by_gateway: dict[str, dict[str, Offer]] = {}
        conflicts: list[Conflict] = []
        for name, gw in self._gateways.items():
            layer: Layer = "snapshot" if gw.catalog is not None else "gateway"
            rows = snapshot(gw.catalog) if gw.catalog is not None else gw.offers or ()
            offers, found = dedupe(self.bind(rows, name), layer, name)
            by_gateway[name] = sorted_by_id(offers)
            conflicts.extend(found)
        return Prepared(by_gateway, tuple(conflicts))

    def prepare_live(self, gateway: str, rows: Sequence[ListedRow]) -> Prepared:
        """One gateway's whole catalog with its listing laid over it (pure: safe in a thread).

        An entry for an offer the gateway already sells only lends it prices and a
        context window; an entry for a new id becomes an offer bound to its canonical
        id; an id listed twice is resolved by the conflict rule. Only the entries that
        differ from the last listing's are made again: the others keep the offers they
        made then (the same objects), so a listing that moved a few prices changes a few
        offers downstream (the index is patched), and one that did not change at all
        gives back the last layer itself.
        """
        from ._listing import listed_offer

        listed = dict(zip(map(_first, rows), rows, strict=True))  # wire id -> row
        last = self._live.get(gateway)
        if last is not None and len(listed) == len(rows) and listed == last.rows:
            return last
        resolved: dict[str, Offer] = {}
        conflicts: list[Conflict] = []
        twice: frozenset[str] = frozenset()
        if len(listed) < len(rows):
            twice = frozenset(repeated(list(map(_first, rows)), rows))
            doubles = [listed_offer(gateway, r) for r in rows if r[0] in twice]
            resolved, conflicts = dedupe(doubles, "live", gateway, lambda g: self.bind(g, gateway))
        own = self._base.by_gateway.get(gateway, {})
        whole = dict(own if last is None else last.by_gateway[gateway])  # in wire id order
        last_rows = {} if last is None else last.rows
        for wire in itertools.filterfalse(listed.__contains__, last_rows):  # listed then, not now
            if wire in own:
                whole[wire] = own[wire]
            else:
                del whole[wire]
        moved = itertools.compress(listed, map(operator.ne, map(last_rows.get, listed), listed.values()))
        wires = list(itertools.filterfalse(twice.__contains__, moved))
        known = list(map(own.__contains__, wires))
        laid = list(itertools.compress(wires, known))
        unbound = list(itertools.compress(wires, map(operator.not_, known)))
        added = not all(map(whole.__contains__, itertools.chain(unbound, twice)))
        rows_laid = map(listed.__getitem__, laid)
        whole.update(zip(laid, map(_lay, map(own.__getitem__, laid), rows_laid), strict=True))
        new = self.bind([listed_offer(gateway, listed[wire]) for wire in unbound], gateway)
        whole.update(zip(unbound, new, strict=True))
        for wire in twice:
            live = resolved[wire]
            whole[wire] = live if wire not in own else _lay(own[wire], _row_of(live))
        kept: Mapping[str, ListedRow | None] = (
            {w: None if w in twice else r for w, r in listed.items()} if twice else listed
        )
        ordered = sorted_by_id(whole) if added else whole
        return Prepared({gateway: ordered}, tuple(conflicts), kept, whole=True)

    def set_live(self, gateway: str, layer: Prepared) -> bool:
        """Make ``layer`` (from :meth:`prepare_live`) the gateway's live layer; False when it already was."""
        changed = self._live.get(gateway) is not layer
        self._live[gateway] = layer
        return changed

    def add_user_offers(self, offers: tuple[Offer, ...]) -> None:
        """Add offers, each naming a gateway of the graph, to the user layer."""
        self._user_offers += offers
        bound = self.bind(self._user_offers)
        rows: dict[str, list[Offer]] = {}
        first: dict[Key, int] = {}  # where each (gateway, gateway model) is first: conflicts go in that order
        for i, offer in enumerate(bound):
            rows.setdefault(offer.gateway or "", []).append(offer)
            first.setdefault((offer.gateway or "", offer.gateway_model), i)
        by_gateway: dict[str, dict[str, Offer]] = {}
        conflicts: list[Conflict] = []
        for gateway, mine in rows.items():
            keyed, found = dedupe(mine, "user", gateway)
            by_gateway[gateway] = sorted_by_id(keyed)
            conflicts += found
        conflicts.sort(key=lambda c: first[(c.gateway, c.gateway_model)])
        self._user = Prepared(by_gateway, tuple(conflicts))

    def set_price(self, key: Key, input_price: float, output_price: float) -> None:
        """The user's price for the offer ``key``, over every layer."""
        self._prices[key] = (float(input_price), float(output_price))

    def set_fallbacks(self, fallbacks: Mapping[str, tuple[str, ...]]) -> None:
        """Set resolved edges (canonical model -> canonical models), replacing those of the same models."""
        self._fallbacks.update(fallbacks)

    def fallbacks(self, model: str) -> tuple[str, ...]:
        """The fallback edges set for canonical ``model`` (empty when none)."""
        return self._fallbacks.get(model, ())

    def inputs(self) -> Inputs:
        """Everything as it is now, for one build."""
        return Inputs(
            base=self._base,
            live=tuple(self._live.values()),
            user=self._user,
            prices=dict(self._prices),
            fallbacks=dict(self._fallbacks),
            order=tuple(self._gateways),
        )
