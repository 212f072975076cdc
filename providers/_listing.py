"""Reading a gateway's live models listing (OpenAI style, with OpenRouter-style extras).

The listing is read through the :class:`Transport` the chat requests use (so a
``MockTransport`` can serve it), as a ``GET`` built by :func:`listing_request`
with the gateway's own auth header; the transport maps network failures to
:class:`UpstreamError` once, and they become a :class:`CatalogError` here.

The listing is ``{"data": [{"id": ..., "context_length": ..., "pricing":
{"prompt": ..., "completion": ...}}, ...]}``; prices there are USD per token
(strings or numbers) and become USD per million tokens here. An entry without a
usable id is skipped and counted; an entry whose price is missing, negative
(OpenRouter uses -1 for "varies") or not a number keeps an unknown price.
"""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import aiohttp
from yarl import URL

from ._errors import CatalogError, UpstreamError, UpstreamTimeout
from ._exchange import WireRequest
from ._gateway import Gateway
from ._offer import Offer, PriceSource
from ._transport import AiohttpTransport, Timeouts, Transport

__all__ = ["as_transport", "fetch_listing", "listing_request", "parse_listing"]

_PER_MILLION: Final = Decimal(1_000_000)
_MAX_LISTING_BYTES: Final = 32 * 1024 * 1024


def _per_million(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    try:
        per_token = Decimal(str(value))
    except InvalidOperation:
        return None
    if not per_token.is_finite() or per_token < 0:
        return None
    return float(per_token * _PER_MILLION)


def parse_listing(gateway: str, payload: Any) -> tuple[tuple[Offer, ...], int]:
    """Turn a models listing into offers of ``gateway``; returns (offers, entries skipped).

    Each offer's ``model`` is the listed id; the provider graph canonicalises it.

    Raises:
        CatalogError: when the payload has no ``data`` list.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CatalogError(f"models listing of {gateway} has no 'data' list")
    offers: list[Offer] = []
    skipped = 0
    for entry in payload["data"]:
        model_id = entry.get("id") if isinstance(entry, dict) else None
        if not isinstance(model_id, str) or not model_id.strip():
            skipped += 1
            continue
        pricing = entry.get("pricing")
        inp = out = None
        if isinstance(pricing, dict):
            inp, out = _per_million(pricing.get("prompt")), _per_million(pricing.get("completion"))
            if inp is None or out is None:
                inp = out = None
        context = entry.get("context_length")
        if isinstance(context, bool) or not isinstance(context, int) or context <= 0:
            context = None
        offers.append(
            Offer(
                model_id,
                model_id,
                inp,
                out,
                context,
                price_source=PriceSource.UNKNOWN if inp is None else PriceSource.LIVE,
                gateway=gateway,
            )
        )
    return tuple(offers), skipped


_NOT_JSON: Final = object()
_INLINE_BYTES: Final = 256 * 1024  # smaller listings are decoded on the loop: a thread costs more


def as_transport(source: Transport | aiohttp.ClientSession) -> Transport:
    """``source`` itself, or a transport over a caller's ``aiohttp.ClientSession`` (never closed by it)."""
    if isinstance(source, aiohttp.ClientSession):
        return AiohttpTransport(source)
    return source


def listing_request(gateway: Gateway, url: URL) -> WireRequest:
    """The ``GET`` of one of the gateway's listing URLs, with its key.

    Raises:
        CatalogError: when ``url`` is not on the gateway's own origin (its key is
            sent nowhere else).
    """
    if url.origin() != gateway.origin:
        raise CatalogError(
            f"models listing of {gateway.name} at {url.origin()} is not on the gateway's own origin; "
            "its key is sent nowhere else"
        )
    return WireRequest(
        gateway=gateway.name,
        method="GET",
        url=url,
        key_origin=gateway.origin,
        headers={"Accept": "application/json", **gateway.auth_headers()},
        body=b"",
    )


async def _get(transport: Transport, gateway: Gateway, url: URL, timeout: float) -> bytes | None:
    """GET one listing URL: its body, or None on a 404 (the listing is not at this path)."""
    wire = listing_request(gateway, url)
    try:
        response = await transport.request(wire, Timeouts(connect=timeout, total=timeout))
        try:
            body = await response.read()
        finally:
            await response.aclose()
    except UpstreamTimeout as exc:
        raise CatalogError(f"models listing of {gateway.name} timed out after {timeout:g}s") from exc
    except UpstreamError as exc:  # key-free by contract: safe to chain
        reason = str(exc).removeprefix(f"{gateway.name}: ")
        raise CatalogError(f"models listing of {gateway.name} could not be read: {reason}") from exc
    if response.status == 404:
        return None
    if response.status != 200:
        raise CatalogError(f"models listing of {gateway.name} answered HTTP {response.status}")
    if len(body) > _MAX_LISTING_BYTES:
        raise CatalogError(f"models listing of {gateway.name} is larger than {_MAX_LISTING_BYTES} bytes")
    return body


async def fetch_listing(
    transport: Transport | aiohttp.ClientSession, gateway: Gateway, timeout: float
) -> tuple[tuple[Offer, ...], int]:
    """GET the gateway's models listing through ``transport`` and parse it.

    The listing's URLs (:attr:`Gateway.models_urls`) are tried in order, the next
    only after a 404; ``timeout`` bounds all of them together. The key goes only
    to the gateway's own origin: every URL is checked, and the transport follows
    no redirect. A caller's ``aiohttp.ClientSession`` is taken too (used through an
    :class:`AiohttpTransport`, left open).

    Raises:
        CatalogError: on a network failure (chained to the transport's
            :class:`UpstreamError`), a status other than 200 (or 404 where another
            path is left), or a body that is not a listing. The message never
            contains the key.
    """
    urls = gateway.models_urls
    if not urls:
        raise CatalogError(f"gateway {gateway.name} has no models listing")
    sender = as_transport(transport)
    body: bytes | None = None
    try:
        async with asyncio.timeout(timeout):
            for url in urls:
                body = await _get(sender, gateway, url, timeout)
                if body is not None:
                    break
    except TimeoutError as exc:
        raise CatalogError(f"models listing of {gateway.name} timed out after {timeout:g}s") from exc
    if body is None:
        tried = ", ".join(url.path for url in urls)
        raise CatalogError(
            f"models listing of {gateway.name} answered HTTP 404 at {tried}; "
            "give the gateway the models_path where it lists its models"
        )
    if len(body) < _INLINE_BYTES:
        return _decode(gateway.name, body)
    # A large listing (OneRouter lists hundreds of models; an aggregator may list far more)
    # is decoded and parsed in a worker thread, so requests keep moving meanwhile.
    return await asyncio.to_thread(_decode, gateway.name, body)


def _decode(gateway: str, body: bytes) -> tuple[tuple[Offer, ...], int]:
    """A listing body's offers and the count of unusable entries.

    Raises:
        CatalogError: when the body is not JSON or not a listing.
    """
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = _NOT_JSON
    if payload is _NOT_JSON:
        raise CatalogError(f"models listing of {gateway} is not JSON")
    return parse_listing(gateway, payload)
