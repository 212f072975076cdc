"""The provider graph: every (gateway, offer) by canonical model, with fallback edges.

:class:`ProviderGraph` is the facade. Its inputs are kept in layers (``_layers.py``)
and merged into an immutable index (``_index.py``) that lookups read without
awaiting anything, each a few dictionary reads whatever the catalog's size; a
change builds a new index and swaps it in whole. Duplicate listings are resolved
by the conflict rule (``_conflicts.py``): one in data the user supplies (a custom
gateway's offers, extra offers, a live listing) is reported with a
:class:`CatalogConflictWarning`; one in a shipped snapshot is known, recorded in
that catalog's notes, and not warned. "Did you mean" is bounded work
(``_suggest.py``); live refresh reads listings through the transport (``_refresh.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Final

import aiohttp

from ._catalog import shipped_canonicalizer
from ._clock import Clock, MonotonicClock
from ._conflicts import Conflict, ConflictWarnings
from ._errors import ConfigError, UnknownModelError
from ._gateway import Gateway
from ._index import Index, ModelOffers, Prepared, assemble
from ._layers import Layers, gateways_by_name, resolve_fallbacks
from ._offer import Offer
from ._refresh import Refresher, RefreshReport
from ._transport import Transport

if TYPE_CHECKING:
    from ._listing import ListedRow  # the module itself loads with a live listing

__all__ = ["ProviderGraph"]

_OFF_LOOP: Final = 5_000  # offers and listed entries from which a refresh merges in a thread


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
        self._gateways: Mapping[str, Gateway] = MappingProxyType(gateways_by_name(gateways))
        if refresh_ttl <= 0:
            raise ConfigError(f"refresh_ttl must be positive seconds, not {refresh_ttl!r}")
        self._canon = (
            shipped_canonicalizer() if not aliases else shipped_canonicalizer().with_aliases(aliases)
        )
        clock = clock if clock is not None else MonotonicClock()
        self._refresher = Refresher(self._gateways.values(), clock, refresh_ttl)
        self._version = 0
        self._changes = 0  # counts changes to the inputs, so a build made off the loop can tell
        self._warned = ConflictWarnings()
        self._layers = Layers(self._gateways, self._canon)
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
                gateway, a bad TTL, or malformed fallbacks (see :meth:`validate_fallbacks`).
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

    def _build(self, previous: Index | None) -> Index:
        self._version += 1
        index = assemble(self._layers.inputs(), previous, self._version)
        self._warned.update(index.conflicts, stacklevel=4)
        index.suggester.warm()  # a large catalog's "did you mean" index: built in the background
        return index

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
        self._layers.add_user_offers(new)
        self._rebuild()

    def set_price(self, gateway: str, gateway_model: str, input_price: float, output_price: float) -> Offer:
        """Override one offer's price with the user's own numbers (source ``user``).

        The override outlives live refreshes. Returns the updated offer.

        Raises:
            ConfigError: on an unknown gateway or offer, or an invalid price.
        """
        self.gateway(gateway)
        Offer("price-check", input_price=input_price, output_price=output_price)  # validates the numbers
        if gateway_model not in self._index.by_gateway[gateway]:
            close = self._index.suggest_offer(gateway, gateway_model)
            hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
            raise ConfigError(f"gateway {gateway!r} has no offer {gateway_model!r}{hint}")
        self._layers.set_price((gateway, gateway_model), input_price, output_price)
        self._rebuild()
        return self._index.by_gateway[gateway][gateway_model]

    def validate_fallbacks(self, fallbacks: Mapping[str, Sequence[str]]) -> Mapping[str, tuple[str, ...]]:
        """Check fallback edges against this graph and resolve them; the graph is not changed.

        The one check of fallbacks: :meth:`set_fallbacks` uses it, and so does a
        router for its own ``fallbacks=``, whose result it passes to :meth:`tiers`.
        Ids may be canonical or any gateway's; each model's fallbacks are resolved
        in order, a repeat dropped.

        Returns:
            canonical model -> its fallbacks' canonical ids (read-only).

        Raises:
            ConfigError: when ``fallbacks`` is not a mapping; a model's fallbacks
                are a string, or not a list of model ids; a model lists itself; or
                two entries name the same model.
            UnknownModelError: when an id names no model in the graph, naming the
                closest known ids.
        """
        return MappingProxyType(resolve_fallbacks(fallbacks, self.resolve))

    def set_fallbacks(self, fallbacks: Mapping[str, Sequence[str]]) -> None:
        """Set fallback edges: model -> models to try, in order, when it cannot be served.

        Fallbacks are followed depth-first (a fallback's own fallbacks come right
        after it), each model at most once. Ids may be canonical or any gateway's.
        The models named here get these edges instead of any they had; nothing is
        changed when one is refused.

        Raises:
            UnknownModelError: when an id names no model in the graph.
            ConfigError: as :meth:`validate_fallbacks` says (a model listing itself,
                a string instead of a list, ...).
        """
        self._layers.set_fallbacks(self.validate_fallbacks(fallbacks))
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
        return iter(self._index.offers)

    def __len__(self) -> int:
        return len(self._index.offers)

    def resolve(self, model: str) -> str:
        """The canonical id for ``model``, which may be canonical or any gateway's id.

        Raises:
            UnknownModelError: naming the closest known ids.
        """
        index = self._index
        canonical = index.canonical_of(model)
        if canonical is not None:
            return canonical
        if not isinstance(model, str):
            raise ConfigError(f"a model id is a str, not {type(model).__name__}")
        normalised = self._canon(model)
        canonical = index.canonical_of(normalised)
        if canonical is not None:
            return canonical
        raise UnknownModelError(model, index.suggest(model, normalised))

    def offers(self, model: str) -> tuple[Offer, ...]:
        """Every offer of ``model`` (canonical or any gateway's id), in gateway order.

        Raises:
            UnknownModelError: naming the closest known ids.
        """
        return self._index.offers_of(self.resolve(model))

    def offer(self, gateway: str, gateway_model: str) -> Offer:
        """The offer ``gateway`` sells as ``gateway_model``.

        Raises:
            ConfigError: on an unknown gateway.
            UnknownModelError: when that gateway has no such offer.
        """
        self.gateway(gateway)
        try:
            return self._index.by_gateway[gateway][gateway_model]
        except KeyError:
            raise UnknownModelError(
                f"{gateway}:{gateway_model}", self._index.suggest_offer(gateway, gateway_model)
            ) from None

    def by_gateway_model(self, gateway_model: str) -> tuple[Offer, ...]:
        """Every offer whose gateway id is exactly ``gateway_model`` (empty when none)."""
        return self._index.wire_offers(gateway_model)

    def fallbacks(self, model: str) -> tuple[str, ...]:
        """The models tried after ``model``, in order (depth-first, each once)."""
        canonical = self.resolve(model)
        return self._index.chains.get(canonical, (canonical,))[1:]

    def direct_fallbacks(self, model: str) -> tuple[str, ...]:
        """The fallback models configured for ``model`` itself, in order (not followed further)."""
        return self._layers.fallbacks(self.resolve(model))

    def candidates(self, model: str) -> tuple[Offer, ...]:
        """The offers of ``model``, then those of its fallbacks in order.

        Raises:
            UnknownModelError: naming the closest known ids.
        """
        return self._index.candidates_of(self.resolve(model))

    def tiers(
        self, model: str, overrides: Mapping[str, Sequence[str]] | None = None
    ) -> tuple[ModelOffers, ...]:
        """``model``, then its fallback models, each with its offers: the order to try them in.

        Fallbacks are followed depth-first, each model once (cycles are cut); a
        model no gateway serves any more (one only a past live listing had) is
        left out. ``overrides`` replace the graph's own edges for the models they
        name; give them as :meth:`validate_fallbacks` returns them (canonical ids).
        The result is cached for this graph version and this ``overrides`` object,
        so a lookup costs a few dictionary reads: pass the same mapping each time,
        and never change it.

        Raises:
            UnknownModelError: when ``model`` names no model in the graph, naming
                the closest known ids.
        """
        return self._index.tiers(self.resolve(model), overrides)

    # -- live refresh ------------------------------------------------------------------------

    async def refresh(
        self,
        transport: Transport | aiohttp.ClientSession | None = None,
        *,
        force: bool = False,
        timeout: float = 10.0,
    ) -> RefreshReport:
        """Read the models listing of every gateway that has one, and merge it (source ``live``).

        A listing stays fresh for ``refresh_ttl`` seconds and is not fetched again
        before that unless ``force``. Lookups keep answering from the current index
        while this runs; the new index replaces it in one step at the end. When the
        graph and the listings hold 5,000 offers or more, the merge runs in worker
        threads, so a large one does not hold up the event loop. Only the entries
        that changed since a gateway's last listing make new offers; a listing that
        did not change leaves the index, and :attr:`version`, as they were. A gateway
        whose listing fails keeps its last good one; the failure is in the report and
        logged, never raised.

        Args:
            transport: what sends the listing requests: the router's
                :class:`Transport` (an ``AiohttpTransport``, or a ``MockTransport``
                in tests), or an ``aiohttp.ClientSession`` (used through an
                ``AiohttpTransport`` and left open, as before). When None, a
                short-lived ``AiohttpTransport`` is made and closed.
            force: fetch even listings that are still fresh.
            timeout: seconds allowed for each gateway's listing (all its paths together).

        Raises:
            ConfigError: when ``timeout`` is not a positive number of seconds.
        """
        fetched = await self._refresher.fetch(transport, force=force, timeout=timeout)
        if fetched.listings:
            await self._merge_listings(fetched.listings)
        return fetched.report

    async def _merge_listings(self, listings: Mapping[str, Sequence[ListedRow]]) -> None:
        """Prepare each listing's layer and swap in the new index; a large one off the event loop.

        Preparing binds and de-duplicates the listing and lays it over the snapshot,
        and assembling indexes everything (with the "did you mean" index for new ids):
        pure work on values that do not change, so worker threads do it while lookups
        keep answering from the current index. If the configuration changed meanwhile
        (an override, new offers), the index is built again here from the current inputs.
        """
        layers = self._layers

        def prepare() -> dict[str, Prepared]:
            return {name: layers.prepare_live(name, listing) for name, listing in listings.items()}

        large = len(self._index.offers) + sum(map(len, listings.values())) >= _OFF_LOOP
        prepared = await asyncio.to_thread(prepare) if large else prepare()
        moved = [layers.set_live(name, prepared[name]) for name in listings]
        for name in listings:
            self._refresher.keep(name)
        if not any(moved):
            return  # every listing as it was: the index stands
        if not large:
            self._rebuild()
            return
        self._changes += 1
        changes, inputs, previous = self._changes, layers.inputs(), self._index
        index = await asyncio.to_thread(assemble, inputs, previous, self._version + 1)
        await asyncio.to_thread(index.suggester.prepare)  # new ids: "did you mean" ready with the index
        if changes != self._changes:  # the inputs moved while the threads worked
            self._rebuild()
            return
        self._version = index.version
        self._index = index
        self._warned.update(index.conflicts, stacklevel=4)
