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

A listing is read into rows (:data:`ListedRow`), entry by entry (:func:`_read_rows`),
not into offers: the graph makes offers only of the entries that changed.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any, Final

import aiohttp
from yarl import URL

from ._errors import CatalogError, UpstreamError, UpstreamTimeout
from ._exchange import WireRequest
from ._gateway import Gateway
from ._offer import NO_CAPABILITIES, Offer, PriceSource, trusted_offer
from ._transport import AiohttpTransport, Timeouts, Transport

__all__ = [
    "ListedRow",
    "as_transport",
    "fetch_listing",
    "listed_offer",
    "listing_request",
    "parse_listing",
    "parse_rows",
]

_MAX_LISTING_BYTES: Final = 32 * 1024 * 1024
_PRICES_KEPT: Final = 4_096  # distinct price strings remembered; a listing repeats a few hundred

ListedRow = tuple[str, float | None, float | None, int | None]
"""One usable listing entry: (id, USD per 1M prompt tokens, per 1M completion tokens, context
window), both prices or neither. A plain tuple of atomic values rather than a value class on
purpose: the garbage collector stops tracking such a tuple, where each of a 100,000-entry
listing's objects would be traversed again by every full collection while the listing lives."""

_per_million_of: dict[str, float | None] = {}  # price string -> per million (the Decimal is slow)


def _per_million(value: object) -> float | None:
    if isinstance(value, str):
        try:
            return _per_million_of[value]
        except KeyError:
            pass
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    import decimal  # ~130 KiB, loaded by the first live listing (a plain import: ~0.1 us when loaded)

    try:
        per_token = decimal.Decimal(str(value))
    except decimal.InvalidOperation:
        price = None
    else:
        price = float(per_token * 1_000_000) if per_token.is_finite() and per_token >= 0 else None
    if isinstance(value, str):
        if len(_per_million_of) >= _PRICES_KEPT:
            _per_million_of.clear()
        _per_million_of[value] = price
    return price


def _row(entry: object) -> ListedRow | None:
    """One listing entry as a row, or None when it has no usable id."""
    model_id = entry.get("id") if isinstance(entry, dict) else None
    if not isinstance(model_id, str) or not model_id.strip():
        return None
    assert isinstance(entry, dict)
    pricing = entry.get("pricing")
    inp = out = None
    if isinstance(pricing, dict):
        inp, out = _per_million(pricing.get("prompt")), _per_million(pricing.get("completion"))
        if inp is None or out is None:
            inp = out = None
    context = entry.get("context_length")
    if isinstance(context, bool) or not isinstance(context, int) or context <= 0:
        context = None
    return (model_id, inp, out, context)


def listed_offer(gateway: str, row: ListedRow) -> Offer:
    """The offer of ``gateway`` a listing row stands for; its ``model`` is the listed id."""
    model_id, inp, out, context = row
    return trusted_offer(
        model_id,
        model_id,
        inp,
        out,
        context,
        PriceSource.UNKNOWN if inp is None else PriceSource.LIVE,
        None,
        NO_CAPABILITIES,
        gateway,
    )


def parse_rows(gateway: str, payload: Any) -> tuple[list[ListedRow], int]:
    """Turn a models listing into rows (see :data:`ListedRow`); returns (rows, entries skipped).

    Raises:
        CatalogError: when the payload has no ``data`` list.
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise CatalogError(f"models listing of {gateway} has no 'data' list")
    rows = list(map(_row, payload["data"]))
    usable = [r for r in rows if r is not None]
    return usable, len(rows) - len(usable)


def parse_listing(gateway: str, payload: Any) -> tuple[tuple[Offer, ...], int]:
    """Turn a models listing into offers of ``gateway``; returns (offers, entries skipped).

    Each offer's ``model`` is the listed id; the provider graph canonicalises it.

    Raises:
        CatalogError: when the payload has no ``data`` list.
    """
    rows, skipped = parse_rows(gateway, payload)
    return tuple(listed_offer(gateway, r) for r in rows), skipped


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
) -> tuple[list[ListedRow], int]:
    """GET the gateway's models listing through ``transport`` and parse it into rows.

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


def _decode(gateway: str, body: bytes) -> tuple[list[ListedRow], int]:
    """A listing body's rows and the count of unusable entries.

    The body is read entry by entry (:func:`_read_rows`); one it cannot read so (not a
    listing, or not JSON) is read whole by ``json.loads``, which says what is wrong.

    Raises:
        CatalogError: when the body is not JSON or not a listing.
    """
    try:
        return _read_rows(body.decode(json.detect_encoding(body), "surrogatepass"))
    except (ValueError, IndexError, UnicodeDecodeError):
        pass
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = _NOT_JSON
    if payload is _NOT_JSON:
        raise CatalogError(f"models listing of {gateway} is not JSON")
    return parse_rows(gateway, payload)


class _Unread(ValueError):
    """The text is not a listing as :func:`_read_rows` reads one (``json.loads`` reads it then)."""


_BLANK: Final = re.compile(r"[ \t\n\r]*")  # JSON's whitespace


def _blank(text: str, at: int) -> int:
    """The index of the first character at or after ``at`` that is not JSON whitespace."""
    found = _BLANK.match(text, at)
    assert found is not None  # the pattern matches the empty string too
    return found.end()


_value: Final = json.JSONDecoder().raw_decode


def _read_rows(text: str) -> tuple[list[ListedRow], int]:
    """The rows of a listing's JSON text, each entry decoded and made a row before the next.

    ``json.loads`` of a large listing holds the interpreter lock until the whole document
    is built (100 ms and more for 100,000 entries, however many threads wait), and then
    every entry's dicts live until the last is parsed, so the garbage collector moves
    them all into its oldest generation. Entry by entry, another thread gets its turn
    between entries, and an entry's dicts are freed as soon as its row is made.

    Raises:
        ValueError: when the text is not an object holding a ``data`` list, as JSON
            (``json.loads`` then reads it, to say what is wrong); IndexError when it
            ends too soon.
    """
    at = _blank(text, 0)
    if text[at] != "{":
        raise _Unread("not an object")
    found: tuple[list[ListedRow], int] | None = None
    at = _blank(text, at + 1)
    while text[at] != "}":
        if text[at] != '"':
            raise _Unread("expected a key")
        key, at = _value(text, at)
        at = _blank(text, at)
        if text[at] != ":":
            raise _Unread("expected ':'")
        at = _blank(text, at + 1)
        if key == "data" and text[at] == "[":
            found, at = _read_data(text, at + 1)
        else:
            _, at = _value(text, at)
            found = None if key == "data" else found  # the last "data" counts, as in json.loads
        at = _blank(text, at)
        if text[at] == ",":
            at = _blank(text, at + 1)
            if text[at] == "}":
                raise _Unread("trailing comma")
        elif text[at] != "}":
            raise _Unread("expected ',' or '}'")
    if _blank(text, at + 1) != len(text) or found is None:
        raise _Unread("more after the object, or no 'data' list")
    return found


def _read_data(text: str, at: int) -> tuple[tuple[list[ListedRow], int], int]:
    """The rows of the ``data`` array whose first entry is at ``at``, and the index past its ']'."""
    rows: list[ListedRow] = []
    skipped = 0
    at = _blank(text, at)
    if text[at] == "]":
        return (rows, skipped), at + 1
    while True:
        entry, at = _value(text, at)
        row = _row(entry)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
        at = _blank(text, at)
        if text[at] == "]":
            return (rows, skipped), at + 1
        if text[at] != ",":
            raise _Unread("expected ',' or ']'")
        at = _blank(text, at + 1)
