"""What ``router.explain()`` returns: the ranked candidates and the excluded ones, with reasons."""

from __future__ import annotations

import attrs

__all__ = ["Excluded", "Explanation", "Ranked"]


@attrs.frozen
class Ranked:
    """A candidate in the order it would be tried.

    Attributes:
        rank: 1 for the first tried.
        gateway, gateway_model, model: the target.
        fallback: 0 for the model asked for, n for the n-th fallback model.
        expected_cost_usd: the estimate for this request, None when the price is unknown.
        reason: why it sits here (the policy's words).
    """

    rank: int
    gateway: str
    gateway_model: str
    model: str
    fallback: int
    expected_cost_usd: float | None
    reason: str


@attrs.frozen
class Excluded:
    """A candidate that will not be tried, and why."""

    gateway: str
    gateway_model: str
    model: str
    reason: str


@attrs.frozen
class Explanation:
    """The plan for one request, sending nothing.

    Attributes:
        model: the canonical model.
        policy: the policy's name.
        prompt_tokens: the estimated prompt tokens.
        output_tokens: the expected output tokens (``max_tokens`` or the default).
        candidates: what would be tried, in order.
        excluded: what would not, and why.
    """

    model: str
    policy: str
    prompt_tokens: int
    output_tokens: int
    candidates: tuple[Ranked, ...]
    excluded: tuple[Excluded, ...]

    def __str__(self) -> str:
        lines = [
            f"{self.model}: ~{self.prompt_tokens} prompt + {self.output_tokens} output tokens, "
            f"policy {self.policy}"
        ]
        for c in self.candidates:
            via = f" (fallback {c.fallback}: {c.model})" if c.fallback else ""
            lines.append(f"  {c.rank}. {c.gateway}:{c.gateway_model}{via}: {c.reason}")
        for e in self.excluded:
            lines.append(f"  -  {e.gateway}:{e.gateway_model}: excluded: {e.reason}")
        return "\n".join(lines)
