"""Token buckets and account limits (pure, fake time)."""

from __future__ import annotations

import math

import pytest
from switchyard.policies import AccountLimits, Deferral, Reservation, TokenBucket
from switchyard.providers import Tier


def test_a_bucket_refills_continuously_up_to_capacity() -> None:
    """60 per minute refills one per second, never past capacity, and may go negative."""
    bucket = TokenBucket(60, now=0.0)
    bucket.take(60, 0.0)
    assert bucket.wait(1, 0.0) == pytest.approx(1.0)
    bucket.refill(0.5)
    assert bucket.level == pytest.approx(0.5)
    bucket.take(10, 0.5)
    assert bucket.level == pytest.approx(-9.5) and bucket.wait(1, 0.5) == pytest.approx(10.5)
    bucket.refill(1000.0)
    assert bucket.level == 60
    assert bucket.wait(61, 1000.0) == math.inf


def test_requests_per_minute_defer_with_the_time_they_free() -> None:
    """Tier(rpm=3): three reservations, then a deferral until the next request drips in (20 s)."""
    account = AccountLimits("g", Tier(rpm=3), now=0.0)
    held = [account.reserve(10, 0.0) for _ in range(3)]
    assert all(isinstance(r, Reservation) for r in held)
    deferral = account.reserve(10, 0.0)
    assert deferral == Deferral("g", "requests/min", 20.0)
    assert "frees in 20.0s" in deferral.describe(0.0)
    assert isinstance(account.reserve(10, 20.0), Reservation)


@pytest.mark.parametrize(
    ("tier", "second", "expected"),
    [
        (Tier(tpm=600), 100, Deferral("g", "tokens/min", 10.0)),  # 100 short, at 10 a second
        (Tier(rpm=6, tpm=600), 100, Deferral("g", "tokens/min", 10.0)),  # requests/min is not short
        (Tier(rpm=1, tpm=600), 100, Deferral("g", "requests/min", 60.0)),  # the longer wait names it
        (Tier(rpm=1, tpm=600), 600, Deferral("g", "tokens/min", 60.0)),  # 60 s each: a tie is tokens/min
    ],
)
def test_a_deferral_names_the_limit_with_the_longer_wait(tier: Tier, second: int, expected: Deferral) -> None:
    """After a reservation of 600 tokens, the next is deferred until the later of the two limits
    frees, under that limit's name (tokens/min when both free together)."""
    account = AccountLimits("g", tier, now=0.0)
    assert isinstance(account.reserve(600, 0.0), Reservation)
    assert account.reserve(second, 0.0) == expected


def test_tokens_are_reconciled_with_real_usage() -> None:
    """A reservation of 1,000 tokens that used 300 gives 700 back; one that used 1,500 takes 500 more."""
    account = AccountLimits("g", Tier(tpm=6000), now=0.0)
    first = account.reserve(1000, 0.0)
    assert isinstance(first, Reservation) and account.snapshot(0.0).tokens_left == 5000
    account.settle(first, 300, 0.0)
    assert account.snapshot(0.0).tokens_left == 5700
    second = account.reserve(1000, 0.0)
    assert isinstance(second, Reservation)
    account.settle(second, 1500, 0.0)
    assert account.snapshot(0.0).tokens_left == 4200


def test_settling_frees_the_slot_once_and_refunds_a_failure() -> None:
    """Settling is idempotent; a failed or cancelled attempt (no usage) refunds every token."""
    account = AccountLimits("g", Tier(tpm=1000, concurrency=1), now=0.0)
    held = account.reserve(400, 0.0)
    assert isinstance(held, Reservation)
    assert account.reserve(10, 0.0) == Deferral("g", "concurrency", None)
    account.settle(held, None, 0.0)
    account.settle(held, None, 0.0)
    snap = account.snapshot(0.0)
    assert (snap.in_flight, snap.reserved_tokens, snap.tokens_left) == (0, 0, 1000)


def test_retry_after_closes_the_account() -> None:
    """After close_until(t) nothing is admitted before t, whatever the buckets say."""
    account = AccountLimits("g", None, now=0.0)
    account.close_until(30.0)
    assert account.reserve(1, 29.9) == Deferral("g", "Retry-After", 30.0)
    assert isinstance(account.reserve(1, 30.0), Reservation)


def test_a_gateways_counts_lower_the_buckets_never_raise_them() -> None:
    """What a gateway says is left lowers the levels; a higher count changes nothing."""
    account = AccountLimits("g", Tier(rpm=200, tpm=2_000_000), now=0.0)
    account.correct({"requests": 5, "tokens": 1000}, 0.0)
    snap = account.snapshot(0.0)
    assert (snap.requests_left, snap.tokens_left) == (5, 1000)
    account.correct({"requests": 150}, 0.0)
    assert account.snapshot(0.0).requests_left == 5


def test_a_request_larger_than_the_limit_never_fits() -> None:
    """A request needing more tokens than the per-minute limit is deferred forever."""
    account = AccountLimits("g", Tier(tpm=100), now=0.0)
    deferral = account.reserve(101, 0.0)
    assert isinstance(deferral, Deferral) and deferral.until == math.inf
    assert "more than the limit" in deferral.describe(0.0)


def test_the_connection_cap_saturates_an_account_without_a_tier() -> None:
    """Requests in flight are capped at the connection pool's size; the tighter cap names the deferral."""
    account = AccountLimits("g", None, now=0.0, connections=2)
    assert not account.unlimited
    held = [account.reserve(10, 0.0), account.reserve(10, 0.0)]
    assert all(isinstance(h, Reservation) for h in held)
    assert account.reserve(10, 0.0) == Deferral("g", "connections", None)
    account.settle(held[0], 5, 0.0)  # type: ignore[arg-type]
    assert isinstance(account.reserve(10, 0.0), Reservation)
    tighter_tier = AccountLimits("g", Tier(concurrency=1), now=0.0, connections=2)
    assert isinstance(tighter_tier.reserve(1, 0.0), Reservation)
    assert tighter_tier.reserve(1, 0.0) == Deferral("g", "concurrency", None)
    assert AccountLimits("g", None, now=0.0).unlimited
