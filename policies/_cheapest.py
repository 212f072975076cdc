"""Cheapest per token: the lowest expected cost first, unknown prices last."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

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
        # Per tier (by identity, the tuple kept so its id cannot be reused): its offers in the
        # order of their prices when input and output prices rise together, else None.
        self._chains: dict[int, tuple[tuple[Offer, ...], tuple[Offer, ...] | None]] = {}

    def key(self, offer: Offer, ctx: RequestContext) -> tuple[int, float]:
        """(0, cost) for a priced offer, (1, 0) for an unknown price."""
        cost = expected_cost(offer, ctx)
        return (1, 0.0) if cost is None else (0, cost)

    def rank(self, offers: Sequence[Offer], ctx: RequestContext) -> list[Offer]:
        """Sort by :meth:`key`, computed inline (no call per offer: this runs for every request
        with more than one candidate). A tuple of offers whose input and output prices rise
        together (the planner passes a tier whole as a tuple) is put in price order once, and
        each request only checks that its costs rise along it; the result is the sort's."""
        if type(self).key is not CheapestPerToken.key:
            return super().rank(offers, ctx)  # a subclass's own key
        prompt, output = ctx.prompt_tokens, ctx.output_tokens
        if type(offers) is tuple:  # a whole tier, as the planner passes one that every offer passed
            chain = self._chains.get(id(offers))
            if chain is None or chain[0] is not offers:
                chain = self._chain(offers)
            order = chain[1]
            if order is not None:
                # Costs in chain order rise strictly (or stay equal between equal prices, which
                # keep catalog order in both): that is the sort's order, without the sort.
                previous, price_in, price_out = -1.0, None, None
                for offer in order:
                    cost = prompt * offer.input_price + output * offer.output_price  # type: ignore[operator]
                    if cost < previous or (
                        cost == previous and (offer.input_price, offer.output_price) != (price_in, price_out)
                    ):
                        break  # a tie between different prices: the sort's catalog order decides
                    previous, price_in, price_out = cost, offer.input_price, offer.output_price
                else:
                    return list(order)

        def key(offer: Offer) -> tuple[int, float]:
            price_in, price_out = offer.input_price, offer.output_price
            if price_in is None or price_out is None:
                return (1, 0.0)
            return (0, prompt * price_in + output * price_out)  # Offer.cost_usd's order, unscaled

        return sorted(offers, key=key)

    def _chain(self, offers: tuple[Offer, ...]) -> tuple[tuple[Offer, ...], tuple[Offer, ...] | None]:
        """``offers`` by (input price, output price), when every price is known and the output
        prices rise with the input prices; such an order is the cost order for any token counts."""
        order: tuple[Offer, ...] | None = None
        if all(o.input_price is not None and o.output_price is not None for o in offers):
            ordered = tuple(sorted(offers, key=lambda o: (o.input_price, o.output_price)))
            if all(a.output_price <= b.output_price for a, b in pairwise(ordered)):  # type: ignore[operator]
                order = ordered
        if len(self._chains) >= 1024:
            self._chains.clear()
        chain = self._chains[id(offers)] = (offers, order)
        return chain

    def reason(self, offer: Offer, ctx: RequestContext) -> str:
        """The expected cost and how it is made up."""
        cost = expected_cost(offer, ctx)
        if cost is None:
            return "price unknown (ranked after every priced offer)"
        return (
            f"expected ${cost:.6f} ({ctx.prompt_tokens} prompt x ${offer.input_price:g} + "
            f"{ctx.output_tokens} output x ${offer.output_price:g} per 1M, {offer.price_source.value} price)"
        )
