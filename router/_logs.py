"""Structured logs: one record per request, one per failed attempt, through stdlib ``logging``."""

from __future__ import annotations

import logging

from ._events import Event

__all__ = ["Logs"]


class Logs:
    """A hook that logs each request at INFO and each failed attempt at WARNING.

    The router logs nothing unless this hook is attached:
    ``Router(graph, hooks=[Logs()])``. Records go to the ``switchyard`` logger (or
    the one given) with these ``extra`` fields, for a JSON formatter to pick up:

    - a request (INFO): ``request_id``, ``model`` (the id asked for), ``outcome``
      (``ok``, ``cancelled`` or the error's class), ``attempts``, ``duration_s``, and when
      answered ``gateway``, ``gateway_model``, ``input_tokens``, ``output_tokens``,
      ``cost_usd``; for a stream, ``ttft_s``.
    - a failed attempt (WARNING): ``request_id``, ``attempt``, ``gateway``,
      ``gateway_model``, ``model``, ``outcome`` (the failure class), ``status``,
      ``duration_s``. A cancelled attempt is not a failure: its request's record says so.

    No message content, no answer text and no key is ever logged.

    Args:
        logger: the logger, or its name.
    """

    __slots__ = ("_logger",)

    def __init__(self, logger: logging.Logger | str = "switchyard") -> None:
        self._logger = logging.getLogger(logger) if isinstance(logger, str) else logger

    def __repr__(self) -> str:
        return f"Logs({self._logger.name!r})"

    def __call__(self, event: Event) -> None:
        """Log one event, if it is a request's end or a failed attempt."""
        name = event.name
        if name == "request.finished":
            self._request(event)
        elif name == "attempt.finished" and event.outcome not in ("ok", "cancelled"):
            self._attempt(event)

    def _request(self, event: Event) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.INFO):
            return
        extra: dict[str, object] = {
            "request_id": event.request_id,
            "model": event.detail,
            "outcome": event.outcome,
            "attempts": event.attempt,
            "duration_s": event.latency,
        }
        if event.outcome == "ok":
            extra.update(gateway=event.gateway, gateway_model=event.gateway_model, cost_usd=event.cost_usd)
            usage = event.usage
            if usage is not None:
                extra.update(input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens)
            via = f" via {event.gateway}:{event.gateway_model}"
        else:
            via = ""
        if event.ttft is not None:
            extra["ttft_s"] = event.ttft
        logger.info(
            "request %s %s: %s after %s attempt(s) in %.3fs%s",
            event.request_id,
            event.detail,
            event.outcome,
            event.attempt,
            event.latency or 0.0,
            via,
            extra=extra,
        )

    def _attempt(self, event: Event) -> None:
        logger = self._logger
        if not logger.isEnabledFor(logging.WARNING):
            return
        logger.warning(
            "request %s attempt %s at %s:%s failed: %s (HTTP %s) after %.3fs",
            event.request_id,
            event.attempt,
            event.gateway,
            event.gateway_model,
            event.outcome,
            event.status,
            event.latency or 0.0,
            extra={
                "request_id": event.request_id,
                "attempt": event.attempt,
                "gateway": event.gateway,
                "gateway_model": event.gateway_model,
                "model": event.model,
                "outcome": event.outcome,
                "status": event.status,
                "duration_s": event.latency,
            },
        )
