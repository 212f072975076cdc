"""Cheapest per token: the lowest expected cost first, unknown prices last."""

from __future__ import annotations

from collections.abc import Sequence

from ..providers import Offer
from ._policy import OrderingPolicy, RequestContext, retries

__all__ = ["CheapestPerToken", "expected_cost"]


def expected_cost(offer: Offer, ctx: RequestContext) -> float | None:
    """Estimated prompt tokens x input price + expected output tokens x output price, in USD.

    None when the offer's price is unknown (never treated as free).
    """
    return offer.cost_usd(ctx.prompt_tokens, ctx.output_tokens)


class CheapestPerToken(OrderingPolicy):
    """Orders by expected cost for this request; offers with unknown prices go last.

    Expected cost = estimated prompt tokens x input price + expected output tokens
    x output price (``max_tokens``, or the router's default expectation). Equal
    costs keep catalog order unless chained: ``CheapestPerToken().then(LowestLatency())``.

    Args:
        retry_same: retries of a retryable failure on the same target before moving on
            (see :class:`~policies.Policy`).
    """

    name = "cheapest-per-token"

    def __init__(self, *, retry_same: int = 0) -> None:
        self.retry_same = retries(retry_same)

    def key(self, offer: Offer, ctx: RequestContext) -> tuple[int, float]:
        """(0, cost) for a priced offer, (1, 0) for an unknown price."""
        cost = expected_cost(offer, ctx)
        return (1, 0.0) if cost is None else (0, cost)

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """Sort by :meth:`key`, computed inline (no call per offer: this runs for every request
        with more than one candidate)."""
        if type(self).key is not CheapestPerToken.key:
            return super().rank(offers, ctx)  # a subclass's own key
        prompt, output = ctx.prompt_tokens, ctx.output_tokens

        def key(offer: Offer) -> tuple[int, float]:
            price_in, price_out = offer.input_price, offer.output_price
            if price_in is None or price_out is None:
                return (1, 0.0)
            return (0, prompt * price_in + output * price_out)  # Offer.cost_usd's order, unscaled

        return sorted(offers, key=key)

    def reason(self, offer: Offer, ctx: RequestContext) -> str:
        """The expected cost and how it is made up."""
        cost = expected_cost(offer, ctx)
        if cost is None:
            return "price unknown (ranked after every priced offer)"
        return (
            f"expected ${cost:.6f} ({ctx.prompt_tokens} prompt x ${offer.input_price:g} + "
            f"{ctx.output_tokens} output x ${offer.output_price:g} per 1M, {offer.price_source.value} price)"
        )
