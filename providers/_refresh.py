"""Live refresh: which gateways' models listings are due, and reading them through the transport.

The :class:`Refresher` knows which gateways have a listing and when each was
last read (a TTL cache on the graph's clock). :meth:`Refresher.fetch` reads the
due ones concurrently through one :class:`Transport` and reports what happened;
it never raises for a listing that fails. The graph merges what was read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final

import aiohttp
import attrs

from ._clock import Clock
from ._errors import ConfigError
from ._gateway import Gateway
from ._transport import AiohttpTransport, Transport

if TYPE_CHECKING:
    import cachetools

    from ._listing import ListedRow  # the module itself loads with the first fetch()

__all__ = ["Fetched", "RefreshReport", "Refresher"]

logger: Final = logging.getLogger("switchyard.catalog")


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
class Fetched:
    """One round of reading: the report, and each listing read (gateway -> its rows)."""

    report: RefreshReport
    listings: Mapping[str, Sequence[ListedRow]] = attrs.field(factory=dict)


class Refresher:
    """Reads the models listings of the gateways that have one, each at most once per ``ttl``.

    Args:
        gateways: the graph's gateways; those without a listing are never asked.
        clock: the clock the TTL runs on.
        ttl: seconds a listing read stays fresh.
    """

    def __init__(self, gateways: Iterable[Gateway], clock: Clock, ttl: float) -> None:
        self._gateways = tuple(gw for gw in gateways if gw.models_urls)
        self._clock = clock
        self._ttl = ttl
        # Made at the first keep(): a graph that is never refreshed never loads cachetools.
        self._fresh: cachetools.TTLCache[str, bool] | None = None

    def keep(self, gateway: str) -> None:
        """Remember that ``gateway``'s listing was read and merged: fresh for the TTL.

        Only that it was: the listing's offers live on in the graph's layers, not here too.
        """
        if self._fresh is None:
            import cachetools

            self._fresh = cachetools.TTLCache(
                maxsize=max(len(self._gateways), 1), ttl=self._ttl, timer=self._clock.now
            )
        self._fresh[gateway] = True

    async def fetch(
        self, transport: Transport | aiohttp.ClientSession | None, *, force: bool, timeout: float
    ) -> Fetched:
        """Read every due listing through ``transport`` (a short-lived aiohttp one when None).

        A listing that fails is in the report (and logged), never raised.

        Raises:
            ConfigError: when ``timeout`` is not a positive number of seconds.
        """
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ConfigError(f"timeout must be a positive number of seconds, not {timeout!r}")
        from ._listing import as_transport, fetch_listing

        due: list[Gateway] = []
        cached: list[str] = []
        for gw in self._gateways:
            if not force and self._fresh is not None and gw.name in self._fresh:
                cached.append(gw.name)
            else:
                due.append(gw)
        if not due:
            return Fetched(RefreshReport(cached=tuple(cached)))

        own: AiohttpTransport | None = None
        sender: Transport
        if transport is None:
            own = sender = AiohttpTransport()
        else:
            sender = as_transport(transport)
        try:
            results = await asyncio.gather(
                *(fetch_listing(sender, gw, timeout) for gw in due), return_exceptions=True
            )
        finally:
            if own is not None:
                await own.aclose()

        fetched: list[str] = []
        failed: dict[str, str] = {}
        skipped: dict[str, int] = {}
        listings: dict[str, Sequence[ListedRow]] = {}
        for gw, result in zip(due, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                failed[gw.name] = str(result)
                logger.warning("models listing of %s not refreshed: %s", gw.name, result)
                continue
            listing, bad = result
            listings[gw.name] = listing
            fetched.append(gw.name)
            if bad:
                skipped[gw.name] = bad
        report = RefreshReport(
            fetched=tuple(fetched), cached=tuple(cached), failed=failed, skipped_entries=skipped
        )
        return Fetched(report, listings)
