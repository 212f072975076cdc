"""RateLimitAware ranks by what the router's admission says; admission reserves, settles, closes on 429."""

from __future__ import annotations

import pytest
from switchyard.policies import CheapestPerToken, Deferral, RateLimitAware, RequestContext, Reservation
from switchyard.providers import ConfigError, Gateway, Offer, Tier
from switchyard.router import Admission, BreakerConfig, MemoryStore

from .conftest import context, offer

BREAKERS = BreakerConfig()


def _admission(tiers: dict[str, Tier | None]) -> Admission:
    gateways = {
        name: Gateway.openai_compatible(
            name, f"http://127.0.0.1:{9000 + i}/v1", "k", offers=[Offer("m")], tier=tier
        )
        for i, (name, tier) in enumerate(tiers.items())
    }
    return Admission(gateways, MemoryStore(), connections=None)


def _with(ctx: RequestContext, admission: Admission) -> RequestContext:
    return RequestContext(ctx.request, ctx.prompt_tokens, ctx.output_tokens, ctx.now, admission=admission)


async def _reserve(
    admission: Admission, target: Offer, ctx: RequestContext, now: float
) -> Reservation | Deferral:
    admitted = await admission.admit(target, ctx.tokens, BREAKERS, now)
    if admitted.deferral is not None:
        return admitted.deferral
    assert admitted.reservation is not None
    return admitted.reservation


async def test_saturated_candidates_move_after_ready_ones() -> None:
    """The cheapest is at its concurrency limit: the next cheapest goes first, the cheapest after."""
    admission = _admission({"cheap": Tier(concurrency=1), "dear": None})
    policy = RateLimitAware(CheapestPerToken())
    cheap, dear = offer("cheap", (0.1, 0.1)), offer("dear", (1.0, 1.0))
    ctx = _with(context(), admission)
    assert policy.rank([dear, cheap], ctx) == [cheap, dear]
    held = await _reserve(admission, cheap, ctx, 0.0)
    assert isinstance(held, Reservation)
    assert policy.rank([dear, cheap], ctx) == [dear, cheap]
    (_, _first), (_, second) = policy.explain([dear, cheap], ctx)
    assert second.startswith("deferred (cheap concurrency: frees when a request in flight ends)")
    await admission.settle(held, 50, None, 0.0)
    assert policy.rank([dear, cheap], ctx) == [cheap, dear]


async def test_a_plan_checks_only_its_front_and_explain_checks_every_candidate() -> None:
    """Only the candidates ahead of the first that can go are checked (and moved back): one
    behind it that is saturated keeps its place, for the router defers it when it tries it.
    explain() still checks and moves every candidate."""
    admission = _admission({"a": Tier(concurrency=1), "b": None, "c": Tier(concurrency=1), "d": None})
    policy = RateLimitAware(CheapestPerToken())
    a, b, c, d = (offer(g, (p, p)) for g, p in (("a", 0.1), ("b", 0.2), ("c", 0.3), ("d", 0.4)))
    ctx = _with(context(), admission)
    for saturated in (a, c):
        assert isinstance(await _reserve(admission, saturated, ctx, 0.0), Reservation)
    assert policy.rank([d, c, b, a], ctx) == [b, c, d, a]
    assert [o for o, _ in policy.explain([d, c, b, a], ctx)] == [b, d, a, c]


def test_without_an_admission_it_is_the_inner_order() -> None:
    """Outside a router (no admission in the context) it ranks as its inner policy does."""
    cheap, dear = offer("cheap", (0.1, 0.1)), offer("dear", (1.0, 1.0))
    assert RateLimitAware(CheapestPerToken()).rank([dear, cheap], context()) == [cheap, dear]


async def test_admission_reserves_prompt_plus_expected_output() -> None:
    """A request reserves its prompt estimate plus max_tokens (or the expected output)."""
    admission = _admission({"g": Tier(tpm=10_000)})
    ctx = context(prompt=1000, output=500)
    held = await _reserve(admission, offer("g", (1.0, 1.0)), ctx, 0.0)
    assert isinstance(held, Reservation) and held.tokens == 1500
    assert admission.snapshot("g", 0.0).reserved_tokens == 1500


async def test_a_429_closes_the_account_even_without_a_tier() -> None:
    """rate_limited closes the gateway until its Retry-After (1 s when it gave none)."""
    admission = _admission({"g": None})
    g = offer("g", (1.0, 1.0))
    assert await admission.rate_limited(g, 7.5, 10.0) == 17.5
    deferral = await _reserve(admission, g, context(now=11.0), 11.0)
    assert isinstance(deferral, Deferral) and deferral.limit == "Retry-After"
    assert await admission.rate_limited(offer("g"), None, 100.0) == 101.0


async def test_listeners_hear_each_freed_slot_once() -> None:
    """on_release listeners are called once per reservation settled, however often it is settled."""
    admission = _admission({"g": Tier(concurrency=5)})
    heard: list[int] = []
    admission.store.on_release(lambda: heard.append(1))
    held = await _reserve(admission, offer("g"), context(), 0.0)
    assert isinstance(held, Reservation)
    await admission.settle(held, None, None, 0.0)
    await admission.settle(held, None, None, 0.0)
    assert heard == [1]


async def test_gateway_headers_lower_the_buckets_never_raise_them() -> None:
    """x-ratelimit-remaining-* lowers the levels to what the gateway says is left; junk is ignored."""
    admission = _admission({"g": Tier(rpm=200, tpm=2_000_000)})
    ctx = context(prompt=0, output=0)
    first = await _reserve(admission, offer("g"), ctx, 0.0)
    assert isinstance(first, Reservation)
    await admission.settle(
        first, 0, {"x-ratelimit-remaining-requests": "5", "x-ratelimit-remaining-tokens": "1000"}, 0.0
    )
    snap = admission.snapshot("g", 0.0)
    assert (snap.requests_left, snap.tokens_left) == (5, 1000)
    second = await _reserve(admission, offer("g"), ctx, 0.0)
    assert isinstance(second, Reservation)
    await admission.settle(
        second, 0, {"x-ratelimit-remaining-requests": "150", "x-ratelimit-remaining-tokens": "bogus"}, 0.0
    )
    assert admission.snapshot("g", 0.0).requests_left == 4


def test_it_wraps_once() -> None:
    """Wrapping a RateLimitAware again is refused; its name says what it wraps."""
    inner = RateLimitAware()
    assert inner.name == "rate-limit-aware cheapest-per-token"
    with pytest.raises(ConfigError, match="wraps a RateLimitAware"):
        RateLimitAware(inner)
