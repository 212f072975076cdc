"""One emulated gateway's state, and its own words for its errors."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping
from typing import Final

from aiohttp import web

from .._catalog import snapshot
from .._offer import Offer
from ._accounts import Account
from ._faults import Faults
from ._stats import StatsRecorder

__all__ = ["GatewayState"]

# Each gateway's own words for its errors, from its document where it has them.
_MESSAGES: Final[Mapping[str, Mapping[int, str]]] = {
    "onellm": {
        400: "Invalid JSON or missing required fields.",
        401: "API key missing or invalid.",
        402: "A minimum balance of $0.10 is required to make API requests.",
        403: "You don't have access to the requested resource",
        404: "Invalid Endpoint.",
        405: "Endpoint does not support the HTTP method used.",
        422: "Invalid type or format in the request body.",
        429: "Rate limit exceeded. Try again later.",
        500: "Something went wrong on the server side.",
    },
    "oneai": {
        401: "Invalid or missing API key",
        402: "Insufficient balance — top up your account",
        429: "Rate limit exceeded — slow down or upgrade",
        500: "Server error — we're on it. Retry with backoff",
        503: "Model overloaded — try again or switch models",
    },
}
# A documented minimum balance, in USD, below which a gateway refuses every request (402).
_MINIMUM_BALANCE: Final[Mapping[str, float]] = {"onellm": 0.10}

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
_TYPES: Final[Mapping[int, str]] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_balance",
    404: "invalid_request_error",
    405: "invalid_request_error",
    429: "rate_limit_error",
}


class GatewayState:
    """One emulated gateway: its catalog, faults, account, counters and listening site."""

    def __init__(self, name: str, seed: int, port: int, now: float) -> None:
        self.name = name
        self.onellm = name == "onellm"
        self.has_listing = name == "onerouter"
        self.offers: dict[str, Offer] = {}
        for offer in snapshot(name):
            self.offers.setdefault(offer.gateway_model, offer)
        self.rng = random.Random(f"{seed}:{name}")
        self.faults = Faults()
        self.model_faults: dict[str, Faults] = {}
        self.account = Account(None, now)
        self.minimum_balance = _MINIMUM_BALANCE.get(name, 0.0)
        self.stats = StatsRecorder()
        self.port = port
        self.site: web.BaseSite | None = None
        self.key: str | None = None
        self.alternate = 0

    def message(self, status: int) -> str:
        """The gateway's own words for ``status``."""
        return _MESSAGES.get(self.name, {}).get(status) or _GENERIC.get(status) or f"HTTP {status}"

    def error_body(self, status: int, message: str | None = None, code: str | None = None) -> bytes:
        """An error body in the gateway's shape (OneLLM: ``{"error": text}``; others OpenAI's)."""
        text = message or self.message(status)
        if self.onellm:
            return json.dumps({"error": text}).encode()
        error = {"message": text, "type": _TYPES.get(status, "api_error"), "code": code}
        return json.dumps({"error": error}).encode()

    def faults_for(self, model: str | None) -> Faults:
        """The model's own faults when it has some, else the gateway's."""
        if model is not None:
            found = self.model_faults.get(model)
            if found is not None:
                return found
        return self.faults
