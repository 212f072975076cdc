"""Offers and a request context for policy tests."""

from __future__ import annotations

from switchyard.policies import RequestContext
from switchyard.providers import ChatRequest, Offer


def offer(
    gateway: str, price: tuple[float, float] | None = None, window: int | None = None, model: str = "m"
) -> Offer:
    """An offer of model ``m`` at ``gateway``."""
    inp, out = price if price is not None else (None, None)
    return Offer(model, f"{model}@{gateway}", inp, out, window, gateway=gateway)


def context(now: float = 0.0, prompt: int = 1000, output: int = 100) -> RequestContext:
    """A request context with the given token counts."""
    return RequestContext(
        request=ChatRequest.create("m", [{"role": "user", "content": "hi"}]),
        prompt_tokens=prompt,
        output_tokens=output,
        now=now,
    )
