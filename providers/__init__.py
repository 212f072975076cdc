"""Gateways, their catalogs, the provider graph, and the wire to them.

The lowest layer of switchyard: values (:class:`Gateway`, :class:`Offer`,
:class:`Tier`, :class:`ChatRequest`, :class:`Reply`), the shipped catalog
snapshots, canonical model ids, the :class:`ProviderGraph`, the wire adapters
and transport, the clock seam, and the error tree rooted at :class:`RouterError`.
"""

from ._adapters import Adapter, adapter_for
from ._canonical import Canonicalizer
from ._catalog import ModelInfo, known_models, shipped_canonicalizer
from ._classify import STATUS_CLASSES, classify, parse_retry_after
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
from ._exchange import ByteStream, Response, WireRequest
from ._failures import Breaker, Closes, Failover, Failure, Retry
from ._gateway import BUILTIN_GATEWAYS, Gateway, Wire, env_var
from ._graph import ProviderGraph
from ._index import ModelOffers
from ._mock import MockTransport
from ._offer import Capabilities, Offer, PriceSource
from ._onellm import OneLLMAdapter
from ._openai import Dialect, OpenAIAdapter
from ._outcomes import (
    AllCandidatesFailed,
    DeadlineExceeded,
    NoCandidatesError,
    SaturatedError,
    StreamInterrupted,
)
from ._params import PARAMS, Action, dropped_count, may_drop, unmet_needs
from ._refresh import RefreshReport
from ._reply import Answer, Attempt, Delta, Reply, Route, StreamChunk, Usage, normalize_finish_reason
from ._request import ChatRequest, Message
from ._secret import Secret
from ._sse import SSEDecoder, SSEEvent
from ._standin import TransportFailure
from ._tier import Tier
from ._tokens import HeuristicEstimator, TokenEstimator
from ._toolcalls import ToolCallAssembler
from ._transport import AiohttpTransport, Timeouts, Transport

__all__ = [
    "BUILTIN_GATEWAYS",
    "PARAMS",
    "STATUS_CLASSES",
    "AccountError",
    "Action",
    "Adapter",
    "AiohttpTransport",
    "AllCandidatesFailed",
    "Answer",
    "Attempt",
    "AuthenticationError",
    "BadRequest",
    "Breaker",
    "ByteStream",
    "Canonicalizer",
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
    "Delta",
    "Dialect",
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
    "ModelInfo",
    "ModelOffers",
    "ModelUnavailable",
    "MonotonicClock",
    "NoCandidatesError",
    "NonRetryableError",
    "Offer",
    "OneLLMAdapter",
    "OpenAIAdapter",
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
    "SSEDecoder",
    "SSEEvent",
    "SaturatedError",
    "Secret",
    "ServerError",
    "StreamChunk",
    "StreamCut",
    "StreamInterrupted",
    "Tier",
    "Timeouts",
    "TokenEstimator",
    "ToolCallAssembler",
    "Transport",
    "TransportFailure",
    "UnknownModelError",
    "UnsupportedFeature",
    "UpstreamConnectionError",
    "UpstreamError",
    "UpstreamTimeout",
    "Usage",
    "ValidationError",
    "Wire",
    "WireRequest",
    "adapter_for",
    "classify",
    "dropped_count",
    "env_var",
    "known_models",
    "may_drop",
    "normalize_finish_reason",
    "parse_retry_after",
    "shipped_canonicalizer",
    "unmet_needs",
]
