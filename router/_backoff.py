"""Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter")."""

from __future__ import annotations

import random

import attrs

__all__ = ["Backoff"]


@attrs.frozen
class Backoff:
    """``delay = uniform(0, min(cap, base * 2**n))`` for the n-th retry of a target.

    Only a retry of the same target waits; moving to another target does not. A
    server's Retry-After, when longer, wins.
    """

    base: float = 0.1
    cap: float = 2.0

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before the ``retry``-th retry (counting from 0)."""
        jittered = rng.uniform(0.0, min(self.cap, self.base * (2**retry)))
        return max(jittered, retry_after or 0.0)
