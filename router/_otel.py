"""OpenTelemetry: GenAI spans and metrics over the router's events (the ``otel`` extra).

It follows the OpenTelemetry GenAI semantic conventions as released in Semantic
Conventions v1.41.0 (status: Development): the last release of the GenAI
conventions in ``open-telemetry/semantic-conventions``, before they moved to
``open-telemetry/semantic-conventions-genai``, which has no release yet. The
spans, attributes and metrics below are that version's inference client span,
``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` and
``gen_ai.client.operation.time_to_first_chunk``, with their advised bucket boundaries.

Span tree of one request::

    chat {model}              CLIENT, a child of the caller's current span
    ├── attempt {gateway}     CLIENT, one per attempt, in order
    └── ...

``opentelemetry`` is imported when :class:`OpenTelemetry` is constructed, never
by ``import switchyard.router``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from ..providers import ChatRequest, ConfigError
from ._content import input_messages, output_messages
from ._events import Event

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import Histogram, MeterProvider
    from opentelemetry.trace import Span, SpanKind, Status, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue
    from yarl import URL

__all__ = ["SEMCONV_VERSION", "OpenTelemetry"]

SEMCONV_VERSION: Final = "1.41.0"
_SCHEMA_URL: Final = f"https://opentelemetry.io/schemas/{SEMCONV_VERSION}"
# The boundaries v1.41.0 advises for its duration and token histograms.
_SECONDS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
_TOKENS: Final = tuple(float(4**i) for i in range(14))  # 1, 4, 16 ... 67108864
# What an event's ``latency`` means, as a span event attribute.
_SECONDS_AS: Final = {
    "breaker.opened": "switchyard.open_for_s",
    "bucket.deferred": "switchyard.wait_s",
    "bucket.closed": "switchyard.closed_for_s",
    "offer.unavailable": "switchyard.closed_for_s",
    "retry": "switchyard.backoff_s",
}
_PARAMS: Final = (
    ("max_tokens", "gen_ai.request.max_tokens"),
    ("temperature", "gen_ai.request.temperature"),
    ("top_p", "gen_ai.request.top_p"),
    ("frequency_penalty", "gen_ai.request.frequency_penalty"),
    ("presence_penalty", "gen_ai.request.presence_penalty"),
    ("seed", "gen_ai.request.seed"),
)

Attributes = dict[str, "AttributeValue"]


class _Open:
    """One request in flight: its span, its open attempt spans, and what its metrics need."""

    __slots__ = ("attempts", "context", "model", "provider", "server", "span", "stream")

    def __init__(self, span: Span, context: Context, model: str, stream: bool) -> None:
        self.span = span
        self.context = context
        self.model = model
        self.stream = stream
        self.attempts: dict[tuple[int | None, str | None, str | None], Span] = {}
        self.provider: str | None = None  # the gateway last tried
        self.server: URL | None = None


class OpenTelemetry:
    """A hook that records each request as OpenTelemetry GenAI spans and metrics.

    Pass it as ``Router(graph, hooks=[OpenTelemetry()])``. Each request is a
    ``chat {model}`` span (kind CLIENT), a child of the span current when the request
    starts (for ``router.stream()``: when the stream is first read), with one
    ``attempt {gateway}`` child per attempt. Following OpenTelemetry GenAI semantic
    conventions v1.41.0 (:data:`SEMCONV_VERSION`):

    - request span: ``gen_ai.operation.name`` (``chat``), ``gen_ai.request.model`` (the
      id asked for), ``gen_ai.request.max_tokens``, ``.temperature``, ``.top_p``,
      ``.frequency_penalty``, ``.presence_penalty``, ``.seed``, ``.stop_sequences``,
      ``.stream`` (streams only), and at the end ``gen_ai.provider.name`` (the gateway
      that answered, or the last tried), ``gen_ai.response.model`` (the gateway's model
      id), ``gen_ai.response.finish_reasons``, ``gen_ai.usage.input_tokens``,
      ``.output_tokens`` (unless the gateway gave no usage), ``gen_ai.response.time_to_first_chunk``
      (streams), ``server.address``, ``server.port``, ``switchyard.attempts``,
      ``switchyard.cost_usd``; on failure ``error.type`` (``cancelled``, or the class of
      the error raised: ``AllCandidatesFailed``, ``DeadlineExceeded``,
      ``NoCandidatesError``, ``BadRequest``...) and status ERROR.
    - attempt span: ``gen_ai.provider.name`` (the gateway), ``gen_ai.request.model``
      (the gateway's model id), ``server.address``, ``server.port``,
      ``http.response.status_code``, ``switchyard.attempt``; when it failed,
      ``error.type`` (the failure class: ``ServerError``, ``RateLimited``,
      ``UpstreamTimeout``... or ``cancelled``) and status ERROR.
    - span events on the request span: ``switchyard.breaker.opened``,
      ``.breaker.half_opened``, ``.breaker.closed``, ``.bucket.deferred``,
      ``.bucket.closed``, ``.offer.unavailable``, ``.failover``, ``.fallback``,
      ``.retry``, ``.hedge``, ``.budget.exhausted``, ``.stream.restarted`` (every event
      of the request that is not one of the above).
    - metrics: ``gen_ai.client.operation.duration`` (s), ``gen_ai.client.token.usage``
      ({token}, by ``gen_ai.token.type``), ``gen_ai.client.operation.time_to_first_chunk``
      (s, streams), with the conventions' attributes.

    No message content is recorded unless ``capture_content=True`` (then
    ``gen_ai.input.messages`` and ``gen_ai.output.messages``, as JSON); no key ever is.
    Exception messages are not recorded either (a gateway's words may quote the request).

    Args:
        tracer_provider: where spans go; default the global one.
        meter_provider: where metrics go; default the global one.
        capture_content: also record the messages and the answer's text.

    Raises:
        ConfigError: when ``opentelemetry-api`` is not installed (``pip install 'switchyard[otel]'``).
    """

    __slots__ = (
        "_client",
        "_content",
        "_duration",
        "_error",
        "_handlers",
        "_in_context",
        "_open",
        "_tokens",
        "_tracer",
        "_ttfc",
    )

    def __init__(
        self,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        *,
        capture_content: bool = False,
    ) -> None:
        try:
            from opentelemetry import metrics, trace
        except ImportError as exc:
            raise ConfigError(
                "OpenTelemetry() needs the OpenTelemetry packages: pip install 'switchyard[otel]'"
            ) from exc
        version = _version()
        self._tracer: Tracer = trace.get_tracer("switchyard", version, tracer_provider, _SCHEMA_URL)
        meter = metrics.get_meter("switchyard", version, meter_provider, _SCHEMA_URL)
        self._duration: Histogram = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self._tokens: Histogram = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKENS,
        )
        self._ttfc: Histogram = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed answer.",
            explicit_bucket_boundaries_advisory=_SECONDS,
        )
        self._client: SpanKind = trace.SpanKind.CLIENT
        self._error: Status = trace.Status(trace.StatusCode.ERROR)
        self._in_context: Callable[[Span], Context] = trace.set_span_in_context
        self._content = capture_content
        self._open: dict[tuple[int, int], _Open] = {}
        self._handlers: dict[str, Callable[[Event], None]] = {
            "request.started": self._request_started,
            "attempt.started": self._attempt_started,
            "attempt.finished": self._attempt_finished,
            "request.finished": self._request_finished,
        }

    def __repr__(self) -> str:
        return f"OpenTelemetry(capture_content={self._content})"

    def __call__(self, event: Event) -> None:
        """Record one event."""
        handler = self._handlers.get(event.name)
        if handler is not None:
            handler(event)
        else:
            self._span_event(event)

    # -- the request span --------------------------------------------------------------------

    def _request_started(self, event: Event) -> None:
        model = event.detail or ""
        attributes: Attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
        request = event.request
        if request is not None:
            attributes.update(_parameters(request))
            if self._content:
                attributes["gen_ai.input.messages"] = input_messages(request.messages)
        if event.stream:
            attributes["gen_ai.request.stream"] = True
        # No context given: the span's parent is the caller's current span (contextvars).
        span = self._tracer.start_span(f"chat {model}", kind=self._client, attributes=attributes)
        self._open[_key(event)] = _Open(span, self._in_context(span), model, bool(event.stream))

    def _request_finished(self, event: Event) -> None:
        request = self._open.pop(_key(event), None)
        if request is None:
            return
        for left in request.attempts.values():  # every attempt ends before its request; just in case
            left.end()
        ok = event.outcome == "ok"
        provider = event.gateway if ok else request.provider
        server = event.server if ok else request.server
        common: Attributes = {"gen_ai.operation.name": "chat", "gen_ai.request.model": request.model}
        if provider:
            common["gen_ai.provider.name"] = provider
        if server is not None:
            common.update(_server(server))
        if ok and event.gateway_model:
            common["gen_ai.response.model"] = event.gateway_model
        attributes: Attributes = dict(common)
        if event.attempt is not None:
            attributes["switchyard.attempts"] = event.attempt
        usage = event.usage if ok and event.usage is not None and not event.usage.estimated else None
        if usage is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
        if ok and event.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = (event.finish_reason,)
        if event.cost_usd is not None:
            attributes["switchyard.cost_usd"] = event.cost_usd
        if event.ttft is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = event.ttft
        if ok and self._content and event.text is not None:
            attributes["gen_ai.output.messages"] = output_messages(event.text, event.finish_reason)
        span = request.span
        if span.is_recording():  # a span the sampler dropped takes no attributes
            if not ok:
                attributes["error.type"] = event.outcome or "_OTHER"
                span.set_status(self._error)
            span.set_attributes(attributes)
        span.end()
        # Metrics: the same attributes as the span's, per the conventions' tables.
        timed = dict(common)
        if not ok:
            timed["error.type"] = event.outcome or "_OTHER"
        if event.latency is not None:
            self._duration.record(event.latency, timed)
        if usage is not None:
            self._tokens.record(usage.prompt_tokens, {**common, "gen_ai.token.type": "input"})
            self._tokens.record(usage.completion_tokens, {**common, "gen_ai.token.type": "output"})
        if request.stream and event.ttft is not None:
            self._ttfc.record(event.ttft, common)

    # -- attempt spans -------------------------------------------------------------------------

    def _attempt_started(self, event: Event) -> None:
        request = self._open.get(_key(event))
        if request is None:
            return
        attributes: Attributes = {}
        if event.gateway:
            attributes["gen_ai.provider.name"] = event.gateway
            request.provider = event.gateway
        if event.gateway_model:
            attributes["gen_ai.request.model"] = event.gateway_model
        if event.server is not None:
            attributes.update(_server(event.server))
            request.server = event.server
        if event.attempt is not None:
            attributes["switchyard.attempt"] = event.attempt
        span = self._tracer.start_span(
            f"attempt {event.gateway}", request.context, kind=self._client, attributes=attributes
        )
        request.attempts[(event.attempt, event.gateway, event.gateway_model)] = span

    def _attempt_finished(self, event: Event) -> None:
        request = self._open.get(_key(event))
        if request is None:
            return
        span = request.attempts.pop((event.attempt, event.gateway, event.gateway_model), None)
        if span is None:
            return
        if span.is_recording():
            status = event.status  # recorded as given: nothing here reads what a status means
            if status is not None:
                span.set_attribute("http.response.status_code", status)
            if event.outcome != "ok":
                span.set_attribute("error.type", event.outcome or "_OTHER")
                span.set_status(self._error)
        span.end()

    # -- everything else: span events on the request span --------------------------------------

    def _span_event(self, event: Event) -> None:
        request = self._open.get(_key(event))
        if request is None or not request.span.is_recording():
            return
        attributes: Attributes = {}
        if event.gateway:
            attributes["switchyard.gateway"] = event.gateway
        if event.gateway_model:
            attributes["switchyard.gateway_model"] = event.gateway_model
        if event.attempt is not None:
            attributes["switchyard.attempt"] = event.attempt
        if event.detail:
            attributes["switchyard.detail"] = event.detail
        if event.latency is not None:
            attributes[_SECONDS_AS.get(event.name, "switchyard.seconds")] = event.latency
        request.span.add_event(f"switchyard.{event.name}", attributes)


def _key(event: Event) -> tuple[int, int]:
    """Which request an event belongs to. The request object tells apart two routers' requests
    that have the same number (a hook may serve several routers); it lives as long as its run."""
    return event.request_id, id(event.request)


def _server(url: URL) -> Attributes:
    attributes: Attributes = {}
    if url.host:
        attributes["server.address"] = url.host
    if url.port is not None:
        attributes["server.port"] = url.port
    return attributes


def _parameters(request: ChatRequest) -> Attributes:
    """The request's sampling parameters, as the conventions name them (never its messages)."""
    attributes: Attributes = {}
    for field, key in _PARAMS:
        value = getattr(request, field)
        if value is not None:
            attributes[key] = value
    if request.stop is not None:
        attributes["gen_ai.request.stop_sequences"] = request.stop
    return attributes


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("switchyard")
    except PackageNotFoundError:  # pragma: no cover - running from a checkout without installing
        return "0"
