"""OpenAI's wire format as OneAI, Onetoken and OneRouter speak it.

Chat at ``/v1/chat/completions``; a malformed body is 400 (``stop`` is a string
or an array of strings; ``tools`` are checked, see ``_tools``); an unknown model
is 404 ``model_not_found``; errors are ``{"error": {"message", "type", "code"}}``;
replies are ``chat.completion`` objects, streamed as ``chat.completion.chunk``
events (``_sse_writer``). OneRouter also serves ``/v1/models``, begins its streams
with a comment line, and adds ``usage.cost`` when the request asks for usage
(``stream_options.include_usage`` or its own ``usage.include``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import attrs

from .._gateway import Gateway
from .._tier import Tier
from ._answer import Answer
from ._checks import PARAMS, Refusal, strings, wrong_param
from ._dialect import message_for
from ._tools import check_tools

__all__ = ["OPENAI_GATEWAYS", "OpenAIDialect", "wants_usage"]

# OneAI's own words for its errors, from its document.
_ONEAI: Final[Mapping[int, str]] = {
    401: "Invalid or missing API key",
    402: "Insufficient balance — top up your account",
    429: "Rate limit exceeded — slow down or upgrade",
    500: "Server error — we're on it. Retry with backoff",
    503: "Model overloaded — try again or switch models",
}
_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_balance",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}
_PARAMS: Final = {
    **PARAMS,
    "stop": (lambda v: isinstance(v, str) or strings(v), "a string or an array of strings"),
}


def wants_usage(body: Mapping[str, Any]) -> bool:
    """The request asks for usage: ``stream_options.include_usage`` or OneRouter's ``usage.include``."""
    options = body.get("stream_options")
    usage = body.get("usage")
    return (isinstance(options, dict) and options.get("include_usage") is True) or (
        isinstance(usage, dict) and usage.get("include") is True
    )


@attrs.frozen
class OpenAIDialect:
    """OpenAI's format at one gateway, with that gateway's own ways.

    Args:
        name: the built-in gateway's name.
        messages: the gateway's own words for error statuses (generic ones otherwise).
        models_listing: it serves ``/v1/models`` (OneRouter).
        keepalive_comments: its streams begin with ``: OPENROUTER PROCESSING`` (OneRouter).
        usage_cost: ``usage`` carries ``cost`` in USD when the request asks for usage (OneRouter).
    """

    name: str
    messages: Mapping[int, str] = attrs.field(factory=dict)
    models_listing: bool = False
    keepalive_comments: bool = False
    usage_cost: bool = False

    chat_path: ClassVar[str] = "/v1/chat/completions"
    streams: ClassVar[bool] = True
    takes_tools: ClassVar[bool] = True
    stop_parameter: ClassVar[str] = "stop"
    minimum_balance: ClassVar[float] = 0.0

    @property
    def models_path(self) -> str | None:
        """``/v1/models`` where the gateway has a listing."""
        return "/v1/models" if self.models_listing else None

    def base_url(self, root: str) -> str:
        """``root`` + ``/v1``."""
        return root + "/v1"

    def gateway(self, api_key: str, base_url: str, tier: Tier | None) -> Gateway:
        """The built-in gateway of this name, pointed at ``base_url``."""
        return Gateway.builtin(self.name, api_key, base_url=base_url, tier=tier)

    def parse(self, raw: bytes) -> dict[str, Any] | Refusal:
        """The body, or a 400 saying what is wrong with it."""
        try:
            body = json.loads(raw)
        except ValueError:
            return Refusal(400, "We could not parse the JSON body.")
        refusal = _check(body)
        return body if refusal is None else refusal

    def unknown_model(self, model: str) -> Refusal:
        """404 ``model_not_found``."""
        return Refusal(404, f"The model `{model}` does not exist", "model_not_found")

    def served_max_tokens(
        self,
        max_tokens: int | None,
        *,
        balance_usd: float | None,
        prompt_tokens: int,
        prices: tuple[float, float],
    ) -> int | None:
        """``max_tokens`` as sent."""
        return max_tokens

    def usage(
        self, body: Mapping[str, Any], prompt_tokens: int, completion_tokens: int, cost: float
    ) -> dict[str, Any]:
        """OpenAI's ``usage`` (with ``cost`` where the gateway adds it and the request asks)."""
        usage: dict[str, Any] = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if self.usage_cost and wants_usage(body):
            usage["cost"] = round(cost, 12)
        return usage

    def reply(
        self, ident: str, created: int, model: str, answer: Answer, usage: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A ``chat.completion``."""
        return {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": dict(answer.message),
                    "finish_reason": answer.finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": dict(usage),
        }

    def message(self, status: int) -> str:
        """The gateway's own words for ``status``, else generic ones."""
        return message_for(self.messages, status)

    def error_body(self, status: int, message: str | None = None, code: str | None = None) -> bytes:
        """``{"error": {"message", "type", "code"}}``."""
        text = message or self.message(status)
        error = {"message": text, "type": _TYPES.get(status, "api_error"), "code": code}
        return json.dumps({"error": error}).encode()


def _check(body: Any) -> Refusal | None:
    if not isinstance(body, dict):
        return Refusal(400, "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return Refusal(400, "You must provide a model parameter.")
    messages = body.get("messages")
    if messages is None:
        return Refusal(400, "Missing required parameter: 'messages'.")
    if not isinstance(messages, list) or not messages:
        return Refusal(400, "Invalid 'messages': expected a non-empty array of messages.")
    wrong = wrong_param(body, _PARAMS)
    if wrong is not None:
        return Refusal(400, wrong)
    tools = check_tools(body)
    return None if tools is None else Refusal(400, tools)


OPENAI_GATEWAYS: Final[Mapping[str, OpenAIDialect]] = {
    "oneai": OpenAIDialect("oneai", messages=_ONEAI),
    "onetoken": OpenAIDialect("onetoken"),
    "onerouter": OpenAIDialect("onerouter", models_listing=True, keepalive_comments=True, usage_cost=True),
}
"""The OpenAI-compatible built-in gateways' dialects, by name."""
