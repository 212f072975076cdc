"""The provider graph's inputs, in layers, each bound and de-duplicated once, when it changes.

1. each gateway's offers: its shipped snapshot, or a custom gateway's own offers;
2. the live layer: the last good models listing of each gateway that has one,
   which updates prices (source ``live``) and context windows and adds the models
   the snapshot does not know;
3. the user layer: extra offers and price overrides (source ``user``), which win.

Binding ids to canonical ones is the per-offer Python work of a build, so it is
done once per layer, not once per rebuild; a refresh of a large listing costs in
proportion to that listing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

from ._canonical import Canonicalizer
from ._catalog import snapshot
from ._conflicts import Conflict, Key, Layer, dedupe
from ._errors import ConfigError
from ._gateway import Gateway
from ._index import EMPTY, Inputs, Prepared, apply_live, sorted_by_id
from ._offer import Offer

__all__ = ["Layers", "gateways_by_name", "resolve_fallbacks"]


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

    def bind(self, rows: Iterable[Offer], gateway: str, spelled: dict[str, str] | None = None) -> list[Offer]:
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
            bound.append(offer if same else offer.rebound(model, gateway))
        return bound

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

    def prepare_live(self, gateway: str, listing: Sequence[Offer]) -> Prepared:
        """One gateway's listing laid over its snapshot offers (pure: safe in a thread).

        An entry for an offer the gateway already sells only lends it prices and a
        context window, so only the entries for new ids are bound to canonical ids.
        """
        last = self._live.get(gateway)
        spelled = dict(last.spelled) if last is not None else {}

        def bind(rows: Sequence[Offer]) -> list[Offer]:
            return self.bind(rows, gateway, spelled)

        offers, conflicts = dedupe(listing, "live", gateway, bind)
        base = self._base.by_gateway.get(gateway, {})
        known = offers.keys() & base.keys()
        for key in known:
            offers[key] = apply_live(base[key], offers[key])
        new = [key for key in offers if key not in known]
        offers.update(zip(new, bind([offers[key] for key in new]), strict=True))
        if len(spelled) > 2 * len(offers):  # ids the gateway stopped listing: start afresh
            spelled = {o.model: s for o in listing if (s := spelled.get(o.model)) is not None}
        return Prepared({gateway: sorted_by_id(offers)}, tuple(conflicts), spelled)

    def set_live(self, gateway: str, layer: Prepared) -> None:
        """Make ``layer`` (from :meth:`prepare_live`) the gateway's live layer."""
        self._live[gateway] = layer

    def add_user_offers(self, offers: tuple[Offer, ...]) -> None:
        """Add offers, each naming a gateway of the graph, to the user layer."""
        self._user_offers += offers
        bound = [b for o in self._user_offers for b in self.bind((o,), o.gateway or "")]
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
