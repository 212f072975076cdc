"""Prometheus: ``switchyard_*`` metrics over the router's events (the ``prometheus`` extra).

``prometheus_client`` is imported when :class:`Prometheus` is constructed, never
by ``import switchyard.router``. The hook keeps no state of its own between events,
so one instance may serve every router of a process.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from ..providers import ConfigError
from ._events import Event

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import MetricWrapperBase
    from prometheus_client.registry import Collector

__all__ = ["Prometheus"]

_M = TypeVar("_M", bound="Collector")
_W = TypeVar("_W", bound="MetricWrapperBase")

# Seconds, as the OpenTelemetry GenAI conventions advise for their duration histograms.
_SECONDS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# The ``limit`` label: what a deferral waited on.
_LIMITS: Final = {
    "requests/min": "rpm",
    "tokens/min": "tpm",
    "concurrency": "concurrency",
    "connections": "connections",
}
_BREAKER: Final = {"breaker.opened": 1.0, "breaker.half_opened": 0.5, "breaker.closed": 0.0}


class Prometheus:
    """A hook that keeps Prometheus metrics of requests, attempts, tokens, cost, breakers and limits.

    Pass it as ``Router(graph, hooks=[Prometheus()])`` and serve the registry as you
    already do (``prometheus_client.start_http_server``, or ``generate_latest(registry)``
    from your own ``/metrics`` handler). Metrics:

    - ``switchyard_requests_total{model,outcome}``: finished requests; ``model`` is the id
      asked for, ``outcome`` ``ok``, ``cancelled`` or the error's class
      (``AllCandidatesFailed``, ``DeadlineExceeded``, ``NoCandidatesError``...).
    - ``switchyard_attempts_total{gateway,model,outcome}``: attempts; ``model`` is the
      canonical model tried, ``outcome`` ``ok``, ``cancelled`` or the failure class
      (``ServerError``, ``RateLimited``, ``UpstreamTimeout``...).
    - ``switchyard_request_duration_seconds{model,outcome}``: histogram, start to end of
      each request, every attempt and wait included.
    - ``switchyard_time_to_first_token_seconds{model}``: histogram, for streams: start to
      the first chunk reaching the caller.
    - ``switchyard_tokens_total{gateway,type}``: tokens of answered requests, ``type``
      ``input`` or ``output`` (the router's estimate where a gateway reports none).
    - ``switchyard_cost_usd_total{gateway}``: the answers' cost, where the price is known.
    - ``switchyard_breaker_open{gateway,model}``: 1 open, 0.5 half-open (letting probes
      through), 0 closed; ``model`` is the gateway's model id, empty for the gateway's
      own breaker. Only transitions this process observed.
    - ``switchyard_bucket_deferrals_total{gateway,limit}``: times a request could not go
      to an account now; ``limit`` ``rpm``, ``tpm``, ``concurrency``, ``connections`` or
      ``retry_after``.
    - ``switchyard_retry_budget_remaining``: retries left in the budget, as of the last
      finished request (of any router using this hook).

    Args:
        registry: where the metrics are registered; default ``prometheus_client.REGISTRY``.

    Raises:
        ConfigError: when ``prometheus_client`` is not installed (``pip install
            'switchyard[prometheus]'``), or the registry already holds these metrics
            (make one ``Prometheus`` per registry and share it between routers).
    """

    __slots__ = (
        "_attempts",
        "_breaker",
        "_budget",
        "_children",
        "_cost",
        "_deferrals",
        "_duration",
        "_handlers",
        "_requests",
        "_tokens",
        "_ttft",
    )

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        try:
            import prometheus_client as prom
        except ImportError as exc:
            raise ConfigError(
                "Prometheus() needs prometheus_client: pip install 'switchyard[prometheus]'"
            ) from exc
        where = prom.REGISTRY if registry is None else registry
        made: list[Collector] = []

        def keep(metric: _M) -> _M:
            made.append(metric)
            return metric

        try:
            self._requests = keep(
                prom.Counter(
                    "switchyard_requests", "Finished requests.", ["model", "outcome"], registry=where
                )
            )
            self._attempts = keep(
                prom.Counter(
                    "switchyard_attempts",
                    "Attempts at a target.",
                    ["gateway", "model", "outcome"],
                    registry=where,
                )
            )
            self._duration = keep(
                prom.Histogram(
                    "switchyard_request_duration_seconds",
                    "Seconds from a request's start to its end, every attempt and wait included.",
                    ["model", "outcome"],
                    registry=where,
                    buckets=_SECONDS,
                )
            )
            self._ttft = keep(
                prom.Histogram(
                    "switchyard_time_to_first_token_seconds",
                    "Seconds from a stream's start until its first chunk reached the caller.",
                    ["model"],
                    registry=where,
                    buckets=_SECONDS,
                )
            )
            self._tokens = keep(
                prom.Counter(
                    "switchyard_tokens", "Tokens of answered requests.", ["gateway", "type"], registry=where
                )
            )
            self._cost = keep(
                prom.Counter(
                    "switchyard_cost_usd", "What the answers cost, in USD.", ["gateway"], registry=where
                )
            )
            self._breaker = keep(
                prom.Gauge(
                    "switchyard_breaker_open",
                    "Circuit breakers: 1 open, 0.5 half-open, 0 closed.",
                    ["gateway", "model"],
                    registry=where,
                )
            )
            self._deferrals = keep(
                prom.Counter(
                    "switchyard_bucket_deferrals",
                    "Times a request could not go to an account now, by the limit it hit.",
                    ["gateway", "limit"],
                    registry=where,
                )
            )
            self._budget = keep(
                prom.Gauge(
                    "switchyard_retry_budget_remaining",
                    "Retries left in the retry budget, as of the last finished request.",
                    registry=where,
                )
            )
        except ValueError as exc:  # "Duplicated timeseries in CollectorRegistry"
            for metric in made:
                where.unregister(metric)  # leave the registry as it was
            raise ConfigError(
                f"the registry already has switchyard's metrics ({exc}); make one Prometheus() per "
                "registry and pass it to every router"
            ) from exc
        # Labelled children by (metric, labels): as many as prometheus_client keeps itself.
        self._children: dict[tuple[object, ...], MetricWrapperBase] = {}
        self._handlers: dict[str, Callable[[Event], None]] = {
            "request.finished": self._request_finished,
            "attempt.finished": self._attempt_finished,
            "bucket.deferred": self._deferred,
            "breaker.opened": self._breaker_changed,
            "breaker.half_opened": self._breaker_changed,
            "breaker.closed": self._breaker_changed,
        }

    def __repr__(self) -> str:
        return "Prometheus()"

    def __call__(self, event: Event) -> None:
        """Count one event."""
        handler = self._handlers.get(event.name)
        if handler is not None:
            handler(event)

    def _child(self, metric: _W, *labels: str) -> _W:
        """``metric.labels(*labels)``, kept: prometheus_client checks and joins the labels on each
        call (several microseconds), and a request touches up to six children."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child  # type: ignore[return-value]

    def _request_finished(self, event: Event) -> None:
        model = event.detail or ""
        outcome = event.outcome or ""
        self._child(self._requests, model, outcome).inc()
        if event.latency is not None:
            self._child(self._duration, model, outcome).observe(event.latency)
        if event.ttft is not None:
            self._child(self._ttft, model).observe(event.ttft)
        gateway = event.gateway
        if gateway is not None and outcome == "ok":
            if event.usage is not None:
                self._child(self._tokens, gateway, "input").inc(event.usage.prompt_tokens)
                self._child(self._tokens, gateway, "output").inc(event.usage.completion_tokens)
            if event.cost_usd is not None:
                self._child(self._cost, gateway).inc(event.cost_usd)
        if event.retry_budget is not None:
            self._budget.set(event.retry_budget)

    def _attempt_finished(self, event: Event) -> None:
        self._child(self._attempts, event.gateway or "", event.model or "", event.outcome or "").inc()

    def _deferred(self, event: Event) -> None:
        detail = event.detail or ""
        limit = "retry_after" if detail.startswith("Retry-After") else _LIMITS.get(detail, "other")
        self._child(self._deferrals, event.gateway or "", limit).inc()

    def _breaker_changed(self, event: Event) -> None:
        self._child(self._breaker, event.gateway or "", event.gateway_model or "").set(_BREAKER[event.name])
