"""CheapestPerToken, FailoverOn5xx and their composition."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard.policies import Chain, CheapestPerToken, FailoverOn5xx, LowestLatency, Outcome, expected_cost
from switchyard.providers import (
    BadRequest,
    ContextLengthExceeded,
    InsufficientBalance,
    RateLimited,
    ServerError,
    UpstreamConnectionError,
)

from .conftest import context, offer


def test_cheapest_orders_by_expected_cost_with_unknown_last() -> None:
    """Expected cost = prompt x input + output x output price; unknown prices go last, in catalog order."""
    a = offer("a", (1.0, 1.0))  # 1000 x 1 + 100 x 1 = 1100 per 1M
    b = offer("b", (0.5, 8.0))  # 500 + 800 = 1300
    c = offer("c")
    d = offer("d", (0.2, 2.0))  # 200 + 200 = 400
    e = offer("e")
    ranked = CheapestPerToken().rank([c, a, b, e, d], context())
    assert [o.gateway for o in ranked] == ["d", "a", "b", "c", "e"]
    assert expected_cost(a, context()) == pytest.approx(1100 / 1e6)


def test_cheapest_depends_on_the_request_shape() -> None:
    """A long prompt favours the cheap input price; a long answer the cheap output price."""
    cheap_in, cheap_out = offer("in", (0.1, 5.0)), offer("out", (2.0, 0.5))
    policy = CheapestPerToken()
    assert policy.rank([cheap_out, cheap_in], context(prompt=10_000, output=10))[0].gateway == "in"
    assert policy.rank([cheap_in, cheap_out], context(prompt=10, output=10_000))[0].gateway == "out"


_PRICES = st.sampled_from([0.1, 0.2, 0.30000000000000004, 0.3, 1.0, 3.0, 1e-9, 2e-9])


@settings(max_examples=400, deadline=None)
@given(
    prices=st.lists(st.one_of(st.none(), st.tuples(_PRICES, _PRICES)), min_size=2, max_size=6),
    prompt=st.one_of(st.just(0), st.integers(1, 10**7)),
    output=st.one_of(st.just(0), st.integers(1, 10**6)),
)
def test_cheapest_ranks_a_whole_tier_as_its_sort_does(
    prices: list[tuple[float, float] | None], prompt: int, output: int
) -> None:
    """A tier passed whole (a tuple) is ranked from its price chain when its prices rise together;
    ties, rounding, unknown prices and zero token counts give the same order as the sort."""
    offers = tuple(offer(f"g{i}", p) for i, p in enumerate(prices))
    policy, ctx = CheapestPerToken(), context(prompt=prompt, output=output)
    assert policy.rank(offers, ctx) == policy.rank(list(offers), ctx)
    assert policy.rank(offers, ctx) == policy.rank(offers, ctx)  # again, from the kept chain


def test_a_chain_ranks_a_tier_whatever_its_catalog_order() -> None:
    """Prices that rise together order the tier for any token counts; a tie between different
    prices is left to the sort (catalog order)."""
    cheap, mid, dear = offer("c", (0.1, 0.4)), offer("m", (0.2, 0.8)), offer("d", (0.4, 1.6))
    policy = CheapestPerToken()
    for prompt, output in [(1, 1), (10_000, 1), (1, 10_000)]:
        ranked = policy.rank((dear, cheap, mid), context(prompt=prompt, output=output))
        assert [o.gateway for o in ranked] == ["c", "m", "d"]
    in_only, out_only = offer("i", (0.1, 0.2)), offer("o", (0.2, 0.2))
    assert [o.gateway for o in policy.rank((out_only, in_only), context(prompt=0, output=5))] == ["o", "i"]


def test_cheapest_reasons() -> None:
    """The reason shows the estimate and its source, or says the price is unknown."""
    policy = CheapestPerToken()
    explained = {o.gateway: why for o, why in policy.explain([offer("a", (1.0, 2.0)), offer("b")], context())}
    assert explained["a"].startswith("expected $0.001200 (1000 prompt x $1 + 100 output x $2 per 1M")
    assert explained["b"] == "price unknown (ranked after every priced offer)"


def test_failover_order_is_explicit() -> None:
    """FailoverOn5xx follows its list, whatever the prices; unlisted gateways come last."""
    policy = FailoverOn5xx(["c", "a"])
    ranked = policy.rank(
        [offer("a", (0.1, 0.1)), offer("b", (0.01, 0.01)), offer("c", (9.0, 9.0))], context()
    )
    assert [o.gateway for o in ranked] == ["c", "a", "b"]
    reasons = [why for _, why in policy.explain(ranked, context())]
    assert (
        reasons[0] == "primary"
        and reasons[1].startswith("failover #1")
        and "not in the failover order" in reasons[2]
    )


@pytest.mark.parametrize(
    ("error", "moves_on"),
    [
        (ServerError("g", status=503), True),
        (UpstreamConnectionError("g"), True),
        (RateLimited("g", status=429), True),
        (InsufficientBalance("g", status=402), True),
        (BadRequest("g", status=400), False),
        (ContextLengthExceeded("g", status=400), False),
    ],
)
def test_failover_moves_on_only_for_its_outcomes(error: Exception, moves_on: bool) -> None:
    """5xx, timeouts, connection failures, 429s and refused accounts move on; a 400 never."""
    assert FailoverOn5xx(["a"]).failover_on(error) is moves_on  # type: ignore[arg-type]
    only_5xx = FailoverOn5xx(["a"], on=(ServerError,))
    assert not only_5xx.failover_on(RateLimited("g", status=429))
    assert only_5xx.failover_on(ServerError("g", status=502))
    assert not FailoverOn5xx(["a"], on=(ServerError, BadRequest)).failover_on(BadRequest("g", status=400))


def test_failover_order_must_be_a_list_of_names() -> None:
    """An empty order, a bare string or a repeated name is refused."""
    for bad in ([], "oneai", ["a", "a"]):
        with pytest.raises(ValueError, match="FailoverOn5xx"):
            FailoverOn5xx(bad)  # type: ignore[arg-type]


def test_chain_breaks_ties_with_the_next_policy() -> None:
    """Equal costs are ordered by latency; the chain explains both parts."""
    latency = LowestLatency(seed=0)
    a, b, c = offer("a", (1.0, 1.0)), offer("b", (1.0, 1.0)), offer("c", (0.5, 0.5))
    latency.observe(Outcome(offer=a, ok=True, latency=0.9, now=0.0))
    latency.observe(Outcome(offer=b, ok=True, latency=0.1, now=0.0))
    chain = CheapestPerToken().then(latency)
    assert isinstance(chain, Chain) and chain.name == "cheapest-per-token then lowest-latency"
    assert [o.gateway for o in chain.rank([a, b, c], context())] == ["c", "b", "a"]
    (_, why), *_ = chain.explain([b], context())
    assert "expected $" in why and "peak-EWMA 100 ms" in why
    assert chain.then(FailoverOn5xx(["a"])).policies[-1].name == "failover-on-5xx"


def test_chain_decides_failover_by_its_first_policy() -> None:
    """A chain moves on when its first policy would."""
    chain = FailoverOn5xx(["a"], on=(ServerError,)).then(CheapestPerToken())
    assert not chain.failover_on(RateLimited("g", status=429))
    assert CheapestPerToken().then(FailoverOn5xx(["a"])).failover_on(RateLimited("g", status=429))
