"""The seam between the handler and a wire format: what a gateway takes, and how it answers.

Two dialects implement it: :class:`~._openai_dialect.OpenAIDialect` (OneAI,
Onetoken, OneRouter, OneRouter with its listing, comment keep-alives and
``usage.cost``) and :class:`~._onellm_dialect.OneLLMDialect`. Everything else
(auth, faults, tiers, balances, capabilities, context windows) is the same at
every gateway and stays with the handler.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Protocol

from .._gateway import Gateway
from .._tier import Tier
from ._answer import Answer
from ._checks import Refusal

__all__ = ["Dialect", "message_for"]

_GENERIC: Final[Mapping[int, str]] = {
    400: "Bad request",
    401: "Invalid API key",
    402: "Insufficient credits",
    404: "Not found",
    405: "Method not allowed",
    429: "Rate limit exceeded",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
    504: "Gateway timeout",
}


def message_for(own: Mapping[int, str], status: int) -> str:
    """A gateway's words for ``status``: its own (``own``) where it has them, else generic ones."""
    return own.get(status) or _GENERIC.get(status) or f"HTTP {status}"


class Dialect(Protocol):
    """One wire format as one gateway speaks it."""

    @property
    def chat_path(self) -> str:
        """Where the gateway takes chat requests (the whole path on its port)."""

    @property
    def models_path(self) -> str | None:
        """Where it serves its models listing (None: it has none)."""

    @property
    def streams(self) -> bool:
        """It answers ``stream: true`` with server-sent events."""

    @property
    def keepalive_comments(self) -> bool:
        """A stream begins with an SSE comment line before the first event (OneRouter)."""

    @property
    def takes_tools(self) -> bool:
        """It reads ``tools``: counts them in the prompt, and may answer with tool calls."""

    @property
    def stop_parameter(self) -> str:
        """The request parameter that carries stop sequences."""

    @property
    def minimum_balance(self) -> float:
        """Below this balance (USD), when one is set, every request is 402."""

    def base_url(self, root: str) -> str:
        """The base URL a client is given for the gateway at ``root`` (``http://host:port``)."""

    def gateway(self, api_key: str, base_url: str, tier: Tier | None) -> Gateway:
        """The :class:`Gateway` a client uses to reach it at ``base_url``."""

    def parse(self, raw: bytes) -> dict[str, Any] | Refusal:
        """The decoded chat request body, or the answer refusing it by the gateway's error table."""

    def unknown_model(self, model: str) -> Refusal:
        """The answer to a model the gateway does not serve."""

    def served_max_tokens(
        self,
        max_tokens: int | None,
        *,
        balance_usd: float | None,
        prompt_tokens: int,
        prices: tuple[float, float],
    ) -> int | None:
        """The ``max_tokens`` the gateway serves the request with (a balance may lower it)."""

    def usage(
        self, body: Mapping[str, Any], prompt_tokens: int, completion_tokens: int, cost: float
    ) -> dict[str, Any]:
        """The reply's ``usage`` object."""

    def reply(
        self, ident: str, created: int, model: str, answer: Answer, usage: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The body of a reply that is not streamed."""

    def message(self, status: int) -> str:
        """The gateway's own words for ``status``."""

    def error_body(self, status: int, message: str | None = None, code: str | None = None) -> bytes:
        """An error body in the gateway's shape (``message`` defaults to :meth:`message`)."""
