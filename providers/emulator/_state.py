"""One emulated gateway's runtime state: catalog, faults, account, counters and listening site."""

from __future__ import annotations

import random

from aiohttp import web

from .._catalog import snapshot
from .._offer import Offer
from ._accounts import Account
from ._answer import Answer
from ._dialect import Dialect
from ._faults import Faults
from ._stats import StatsRecorder

__all__ = ["GatewayState"]


class GatewayState:
    """One emulated gateway: its dialect, catalog, faults, account, counters and listening site."""

    def __init__(self, name: str, dialect: Dialect, seed: int, port: int, now: float) -> None:
        self.name = name
        self.dialect = dialect
        self.offers: dict[str, Offer] = {}
        for offer in snapshot(name):
            self.offers.setdefault(offer.gateway_model, offer)
        self.rng = random.Random(f"{seed}:{name}")
        self.faults = Faults()
        self.model_faults: dict[str, Faults] = {}
        self.account = Account(None, now)
        self.stats = StatsRecorder()
        self.port = port
        self.site: web.BaseSite | None = None
        self.key: str | None = None
        self.alternate = 0

    def faults_for(self, model: str | None) -> Faults:
        """The model's own faults when it has some, else the gateway's."""
        if model is not None:
            found = self.model_faults.get(model)
            if found is not None:
                return found
        return self.faults

    def charge(self, prompt_tokens: int, answer: Answer, prices: tuple[float, float]) -> float:
        """Count a served answer and take its cost (USD, returned) from the balance."""
        self.stats.prompt_tokens += prompt_tokens
        self.stats.completion_tokens += answer.tokens
        self.stats.tool_calls += answer.tool_calls
        in_price, out_price = prices
        cost = (prompt_tokens * in_price + answer.tokens * out_price) / 1_000_000
        self.account.charge(cost)
        return cost
