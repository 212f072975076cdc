"""The error tree of switchyard.

Every error the library raises derives from :class:`RouterError`, which users
import as ``router.RouterError``::

    RouterError
    ├── ConfigError (ValueError)            a value or a configuration is invalid
    ├── UnknownModelError (LookupError)     no configured gateway serves the model
    ├── CatalogError (ValueError)           a catalog snapshot or models listing cannot be read
    ├── ValidationError (ValueError)        the caller's request is invalid; nothing was sent
    │   ├── UnsupportedFeature              no target can carry what the request needs
    │   └── PromptTooLong                   the estimated prompt + max_tokens fits no context window
    ├── NoCandidatesError                   every candidate was excluded before sending (open
    │                                       circuits, missing keys, price cap...); says why for each
    ├── AllCandidatesFailed                 every attempt failed; carries each attempt and error
    ├── StreamInterrupted                   a stream broke after chunks reached the caller
    ├── DeadlineExceeded (TimeoutError)     the request's overall deadline passed
    │   └── SaturatedError                  every candidate is at a rate limit past the deadline
    └── UpstreamError                       a gateway failed or refused; carries gateway, status,
        │                                   retry_after, upstream_message, retryable, failover
        ├── RetryableError                  the same target may be tried again (budgeted)
        │   ├── UpstreamTimeout (TimeoutError)          connect, first byte or total timeout
        │   ├── UpstreamConnectionError (ConnectionError) refused, reset, DNS
        │   ├── ServerError                 500, 502, 504 and other 5xx
        │   │   └── Overloaded              503 (OneAI: "model overloaded")
        │   ├── RateLimited                 429; not again before retry_after
        │   ├── MalformedReply              a 200 with bad, empty or HTML body; a bad stream event
        │   └── StreamCut                   a stream that ended before the answer did
        └── NonRetryableError               the same target is not tried again
            ├── AccountError                the gateway refuses this account; its breaker opens
            │   ├── AuthenticationError     401 (Onetoken keys expire)
            │   ├── PermissionDenied        403
            │   └── InsufficientBalance     402 (OneAI), or OneLLM's minimum balance
            ├── EndpointError               404, 405, a redirect: wrong path or model at this gateway
            │   └── ModelUnavailable        the gateway says it does not serve the model (now)
            └── BadRequest                  400, 422: the request itself; no other candidate either
                ├── ContextLengthExceeded   only a larger-context candidate may help
                └── ContentFiltered         the gateway's content filter refused it

Each upstream error class carries its row of the failure table as ``failure``
(``providers/_failures.py`` says what the columns mean); ``retryable`` (the same
target may be tried again) and ``failover`` (another candidate may be tried) are
derived from it. The errors that end a whole request (``NoCandidatesError``,
``AllCandidatesFailed``, ``StreamInterrupted``, ``DeadlineExceeded``,
``SaturatedError``) live in ``providers/_outcomes.py``; the tree above is the whole.
Messages say what was wrong and what to do about it, and never contain an API key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from ._failures import Breaker, Closes, Failover, Failure, Retry

__all__ = [
    "AccountError",
    "AuthenticationError",
    "BadRequest",
    "CatalogError",
    "ConfigError",
    "ContentFiltered",
    "ContextLengthExceeded",
    "EndpointError",
    "InsufficientBalance",
    "MalformedReply",
    "ModelUnavailable",
    "NonRetryableError",
    "Overloaded",
    "PermissionDenied",
    "PromptTooLong",
    "RateLimited",
    "RetryableError",
    "RouterError",
    "ServerError",
    "StreamCut",
    "UnknownModelError",
    "UnsupportedFeature",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeout",
    "ValidationError",
]


class RouterError(Exception):
    """Root of every error switchyard raises."""


class ConfigError(RouterError, ValueError):
    """A value or a configuration is invalid; raised before anything is sent."""


class CatalogError(RouterError, ValueError):
    """A catalog snapshot or a gateway's models listing cannot be read."""


class ValidationError(RouterError, ValueError):
    """The caller's request is invalid; nothing was sent.

    Attributes:
        param: the parameter at fault, when there is one.
    """

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


class UnsupportedFeature(ValidationError):
    """The target cannot carry something the request needs (tools, JSON mode, images, search)."""


class PromptTooLong(ValidationError):
    """The estimated prompt plus max_tokens is more than every candidate's context window."""


class UnknownModelError(RouterError, LookupError):
    """No configured gateway serves the model.

    Attributes:
        model: the id that was asked for.
        suggestions: the closest known ids, best first (possibly empty).
    """

    def __init__(self, model: str, suggestions: Sequence[str] = ()) -> None:
        self.model = model
        self.suggestions = tuple(suggestions)
        message = f"model {model!r} is not served by any configured gateway"
        if self.suggestions:
            best, *others = self.suggestions
            message += f"; did you mean {best!r}?"
            if others:
                message += " (also close: " + ", ".join(repr(s) for s in others) + ")"
        else:
            message += "; run `switchyard catalog` to list the models that are"
        super().__init__(message)


class UpstreamError(RouterError):
    """A gateway failed or refused the request.

    Attributes:
        gateway: the gateway's name.
        status: the HTTP status, or None when there was no response.
        retry_after: seconds to wait before asking this gateway again, when it said.
        upstream_message: the gateway's own words, key-scrubbed and shortened.
        failure: the class's row of the failure table (retry, failover, breaker, closes).
        retryable: whether the same target may be tried again (from ``failure``).
        failover: whether another candidate may be tried (from ``failure``; a
            context-length rejection moves only to a larger window, so it is False).
    """

    failure: ClassVar[Failure] = Failure(Retry.ONCE, Failover.YES, Breaker.MODEL, Closes.TARGET)
    retryable: ClassVar[bool]
    failover: ClassVar[bool]
    summary: ClassVar[str] = "the gateway failed"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        cls.retryable = cls.failure.retry is not Retry.NEVER
        cls.failover = cls.failure.failover is Failover.YES

    def __init__(
        self,
        gateway: str,
        *,
        status: int | None = None,
        upstream_message: str | None = None,
        retry_after: float | None = None,
        detail: str | None = None,
    ) -> None:
        self.gateway = gateway
        self.status = status
        self.upstream_message = upstream_message
        self.retry_after = retry_after
        self.attempts: tuple[object, ...] = ()
        """Every attempt the router made, when the router raised this error itself."""
        parts = [gateway + ":"]
        if status is not None:
            parts.append(f"HTTP {status}")
        parts.append(detail or self.summary)
        text = " ".join(parts)
        if upstream_message:
            text += f": {upstream_message}"
        if retry_after is not None:
            text += f" (retry after {retry_after:g}s)"
        super().__init__(text)

    def __reduce__(self) -> tuple[object, ...]:
        # Keep keyword-only attributes through pickling (multiprocessing, caches).
        return (
            _rebuild,
            (type(self), self.gateway, self.status, self.upstream_message, self.retry_after, str(self)),
        )


UpstreamError.retryable = True
UpstreamError.failover = True


def _rebuild(
    cls: type[UpstreamError],
    gateway: str,
    status: int | None,
    upstream_message: str | None,
    retry_after: float | None,
    text: str,
) -> UpstreamError:
    error = cls.__new__(cls)
    Exception.__init__(error, text)
    error.gateway, error.status = gateway, status
    error.upstream_message, error.retry_after = upstream_message, retry_after
    error.attempts = ()
    return error


class RetryableError(UpstreamError):
    """The same target may be tried again, within the retry budget; so may the next candidate."""


class UpstreamTimeout(RetryableError, TimeoutError):
    """The gateway did not connect, answer or finish in time."""

    failure = Failure(Retry.ONCE, Failover.YES, Breaker.GATEWAY)

    summary = "timed out"


class UpstreamConnectionError(RetryableError, ConnectionError):
    """The connection to the gateway was refused, reset or never made."""

    failure = Failure(Retry.ONCE, Failover.YES, Breaker.GATEWAY)

    summary = "connection failed"


class ServerError(RetryableError):
    """The gateway answered 5xx."""

    summary = "server error"


class Overloaded(ServerError):
    """The gateway answered 503: the model is overloaded; try again or another model."""

    summary = "model overloaded"


class RateLimited(RetryableError):
    """The gateway answered 429; do not ask it again before ``retry_after``."""

    failure = Failure(Retry.AFTER_RETRY_AFTER, Failover.YES, Breaker.NONE, Closes.ACCOUNT)

    summary = "rate limit exceeded"


class MalformedReply(RetryableError):
    """The gateway answered 200 with a body or stream event that is not a valid reply."""

    summary = "malformed reply"


class StreamCut(RetryableError):
    """The stream ended (or broke) before the answer was complete."""

    summary = "stream cut before the answer was complete"


class NonRetryableError(UpstreamError):
    """The same target is not tried again."""

    failure = Failure(Retry.NEVER, Failover.YES, Breaker.NONE)


class AccountError(NonRetryableError):
    """The gateway refuses this account (key, permission, balance); its breaker opens."""

    failure = Failure(Retry.NEVER, Failover.YES, Breaker.ACCOUNT)
    summary = "the account was refused"


class AuthenticationError(AccountError):
    """401: the key is missing, invalid or expired; check the gateway's key."""

    summary = "authentication failed; check the API key (keys may expire)"


class PermissionDenied(AccountError):
    """403: the account may not use this resource."""

    summary = "permission denied"


class InsufficientBalance(AccountError):
    """402 or a balance message: top up the account."""

    summary = "insufficient balance; top up the account"


class EndpointError(NonRetryableError):
    """404, 405 or a redirect: the path or the model is wrong for this gateway."""

    failure = Failure(Retry.NEVER, Failover.YES, Breaker.MODEL)

    summary = "endpoint or model not found"


class ModelUnavailable(EndpointError):
    """The gateway answered that it does not serve the model (its catalog changed since the snapshot).

    Not the caller's fault: another gateway serving the model is tried, and the
    router leaves this offer out for a while.
    """

    failure = Failure(Retry.NEVER, Failover.YES, Breaker.NONE, Closes.OFFER)

    summary = "the gateway does not serve this model"


class BadRequest(NonRetryableError):
    """400 or 422: the gateway rejected the request itself; no other candidate is tried."""

    failure = Failure(Retry.NEVER, Failover.NO, Breaker.NONE)
    summary = "the request was rejected"


class ContextLengthExceeded(BadRequest):
    """The prompt plus max_tokens is more than the model takes; only a larger context may help."""

    failure = Failure(Retry.NEVER, Failover.LARGER_CONTEXT, Breaker.NONE)

    summary = "the prompt is longer than the model's context window"


class ContentFiltered(BadRequest):
    """The gateway's content filter refused the request."""

    summary = "refused by the content filter"
