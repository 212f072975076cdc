"""switchyard's async core: the Router, its values and errors, and the ``switchyard`` CLI.

``Router(graph, policy=...)`` sends each chat request to the best candidate and
fails over when one breaks; every error it raises derives from :class:`RouterError`.

What a plain ``Router(graph)`` never needs loads on first use (PEP 562): the
telemetry hooks (:class:`Logs`, :class:`OpenTelemetry`, :class:`Prometheus`),
:class:`RedisStore` with its connection code, and what ``explain()`` returns.
"""

import importlib
import typing

from ..providers import (
    AccountError,
    AllCandidatesFailed,
    Attempt,
    AuthenticationError,
    BadRequest,
    CatalogError,
    ChatRequest,
    ConfigError,
    ContentFiltered,
    ContextLengthExceeded,
    DeadlineExceeded,
    EndpointError,
    InsufficientBalance,
    MalformedReply,
    ModelUnavailable,
    NoCandidatesError,
    NonRetryableError,
    Overloaded,
    PermissionDenied,
    PromptTooLong,
    RateLimited,
    Reply,
    RetryableError,
    Route,
    RouterError,
    SaturatedError,
    ServerError,
    StreamChunk,
    StreamCut,
    StreamInterrupted,
    Timeouts,
    UnknownModelError,
    UnsupportedFeature,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    ValidationError,
)
from ._admission import DEFAULT_RETRY_AFTER, Admission
from ._backoff import Backoff
from ._breaker import BreakerConfig, BreakerState, CircuitBreaker, Permission, Transition
from ._budget import RetryBudget
from ._events import Event, Hook
from ._health import Health
from ._hedge import Hedge
from ._outliers import Outliers
from ._router import Router
from ._store import Account, Admitted, BreakerView, MemoryStore, Notice, Permit, Reported, Store, Verdict
from ._stream import Stream

if typing.TYPE_CHECKING:
    from ._explain import Excluded, Explanation, Ranked
    from ._logs import Logs
    from ._otel import OpenTelemetry
    from ._prometheus import Prometheus
    from ._redis import RedisStore

__all__ = [
    "DEFAULT_RETRY_AFTER",
    "Account",
    "AccountError",
    "Admission",
    "Admitted",
    "AllCandidatesFailed",
    "Attempt",
    "AuthenticationError",
    "Backoff",
    "BadRequest",
    "BreakerConfig",
    "BreakerState",
    "BreakerView",
    "CatalogError",
    "ChatRequest",
    "CircuitBreaker",
    "ConfigError",
    "ContentFiltered",
    "ContextLengthExceeded",
    "DeadlineExceeded",
    "EndpointError",
    "Event",
    "Excluded",
    "Explanation",
    "Health",
    "Hedge",
    "Hook",
    "InsufficientBalance",
    "Logs",
    "MalformedReply",
    "MemoryStore",
    "ModelUnavailable",
    "NoCandidatesError",
    "NonRetryableError",
    "Notice",
    "OpenTelemetry",
    "Outliers",
    "Overloaded",
    "Permission",
    "PermissionDenied",
    "Permit",
    "Prometheus",
    "PromptTooLong",
    "Ranked",
    "RateLimited",
    "RedisStore",
    "Reply",
    "Reported",
    "RetryBudget",
    "RetryableError",
    "Route",
    "Router",
    "RouterError",
    "SaturatedError",
    "ServerError",
    "Store",
    "Stream",
    "StreamChunk",
    "StreamCut",
    "StreamInterrupted",
    "Timeouts",
    "Transition",
    "UnknownModelError",
    "UnsupportedFeature",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeout",
    "Usage",
    "ValidationError",
    "Verdict",
]

# Public name -> the module that defines it, imported when the name is first read.
_LAZY = {
    "Excluded": "._explain",
    "Explanation": "._explain",
    "Ranked": "._explain",
    "Logs": "._logs",
    "OpenTelemetry": "._otel",
    "Prometheus": "._prometheus",
    "RedisStore": "._redis",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # the next read is a plain global
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
