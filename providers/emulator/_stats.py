"""What an emulated gateway received and sent."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import attrs

__all__ = ["GatewayStats", "StatsRecorder"]


@attrs.frozen
class GatewayStats:
    """A snapshot of one gateway's counters.

    Attributes:
        requests: chat requests that reached the gateway, whatever the answer (a refused
            connection never does).
        statuses: status -> how many answers had it (a cut or stalled stream counts 200).
        prompt_tokens, completion_tokens: tokens in the answers sent.
        rate_limited: 429s sent (by an error rate or by the tier).
        payment_required: 402s sent.
        peak_concurrency: the most admitted chat requests being served at once.
        in_flight: admitted chat requests being served now.
        streams: streamed answers started.
        cut, stalled, error_events, malformed, hung: faults that happened.
        listings: models listing requests.
        by_model: model id -> chat requests.
        tool_calls: tool calls in the answers sent in full.
        max_tokens_lowered: requests whose max_tokens OneLLM lowered to what the
            balance pays for (or set, below the longest natural reply, when none was sent).
    """

    requests: int
    statuses: Mapping[int, int]
    prompt_tokens: int
    completion_tokens: int
    rate_limited: int
    payment_required: int
    peak_concurrency: int
    in_flight: int
    streams: int
    cut: int
    stalled: int
    error_events: int
    malformed: int
    hung: int
    listings: int
    by_model: Mapping[str, int]
    tool_calls: int = 0
    max_tokens_lowered: int = 0

    @property
    def tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens

    @property
    def ok(self) -> int:
        """Answers with status 200."""
        return self.statuses.get(200, 0)


class StatsRecorder:
    """The live counters behind :class:`GatewayStats`."""

    __slots__ = (
        "by_model",
        "completion_tokens",
        "cut",
        "error_events",
        "hung",
        "in_flight",
        "listings",
        "malformed",
        "max_tokens_lowered",
        "payment_required",
        "peak_concurrency",
        "prompt_tokens",
        "rate_limited",
        "requests",
        "stalled",
        "statuses",
        "streams",
        "tool_calls",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.statuses: Counter[int] = Counter()
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.rate_limited = 0
        self.payment_required = 0
        self.peak_concurrency = 0
        self.in_flight = 0
        self.streams = 0
        self.cut = 0
        self.stalled = 0
        self.error_events = 0
        self.malformed = 0
        self.hung = 0
        self.listings = 0
        self.by_model: Counter[str] = Counter()
        self.tool_calls = 0
        self.max_tokens_lowered = 0

    def arrived(self) -> None:
        """A chat request reached the gateway."""
        self.requests += 1

    def enter(self) -> None:
        """A chat request was admitted and is being served."""
        self.in_flight += 1
        if self.in_flight > self.peak_concurrency:
            self.peak_concurrency = self.in_flight

    def leave(self) -> None:
        """A chat request is done (answered, cut, or abandoned)."""
        self.in_flight -= 1

    def answered(self, status: int) -> None:
        """An answer with ``status`` was sent."""
        self.statuses[status] += 1
        if status == 429:
            self.rate_limited += 1
        elif status == 402:
            self.payment_required += 1

    def snapshot(self) -> GatewayStats:
        """The counters now."""
        return GatewayStats(
            requests=self.requests,
            statuses=dict(self.statuses),
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            rate_limited=self.rate_limited,
            payment_required=self.payment_required,
            peak_concurrency=self.peak_concurrency,
            in_flight=self.in_flight,
            streams=self.streams,
            cut=self.cut,
            stalled=self.stalled,
            error_events=self.error_events,
            malformed=self.malformed,
            hung=self.hung,
            listings=self.listings,
            by_model=dict(self.by_model),
            tool_calls=self.tool_calls,
            max_tokens_lowered=self.max_tokens_lowered,
        )
