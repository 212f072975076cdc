"""OneLLM's own wire format, as its document describes it.

Chat at ``/api`` (configurable: its public OpenAPI file says
``/v1/chat/completions``), no streaming, no tools, no listing. Its error table:
400 for invalid JSON or a missing required field (``model``, ``messages``, a
message's ``role`` or ``content``), 422 for a field of the wrong type or format
(``messages`` not a non-empty array, ``max_tokens`` not a whole number of at
least 1, ``temperature`` not a number from 0 to 2, ``top_p`` not from 0 to 1,
``stop_sequences`` not an array of strings); ``stream`` and ``stop`` are 400 (it
does not stream; it takes ``stop_sequences``); an unknown model is 400
``Unknown model '...'.``. Errors are ``{"error": text}``; replies are flat JSON
with ``content`` and ``input_tokens``/``output_tokens``. Under its documented
$0.10 minimum balance every request is 402; above it, it silently lowers
``max_tokens`` to what the balance pays for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any, ClassVar, Final

import attrs

from .._gateway import Gateway
from .._tier import Tier
from ._answer import Answer
from ._checks import PARAMS, Refusal, strings, wrong_param
from ._dialect import message_for
from ._text import LONGEST_REPLY

__all__ = ["OneLLMDialect"]

# OneLLM's own words for its errors, from its document.
_MESSAGES: Final[Mapping[int, str]] = {
    400: "Invalid JSON or missing required fields.",
    401: "API key missing or invalid.",
    402: "A minimum balance of $0.10 is required to make API requests.",
    403: "You don't have access to the requested resource",
    404: "Invalid Endpoint.",
    405: "Endpoint does not support the HTTP method used.",
    422: "Invalid type or format in the request body.",
    429: "Rate limit exceeded. Try again later.",
    500: "Something went wrong on the server side.",
}
_MISSING: Final = "Invalid JSON or missing required fields: "
_WRONG: Final = "Invalid type or format in the request body: "
_PARAMS: Final = {**PARAMS, "stop_sequences": (strings, "an array of strings")}


@attrs.frozen
class OneLLMDialect:
    """OneLLM's format.

    Args:
        chat_path: where it takes chat requests (its document: ``/api``).
    """

    chat_path: str = "/api"

    models_path: ClassVar[str | None] = None
    streams: ClassVar[bool] = False
    keepalive_comments: ClassVar[bool] = False
    takes_tools: ClassVar[bool] = False
    stop_parameter: ClassVar[str] = "stop_sequences"
    minimum_balance: ClassVar[float] = 0.10

    def base_url(self, root: str) -> str:
        """``root`` itself (chat is at ``root`` + ``chat_path``)."""
        return root

    def gateway(self, api_key: str, base_url: str, tier: Tier | None) -> Gateway:
        """``Gateway.onellm`` with this chat path, pointed at ``base_url``."""
        return Gateway.onellm(api_key, base_url=base_url, chat_path=self.chat_path, tier=tier)

    def parse(self, raw: bytes) -> dict[str, Any] | Refusal:
        """The body, or a 400 or 422 by OneLLM's error table."""
        try:
            body = json.loads(raw)
        except ValueError:
            return Refusal(400)
        refusal = _check(body)
        return body if refusal is None else refusal

    def unknown_model(self, model: str) -> Refusal:
        """400 ``Unknown model '...'.``."""
        return Refusal(400, f"Unknown model '{model}'.")

    def served_max_tokens(
        self,
        max_tokens: int | None,
        *,
        balance_usd: float | None,
        prompt_tokens: int,
        prices: tuple[float, float],
    ) -> int | None:
        """What the balance pays for, when that is less than ``max_tokens``; nothing says so.

        The reply then stops there with ``finish_reason: "length"``.
        """
        in_price, out_price = prices
        if balance_usd is None or out_price <= 0:
            return max_tokens
        # The completion tokens the balance pays for once the prompt is paid (at least 1).
        left = balance_usd - prompt_tokens * in_price / 1_000_000
        affordable = max(1, math.floor(left / out_price * 1_000_000 + 1e-9))
        return affordable if affordable < (max_tokens or LONGEST_REPLY) else max_tokens

    def usage(
        self, body: Mapping[str, Any], prompt_tokens: int, completion_tokens: int, cost: float
    ) -> dict[str, Any]:
        """``input_tokens``, ``output_tokens``, ``total_tokens``."""
        return {
            "input_tokens": prompt_tokens,
            "output_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }

    def reply(
        self, ident: str, created: int, model: str, answer: Answer, usage: Mapping[str, Any]
    ) -> dict[str, Any]:
        """OneLLM's flat reply."""
        return {
            "provider": "emulator",
            "model": model,
            "role": "assistant",
            "content": answer.text,
            "usage": dict(usage),
            "finish_reason": answer.finish_reason,
        }

    def message(self, status: int) -> str:
        """OneLLM's own words for ``status``, else generic ones."""
        return message_for(_MESSAGES, status)

    def error_body(self, status: int, message: str | None = None, code: str | None = None) -> bytes:
        """``{"error": text}`` (no code)."""
        return json.dumps({"error": message or self.message(status)}).encode()


def _check(body: Any) -> Refusal | None:
    if not isinstance(body, dict):
        return Refusal(400, _MISSING + "the body must be a JSON object.")
    for field in ("model", "messages"):
        if field not in body:
            return Refusal(400, f"{_MISSING}'{field}' is required.")
    if not isinstance(body["model"], str) or not body["model"]:
        return Refusal(422, _WRONG + "'model' must be a non-empty string.")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return Refusal(422, _WRONG + "'messages' must be a non-empty array of message objects.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return Refusal(422, f"{_WRONG}'messages[{i}]' must be an object with 'role' and 'content'.")
        for field in ("role", "content"):
            if field not in message:
                return Refusal(400, f"{_MISSING}'messages[{i}].{field}' is required.")
        if not isinstance(message["role"], str):
            return Refusal(422, f"{_WRONG}'messages[{i}].role' must be a string.")
        if not isinstance(message["content"], str | list):
            return Refusal(422, f"{_WRONG}'messages[{i}].content' must be a string (or an array of parts).")
    wrong = wrong_param(body, _PARAMS)
    if wrong is not None:
        return Refusal(422, _WRONG + wrong)
    if "stream" in body:
        return Refusal(400, "Streaming is not supported. Do not include a stream parameter.")
    if "stop" in body:
        return Refusal(400, "Unknown parameter 'stop'; use stop_sequences.")
    return None
