"""RateLimitAware: saturated accounts go last; admission, settlement, Retry-After."""

from __future__ import annotations

import pytest
from switchyard.policies import CheapestPerToken, Deferral, RateLimitAware, Reservation
from switchyard.providers import ConfigError, Gateway, Offer, Tier

from .conftest import context, offer


def _policy(tiers: dict[str, Tier | None]) -> RateLimitAware:
    policy = RateLimitAware(CheapestPerToken())
    policy.attach(
        {
            name: Gateway.openai_compatible(
                name, f"http://127.0.0.1:{9000 + i}/v1", "k", offers=[Offer("m")], tier=tier
            )
            for i, (name, tier) in enumerate(tiers.items())
        }
    )
    return policy


def test_saturated_candidates_move_after_ready_ones() -> None:
    """The cheapest is at its concurrency limit: the next cheapest goes first, the cheapest after."""
    policy = _policy({"cheap": Tier(concurrency=1), "dear": None})
    cheap, dear = offer("cheap", (0.1, 0.1)), offer("dear", (1.0, 1.0))
    ctx = context()
    assert policy.rank([dear, cheap], ctx) == [cheap, dear]
    held = policy.admit(cheap, ctx, 0.0)
    assert isinstance(held, Reservation)
    assert policy.rank([dear, cheap], ctx) == [dear, cheap]
    (_, _first), (_, second) = policy.explain([dear, cheap], ctx)
    assert second.startswith("deferred (cheap concurrency: frees when a request in flight ends)")
    policy.settle(held, 50, None, 0.0)
    assert policy.rank([dear, cheap], ctx) == [cheap, dear]


def test_admission_reserves_prompt_plus_expected_output() -> None:
    """A request reserves its prompt estimate plus max_tokens (or the expected output)."""
    policy = _policy({"g": Tier(tpm=10_000)})
    ctx = context(prompt=1000, output=500)
    held = policy.admit(offer("g", (1.0, 1.0)), ctx, 0.0)
    assert isinstance(held, Reservation) and held.tokens == 1500
    assert policy.snapshot("g", 0.0).reserved_tokens == 1500


def test_a_429_closes_the_account_even_without_a_tier() -> None:
    """rate_limited closes the gateway until its Retry-After (1 s when it gave none)."""
    policy = _policy({"g": None})
    g = offer("g", (1.0, 1.0))
    assert policy.rate_limited(g, 7.5, 10.0) == 17.5
    deferral = policy.admit(g, context(now=11.0), 11.0)
    assert isinstance(deferral, Deferral) and deferral.limit == "Retry-After"
    assert policy.rate_limited(offer("g"), None, 100.0) == 101.0


def test_listeners_hear_each_freed_slot_once() -> None:
    """on_release listeners are called once per reservation settled, however often it is settled."""
    policy = _policy({"g": Tier(concurrency=5)})
    heard: list[int] = []
    policy.on_release(lambda: heard.append(1))
    held = policy.admit(offer("g"), context(), 0.0)
    assert isinstance(held, Reservation)
    policy.settle(held, None, None, 0.0)
    policy.settle(held, None, None, 0.0)
    assert heard == [1]


def test_it_wraps_once() -> None:
    """Wrapping a RateLimitAware again is refused; its name says what it wraps."""
    inner = RateLimitAware()
    assert inner.name == "rate-limit-aware cheapest-per-token"
    with pytest.raises(ConfigError, match="wraps a RateLimitAware"):
        RateLimitAware(inner)
