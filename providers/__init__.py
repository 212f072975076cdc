"""Gateways, their catalogs, the provider graph, and the transport to them.

The lowest layer of switchyard: values (:class:`Gateway`, :class:`Offer`,
:class:`Tier`, :class:`ChatRequest`, :class:`Reply`), the :class:`ProviderGraph`
over the shipped catalog snapshots, the :class:`Transport` seam with
:class:`AiohttpTransport` and its in-memory double :class:`MockTransport`, the
clock seam, token estimators, and the error tree rooted at :class:`RouterError`
(each error carrying its row of the failure table, :class:`Failure`).

The wire adapters and what else the router needs of this package live in
:mod:`switchyard.providers.wire`: importable, but not a stable API.
"""

from ._clock import Clock, FakeClock, LoopClock, MonotonicClock
from ._conflicts import CatalogConflictWarning, Conflict
from ._errors import (
    AccountError,
    AuthenticationError,
    BadRequest,
    CatalogError,
    ConfigError,
    ContentFiltered,
    ContextLengthExceeded,
    EndpointError,
    InsufficientBalance,
    MalformedReply,
    ModelUnavailable,
    NonRetryableError,
    Overloaded,
    PermissionDenied,
    PromptTooLong,
    RateLimited,
    RetryableError,
    RouterError,
    ServerError,
    StreamCut,
    UnknownModelError,
    UnsupportedFeature,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
    ValidationError,
)
from ._exchange import Response, WireRequest
from ._failures import Breaker, Closes, Failover, Failure, Retry
from ._gateway import BUILTIN_GATEWAYS, Gateway
from ._graph import ProviderGraph
from ._mock import MockTransport
from ._offer import Capabilities, Offer, PriceSource
from ._outcomes import (
    AllCandidatesFailed,
    DeadlineExceeded,
    NoCandidatesError,
    SaturatedError,
    StreamInterrupted,
)
from ._refresh import RefreshReport
from ._reply import Attempt, Reply, Route, StreamChunk, Usage
from ._request import ChatRequest, Message
from ._secret import Secret
from ._standin import TransportFailure
from ._tier import Tier
from ._tokens import HeuristicEstimator, TokenEstimator
from ._transport import AiohttpTransport, Timeouts, Transport

__all__ = [
    "BUILTIN_GATEWAYS",
    "AccountError",
    "AiohttpTransport",
    "AllCandidatesFailed",
    "Attempt",
    "AuthenticationError",
    "BadRequest",
    "Breaker",
    "Capabilities",
    "CatalogConflictWarning",
    "CatalogError",
    "ChatRequest",
    "Clock",
    "Closes",
    "ConfigError",
    "Conflict",
    "ContentFiltered",
    "ContextLengthExceeded",
    "DeadlineExceeded",
    "EndpointError",
    "Failover",
    "Failure",
    "FakeClock",
    "Gateway",
    "HeuristicEstimator",
    "InsufficientBalance",
    "LoopClock",
    "MalformedReply",
    "Message",
    "MockTransport",
    "ModelUnavailable",
    "MonotonicClock",
    "NoCandidatesError",
    "NonRetryableError",
    "Offer",
    "Overloaded",
    "PermissionDenied",
    "PriceSource",
    "PromptTooLong",
    "ProviderGraph",
    "RateLimited",
    "RefreshReport",
    "Reply",
    "Response",
    "Retry",
    "RetryableError",
    "Route",
    "RouterError",
    "SaturatedError",
    "Secret",
    "ServerError",
    "StreamChunk",
    "StreamCut",
    "StreamInterrupted",
    "Tier",
    "Timeouts",
    "TokenEstimator",
    "Transport",
    "TransportFailure",
    "UnknownModelError",
    "UnsupportedFeature",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeout",
    "Usage",
    "ValidationError",
    "WireRequest",
]
