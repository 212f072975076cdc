"""Lowest latency: peak-EWMA per target, decaying with time, power of two choices among equals.

The cost of a target is Finagle's peak-EWMA of its latency (time to first token
for streams): a sample above the average replaces it at once ("peak"), a sample
below it moves it by ``1 - exp(-dt / decay)``, so one slow answer is believed
immediately and recovery is believed gradually. The cost is read through the same
decay (``cost * exp(-(now - last) / decay)``, as Finagle's ``get`` does), so a
target nobody has tried for a while looks cheaper and cheaper until it is probed
again: a gateway that recovers is found without a separate prober.

The cost is multiplied by ``in-flight + 1``. An untried target costs 0, so it is
probed first, unless a probe is already in flight, when it costs a large penalty
(so a burst does not pile onto it). A failed attempt counts as a sample of at
least ``failure_penalty`` seconds, so a gateway that fails fast never looks fast.

Among targets within ``tolerance`` of the best cost, two are picked at random and
the cheaper goes first (the power of two random choices), which spreads load when
many are equal instead of herding onto one.

State is one small record per target, and targets that stop being used are
forgotten: when the table reaches a high-water mark (at least 1,024, then twice
what a sweep leaves), a sweep drops every target with nothing in flight whose last
sample is more than 50 decays old. Its cost has decayed by ``exp(-50)`` by then,
so it already ranked as an untried target does. A sweep is O(table), once per
doubling: amortised O(1) per new target, and the table is bounded by the targets
used recently, not by every offer a refreshed catalog ever listed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Final

from ..providers import ConfigError, Offer
from ._policy import OrderingPolicy, Outcome, RequestContext, offer_key, retries

__all__ = ["LowestLatency"]

_PENALTY: Final = 1e6  # Finagle's penalty for a target with a probe in flight and no sample yet
_IDLE_DECAYS: Final = 50.0  # exp(-50) ~ 2e-22: a cost this decayed ranks as an untried target's 0
_SWEEP_FLOOR: Final = 1024


class _PeakEwma:
    __slots__ = ("cost", "pending", "stamp")

    def __init__(self) -> None:
        self.cost = 0.0
        self.stamp: float | None = None
        self.pending = 0

    def sample(self, value: float, now: float, decay: float) -> None:
        if self.stamp is None or value > self.cost:
            self.cost = value
        else:
            elapsed = now - self.stamp
            w = math.exp(-elapsed / decay) if elapsed > 0.0 else 1.0
            self.cost = self.cost * w + value * (1.0 - w)
        self.stamp = now

    def score(self, now: float, decay: float) -> float:
        if self.stamp is None:
            return _PENALTY + self.pending if self.pending else 0.0
        cost = self.cost * math.exp(-max(now - self.stamp, 0.0) / decay)
        return cost * (self.pending + 1)


class LowestLatency(OrderingPolicy):
    """Orders by peak-EWMA latency (time to first token for streams), probing untried targets.

    Args:
        decay: seconds over which old samples lose weight (Finagle's default, 10 s).
        tolerance: targets within this fraction of the best cost count as equal
            for the power of two random choices.
        failure_penalty: the least a failed attempt counts as, in seconds.
        seed: seeds the random choices (for tests; None: unpredictable).

    Raises:
        ConfigError: (a ``ValueError``) on a non-positive decay, or a negative tolerance or penalty.
    """

    name = "lowest-latency"

    def __init__(
        self,
        *,
        decay: float = 10.0,
        tolerance: float = 0.1,
        failure_penalty: float = 5.0,
        seed: int | None = None,
        retry_same: int = 0,
    ) -> None:
        if decay <= 0 or tolerance < 0 or failure_penalty < 0:
            raise ConfigError("decay must be positive, tolerance and failure_penalty not negative")
        self.retry_same = retries(retry_same)
        self.decay = decay
        self.tolerance = tolerance
        self.failure_penalty = failure_penalty
        self._rng = random.Random(seed)
        self._stats: dict[tuple[str, str], _PeakEwma] = {}
        self._sweep_at = _SWEEP_FLOOR

    def _stat(self, offer: Offer, now: float) -> _PeakEwma:
        key = offer_key(offer)
        stat = self._stats.get(key)
        if stat is None:
            if len(self._stats) >= self._sweep_at:
                self._sweep(now)
            stat = self._stats[key] = _PeakEwma()
        return stat

    def _sweep(self, now: float) -> None:
        """Forget targets idle for more than 50 decays (see the module docstring)."""
        horizon = now - _IDLE_DECAYS * self.decay
        self._stats = {
            key: stat
            for key, stat in self._stats.items()
            if stat.pending or (stat.stamp is not None and stat.stamp > horizon)
        }
        self._sweep_at = max(_SWEEP_FLOOR, 2 * len(self._stats))

    def _size(self) -> int:
        """How many targets the policy keeps statistics for."""
        return len(self._stats)

    def score(self, offer: Offer, now: float) -> float:
        """The current cost of ``offer`` (0 for untried)."""
        stat = self._stats.get(offer_key(offer))
        return 0.0 if stat is None else stat.score(now, self.decay)

    def key(self, offer: Offer, ctx: RequestContext) -> float:
        """The current cost."""
        return self.score(offer, ctx.now)

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """By cost, with the first place decided by two random choices among near-equals."""
        if len(offers) < 2:
            return list(offers)
        scored = sorted(((self.score(o, ctx.now), i, o) for i, o in enumerate(offers)), key=lambda t: t[:2])
        best = scored[0][0]
        limit = best * (1.0 + self.tolerance)
        near = [t for t in scored if t[0] <= limit]
        if len(near) >= 2:
            a, b = self._rng.sample(near, 2)
            first = b if b[0] < a[0] else a  # an exact tie keeps the random first pick
            scored.remove(first)
            scored.insert(0, first)
        return [t[2] for t in scored]

    def reason(self, offer: Offer, ctx: RequestContext) -> str:
        """The target's latency estimate and load."""
        stat = self._stats.get(offer_key(offer))
        if stat is None or stat.stamp is None:
            if stat is not None and stat.pending:
                return "untried, probe in flight"
            return "untried: probed first"
        decayed = stat.cost * math.exp(-max(ctx.now - stat.stamp, 0.0) / self.decay)
        return f"peak-EWMA {decayed * 1000:.0f} ms, {stat.pending} in flight"

    def started(self, offer: Offer, now: float) -> None:
        """One more in flight."""
        # offer_key(offer) written out, and _stat() only for a new target: this runs per attempt.
        stat = self._stats.get((offer.gateway or "", offer.gateway_model)) or self._stat(offer, now)
        stat.pending += 1

    def observe(self, outcome: Outcome) -> None:
        """Fold the attempt's latency (or time to first token) into the target's cost."""
        offer = outcome.offer
        stat = self._stats.get((offer.gateway or "", offer.gateway_model)) or self._stat(offer, outcome.now)
        if stat.pending > 0:
            stat.pending -= 1
        value = outcome.ttft if outcome.ttft is not None else outcome.latency
        if not outcome.ok and value < self.failure_penalty:
            value = self.failure_penalty
        stat.sample(value, outcome.now, self.decay)

    def __repr__(self) -> str:
        return f"LowestLatency(decay={self.decay:g})"
