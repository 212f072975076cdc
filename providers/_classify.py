"""One table from a gateway's answer (status, headers, body) to a typed error.

:func:`classify` is the only place an HTTP outcome becomes an error class. The
status picks the class from :data:`STATUS_CLASSES`; the body may refine it:

- a context-length message on 400/413/422 -> :class:`ContextLengthExceeded`;
- a content-filter code or message -> :class:`ContentFiltered`;
- a balance or quota message on any status (OpenAI-style gateways send
  ``insufficient_quota`` with 429) -> :class:`InsufficientBalance`;
- "unknown model" on 400/404/422 (``model_not_found``, OneLLM's "Unknown model
  'x'.") -> :class:`ModelUnavailable`: the gateway's catalog moved, not the caller's
  fault;
- a 200 whose body is an error object (OneRouter may send errors inside a 200)
  is classified by the object's numeric ``code`` when it has one.

A status not in the table: other 5xx -> :class:`ServerError`, other 4xx ->
:class:`NonRetryableError` (another candidate may still serve), 1xx/3xx ->
:class:`EndpointError` (redirects are never followed: a key goes only to its own
origin).
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from ._errors import (
    AuthenticationError,
    BadRequest,
    ContentFiltered,
    ContextLengthExceeded,
    EndpointError,
    InsufficientBalance,
    MalformedReply,
    ModelUnavailable,
    NonRetryableError,
    Overloaded,
    PermissionDenied,
    RateLimited,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from ._secret import Secret

__all__ = [
    "STATUS_CLASSES",
    "classify",
    "error_from_object",
    "malformed",
    "parse_retry_after",
    "scrub",
    "upstream_message",
]

STATUS_CLASSES: Final[Mapping[int, type[UpstreamError]]] = {
    400: BadRequest,
    401: AuthenticationError,
    402: InsufficientBalance,
    403: PermissionDenied,
    404: EndpointError,
    405: EndpointError,
    408: UpstreamTimeout,
    413: BadRequest,
    422: BadRequest,
    429: RateLimited,
    500: ServerError,
    502: ServerError,
    503: Overloaded,
    504: ServerError,
}
"""Every status the four gateways document, and a few more, to the error class it means."""

_CONTEXT: Final = re.compile(
    r"context.?length|context window|maximum context|too many tokens|prompt is too long|"
    r"reduce the length|input is too long|max_tokens.*(exceed|too large)",
    re.I,
)
_FILTER: Final = re.compile(r"content.?(filter|policy|management)|moderation|flagged|safety system", re.I)
_BALANCE: Final = re.compile(
    r"insufficient.?(balance|quota|credits?|funds)|minimum balance|top.?up|out of credits|"
    r"not enough (balance|credits)",
    re.I,
)
# A gateway saying it does not serve the model: OpenAI's ``model_not_found`` code, "The model
# `x` does not exist", OneLLM's "Unknown model 'x'.".
_UNKNOWN_MODEL: Final = re.compile(
    r"model_not_found|\b(unknown|invalid|unsupported|no such) model\b|"
    r"\bmodel\b[^.]{0,120}?\b(does not exist|not found|is not available)",
    re.I,
)
_SPACE: Final = re.compile(r"\s+")
_BEARER: Final = re.compile(r"(Bearer\s+)\S+", re.I)
_TITLE: Final = re.compile(rb"<title[^>]*>(.*?)</title>", re.I | re.S)
_MAX_MESSAGE: Final = 300


def scrub(text: str, key: Secret | None) -> str:
    """Remove the key (and any bearer token) from text that came from a gateway."""
    if key is not None:
        text = text.replace(key.reveal(), "[redacted]")
    return _BEARER.sub(r"\1[redacted]", text)


def _shorten(text: str) -> str:
    text = _SPACE.sub(" ", text).strip()
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 1] + "…"


def _message_of(obj: Any) -> str | None:
    """The human message in an error body, whatever shape the gateway chose."""
    if isinstance(obj, str):
        return obj or None
    if not isinstance(obj, dict):
        return None
    for field in ("error", "message", "detail", "error_description", "msg"):
        value = obj.get(field)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):
            found = _message_of(value)
            if found:
                return found
        if isinstance(value, list) and value:
            found = _message_of(value[0])
            if found:
                return found
    return None


def _codes_of(obj: Any) -> str:
    """The machine codes in an error body (``code``, ``type``), for matching."""
    if not isinstance(obj, dict):
        return ""
    inner = obj.get("error") if isinstance(obj.get("error"), dict) else obj
    assert isinstance(inner, dict)
    return " ".join(str(inner.get(k, "")) for k in ("code", "type"))


def upstream_message(body: bytes, key: Secret | None) -> str | None:
    """The gateway's own words from an error body: JSON message, HTML title, or text."""
    if not body.strip():
        return None
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        payload = None
    if payload is not None:
        message = _message_of(payload)
        return None if message is None else _shorten(scrub(message, key))
    match = _TITLE.search(body)
    if match:
        title = match.group(1).decode("utf-8", "replace")
        return _shorten(scrub(f"HTML error page: {title}", key))
    if body.lstrip()[:1] == b"<":
        return "HTML error page"
    return _shorten(scrub(body.decode("utf-8", "replace"), key))


def _wait(seconds: float) -> float | None:
    """A usable wait: positive and finite; anything else (0, negative, NaN, infinity) is no value."""
    return seconds if 0.0 < seconds < math.inf else None


def parse_retry_after(headers: Mapping[str, str], wall_now: float) -> float | None:
    """Seconds to wait, from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP-date.

    An HTTP-date is measured against the response's own ``Date`` header when it has
    one (so a skewed local clock does not matter), else against ``wall_now``.
    Zero, a negative number, NaN, infinity and a date already past count as no
    value (None): "retry now" is what a missing header means too. The router
    clamps what is left to its ``max_retry_after``.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            waited = _wait(float(ms) / 1000.0)
        except ValueError:
            waited = None
        if waited is not None:
            return waited
    value = headers.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return _wait(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    reference = wall_now
    date = headers.get("date")
    if date is not None:
        with contextlib.suppress(TypeError, ValueError, IndexError, OverflowError):
            reference = email.utils.parsedate_to_datetime(date).timestamp()
    return _wait(when - reference)


def _refine(cls: type[UpstreamError], status: int, message: str, codes: str) -> type[UpstreamError]:
    text = f"{codes} {message}"
    if _BALANCE.search(text):
        return InsufficientBalance
    if status in (400, 404, 422) and _UNKNOWN_MODEL.search(text):
        return ModelUnavailable
    if _FILTER.search(text) and status in (400, 403, 422, 200):
        return ContentFiltered
    if _CONTEXT.search(text) and status in (400, 413, 422, 200):
        return ContextLengthExceeded
    return cls


def _class_for(status: int) -> type[UpstreamError]:
    cls = STATUS_CLASSES.get(status)
    if cls is not None:
        return cls
    if status >= 500:
        return ServerError
    if status >= 400:
        return NonRetryableError
    return EndpointError


def classify(
    gateway: str,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    key: Secret | None,
    wall_now: float,
) -> UpstreamError:
    """The typed error for a gateway's non-success answer.

    ``headers`` must be case-insensitive (aiohttp's are) or lower-cased.
    """
    try:
        payload: Any = json.loads(body) if body.strip() else None
    except (ValueError, UnicodeDecodeError):
        payload = None
    message = upstream_message(body, key)
    retry_after = parse_retry_after(headers, wall_now)
    if 300 <= status < 400:
        location = headers.get("location", "")
        return EndpointError(
            gateway,
            status=status,
            upstream_message=message,
            detail=f"redirected to {scrub(location, key)!r}; not followed, a key goes only to its own origin",
        )
    cls = _refine(_class_for(status), status, message or "", _codes_of(payload))
    return cls(gateway, status=status, upstream_message=message, retry_after=retry_after)


def error_from_object(
    gateway: str, error: Any, *, status: int, headers: Mapping[str, str], key: Secret | None, wall_now: float
) -> UpstreamError:
    """The typed error for an error object sent with a 200 (a body or an in-stream event).

    A numeric ``code`` in the object is the status it stands for; without one the
    error counts as a server error (retryable), since the gateway said 200.
    """
    inner = error.get("error", error) if isinstance(error, dict) else error
    code = inner.get("code") if isinstance(inner, dict) else None
    effective = code if isinstance(code, int) and 400 <= code < 600 else 500
    message = _message_of(error)
    text = None if message is None else _shorten(scrub(message, key))
    cls = _refine(_class_for(effective), effective, text or "", _codes_of(error))
    retry_after = parse_retry_after(headers, wall_now)
    return cls(
        gateway,
        status=status,
        upstream_message=text,
        retry_after=retry_after,
        detail=f"error inside a {status} reply ({cls.summary})" if status == 200 else None,
    )


def malformed(gateway: str, status: int, why: str) -> MalformedReply:
    """A :class:`MalformedReply` for a 200 that is not a reply."""
    return MalformedReply(gateway, status=status, detail=f"malformed reply: {why}")
