"""An emulated gateway account: its tier's limits and its balance.

Requests per minute and tokens per minute are token buckets (capacity = the
per-minute limit, refilled continuously at limit/60 per second), the
"continuously replenished" model OpenAI-style gateways describe. A request
reserves one request and ``prompt tokens + max_tokens`` tokens (48, the longest
natural reply, when it sets no max_tokens) when it is admitted; when it ends, the
tokens it did not use are given back (all of them when it failed), the same
reconciliation switchyard's client-side buckets do. Concurrency is the number of
requests in flight. A refused request answers 429 with the time until it would
fit as Retry-After.
"""

from __future__ import annotations

import enum
import math

import attrs

from .._tier import Tier

__all__ = ["Account", "Admission", "RetryAfterStyle"]


class RetryAfterStyle(enum.StrEnum):
    """How a 429 says when to come back."""

    SECONDS = "seconds"
    HTTP_DATE = "http-date"
    MILLISECONDS = "ms"
    """``retry-after-ms`` (and a rounded-up ``Retry-After`` in seconds)."""
    ALTERNATE = "alternate"
    """Seconds and HTTP-dates in turn."""


@attrs.frozen
class Admission:
    """A decision: admitted, or refused because of ``limit`` until ``retry_after`` seconds pass."""

    admitted: bool
    limit: str | None = None
    retry_after: float = 0.0


class _Bucket:
    __slots__ = ("capacity", "level", "rate", "updated")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.level = self.capacity
        self.updated = now

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` is available (0 if it is); inf if it never fits."""
        if amount > self.capacity:
            return math.inf
        return max(0.0, (amount - self.level) / self.rate)


class Account:
    """One gateway account's limits and balance, on the emulator's loop clock."""

    def __init__(
        self,
        tier: Tier | None,
        now: float,
        *,
        retry_after: RetryAfterStyle = RetryAfterStyle.SECONDS,
        headers: bool = True,
    ) -> None:
        self.tier = tier
        self.retry_after_style = retry_after
        self.send_headers = headers and tier is not None
        self._requests = None if tier is None or tier.rpm is None else _Bucket(tier.rpm, now)
        self._tokens = None if tier is None or tier.tpm is None else _Bucket(tier.tpm, now)
        self.in_flight = 0
        self.balance_usd: float | None = None
        self.refusals = 0

    def admit(self, now: float, tokens: int) -> Admission:
        """Admit a request costing ``tokens``, or say which limit refuses it and for how long."""
        tier = self.tier
        if tier is not None and tier.concurrency is not None and self.in_flight >= tier.concurrency:
            return Admission(False, "concurrency", 1.0)
        waits = []
        if self._requests is not None:
            self._requests.refill(now)
            waits.append(("requests", self._requests.wait_for(1)))
        if self._tokens is not None:
            self._tokens.refill(now)
            waits.append(("tokens", self._tokens.wait_for(tokens)))
        blocked = [(w, name) for name, w in waits if w > 0]
        if blocked:
            wait, name = max(blocked)
            return Admission(False, name, wait)
        if self._requests is not None:
            self._requests.level -= 1
        if self._tokens is not None:
            self._tokens.level -= tokens
        self.in_flight += 1
        return Admission(True)

    def release(self, now: float, reserved: int = 0, used: int = 0) -> None:
        """An admitted request finished: free its slot, give back the tokens it did not use."""
        self.in_flight -= 1
        if self._tokens is not None and reserved > used:
            self._tokens.refill(now)
            self._tokens.level = min(self._tokens.capacity, self._tokens.level + reserved - used)

    def headers(self, now: float) -> dict[str, str]:
        """OpenAI-style ``x-ratelimit-*`` headers for the current state (empty without a tier)."""
        if not self.send_headers:
            return {}
        out = {}
        for name, bucket in (("requests", self._requests), ("tokens", self._tokens)):
            if bucket is None:
                continue
            bucket.refill(now)
            out[f"x-ratelimit-limit-{name}"] = str(int(bucket.capacity))
            out[f"x-ratelimit-remaining-{name}"] = str(max(0, int(bucket.level)))
            out[f"x-ratelimit-reset-{name}"] = f"{(bucket.capacity - bucket.level) / bucket.rate:.3f}s"
        return out

    def can_pay(self, minimum: float = 0.0) -> bool:
        """False once a configured balance has run out, or is below ``minimum`` USD."""
        return self.balance_usd is None or (self.balance_usd > 0 and self.balance_usd >= minimum)

    def charge(self, usd: float) -> None:
        """Take ``usd`` from a configured balance."""
        if self.balance_usd is not None:
            self.balance_usd -= usd
