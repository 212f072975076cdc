"""One table from status, headers and body to a typed error; Retry-After in every form."""

from __future__ import annotations

import json

import pytest
from multidict import CIMultiDict
from switchyard.providers import (
    AuthenticationError,
    BadRequest,
    ContentFiltered,
    ContextLengthExceeded,
    EndpointError,
    InsufficientBalance,
    NonRetryableError,
    Overloaded,
    PermissionDenied,
    RateLimited,
    RetryableError,
    Secret,
    ServerError,
    UpstreamError,
    UpstreamTimeout,
)
from switchyard.providers._classify import classify, error_from_object, parse_retry_after

NOW = 1_700_000_000.0  # a fixed wall-clock reading
KEY = Secret("sk-live-abcdefghijklmnop")


def _classify(status: int, body: bytes | dict[str, object] = b"", **headers: str) -> UpstreamError:
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    return classify("oneai", status, CIMultiDict(headers), raw, key=KEY, wall_now=NOW)


@pytest.mark.parametrize(
    ("status", "cls", "retryable", "failover"),
    [
        (400, BadRequest, False, False),
        (401, AuthenticationError, False, True),
        (402, InsufficientBalance, False, True),
        (403, PermissionDenied, False, True),
        (404, EndpointError, False, True),
        (405, EndpointError, False, True),
        (408, UpstreamTimeout, True, True),
        (409, NonRetryableError, False, True),
        (422, BadRequest, False, False),
        (429, RateLimited, True, True),
        (500, ServerError, True, True),
        (502, ServerError, True, True),
        (503, Overloaded, True, True),
        (504, ServerError, True, True),
        (599, ServerError, True, True),
        (302, EndpointError, False, True),
    ],
)
def test_status_table(status: int, cls: type[UpstreamError], retryable: bool, failover: bool) -> None:
    """Each status maps to its class, which says whether to retry and whether to fail over."""
    error = _classify(status, {"error": {"message": "nope"}})
    assert type(error) is cls
    assert (error.retryable, error.failover, error.status, error.gateway) == (
        retryable,
        failover,
        status,
        "oneai",
    )
    assert isinstance(error, RetryableError) == retryable


@pytest.mark.parametrize(
    ("status", "body", "cls"),
    [
        (
            400,
            {"error": {"message": "This model's maximum context length is 128000 tokens", "code": None}},
            ContextLengthExceeded,
        ),
        (400, {"error": {"message": "bad", "code": "context_length_exceeded"}}, ContextLengthExceeded),
        (422, {"detail": [{"msg": "prompt is too long"}]}, ContextLengthExceeded),
        (400, {"error": {"message": "flagged", "code": "content_filter"}}, ContentFiltered),
        (403, {"error": {"message": "Input was flagged by moderation"}}, ContentFiltered),
        (
            429,
            {"error": {"message": "You exceeded your current quota", "type": "insufficient_quota"}},
            InsufficientBalance,
        ),
        (403, {"error": "A minimum balance of $0.10 is required"}, InsufficientBalance),
        (400, {"error": {"message": "Insufficient balance — top up your account"}}, InsufficientBalance),
        (429, {"error": {"message": "Rate limit exceeded — slow down or upgrade"}}, RateLimited),
    ],
)
def test_body_refines_the_class(status: int, body: dict[str, object], cls: type[UpstreamError]) -> None:
    """Context-length, content-filter and balance messages pick the precise class."""
    assert type(_classify(status, body)) is cls


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"error": {"message": "Invalid API key", "type": "auth"}}, "Invalid API key"),
        ({"error": "API key missing"}, "API key missing"),
        ({"message": "Not found"}, "Not found"),
        ({"detail": "Method Not Allowed"}, "Method Not Allowed"),
        ({"detail": [{"loc": ["body"], "msg": "field required"}]}, "field required"),
        (
            b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
            "HTML error page: 502 Bad Gateway",
        ),
        (b"<!doctype html><p>down</p>", "HTML error page"),
        (b"upstream connect error", "upstream connect error"),
        (b"", None),
    ],
)
def test_the_gateways_own_message_is_kept(body: bytes | dict[str, object], message: str | None) -> None:
    """The gateway's words come out of any body shape, and appear in the error text."""
    error = _classify(500, body)
    assert error.upstream_message == message
    if message:
        assert message in str(error)


def test_keys_are_scrubbed_from_gateway_messages() -> None:
    """A gateway echoing the key (or any bearer token) does not leak it into the error."""
    error = _classify(
        401, {"error": {"message": f"Incorrect API key provided: {KEY.reveal()}; Bearer abc.def"}}
    )
    assert KEY.reveal() not in str(error) and "abc.def" not in str(error)
    assert "[redacted]" in str(error)


def test_long_messages_are_shortened() -> None:
    """A huge error body does not become a huge exception message."""
    error = _classify(500, {"error": {"message": "x" * 10_000}})
    assert error.upstream_message is not None and len(error.upstream_message) <= 300


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "Tue, 14 Nov 2023 22:13:40 GMT"}, 20.0),  # NOW is 22:13:20 GMT
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT", "Date": "Wed, 21 Oct 2015 07:27:30 GMT"}, 30.0),
        # A date already past, zero, negative, NaN and infinity are "no value" (the hardening issue).
        ({"Retry-After": "Tue, 14 Nov 2023 22:00:00 GMT"}, None),
        ({"Retry-After": "0"}, None),
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "NaN"}, None),
        ({"Retry-After": "inf"}, None),
        ({"retry-after-ms": "0", "Retry-After": "3"}, 3.0),
        ({"retry-after-ms": "nan"}, None),
        ({"Retry-After": "1000000000"}, 1e9),  # clamped by the router (max_retry_after), not here
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_in_every_form(headers: dict[str, str], seconds: float | None) -> None:
    """Retry-After as seconds or HTTP-date (against the response Date when given), and retry-after-ms."""
    assert parse_retry_after(CIMultiDict(headers), NOW) == seconds
    error = _classify(429, {"error": {"message": "slow down"}}, **headers)
    assert error.retry_after == seconds


@pytest.mark.parametrize(
    ("obj", "cls"),
    [
        ({"error": {"code": 502, "message": "Provider returned error"}}, ServerError),
        ({"error": {"code": 429, "message": "rate limited upstream"}}, RateLimited),
        ({"error": {"code": 402, "message": "credits exhausted"}}, InsufficientBalance),
        ({"error": {"code": 400, "message": "context length exceeded"}}, ContextLengthExceeded),
        ({"error": {"message": "something broke"}}, ServerError),
        ({"error": "plain"}, ServerError),
    ],
)
def test_errors_inside_a_200_use_their_code(obj: dict[str, object], cls: type[UpstreamError]) -> None:
    """An error object inside a 200 (OneRouter) is typed by its numeric code, else a server error."""
    error = error_from_object("onerouter", obj, status=200, headers={}, key=None, wall_now=NOW)
    assert type(error) is cls
    assert error.status == 200 and "inside a 200" in str(error)
