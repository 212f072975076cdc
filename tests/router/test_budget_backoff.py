"""The retry budget and full-jitter backoff (pure, fake time)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from switchyard.router import Backoff, RetryBudget


def test_each_request_earns_a_fraction_of_a_retry() -> None:
    """With ratio 0.5 and no floor, two requests earn one retry."""
    budget = RetryBudget(0.5, min_per_second=0, ttl=10)
    budget.deposit(0.0)
    assert not budget.try_withdraw(0.0)
    budget.deposit(0.0)
    assert budget.try_withdraw(0.0)
    assert not budget.try_withdraw(0.0)


def test_the_floor_allows_retries_with_little_traffic() -> None:
    """min_per_second x ttl retries are always there."""
    budget = RetryBudget(0.0, min_per_second=1, ttl=10)
    assert sum(budget.try_withdraw(0.0) for _ in range(20)) == 10


def test_deposits_and_withdrawals_expire_after_the_ttl() -> None:
    """What happened more than ttl ago no longer counts."""
    budget = RetryBudget(1.0, min_per_second=0, ttl=10)
    budget.deposit(0.0)
    assert budget.balance(9.9) == 1.0
    assert budget.balance(10.0) == 0.0
    budget.deposit(10.0)
    assert budget.try_withdraw(10.0)
    assert budget.balance(15.0) == 0.0
    assert budget.balance(20.0) == 0.0


@pytest.mark.parametrize("kwargs", [{"ratio": -1}, {"min_per_second": -1}, {"ttl": 0}])
def test_bad_budget_settings(kwargs: dict[str, float]) -> None:
    """Negative ratios or floors and non-positive TTLs are refused."""
    with pytest.raises(ValueError, match="ratio"):
        RetryBudget(**kwargs)


@pytest.mark.parametrize("buckets", [0, -1, 2.5, True])
def test_bad_bucket_counts(buckets: int) -> None:
    """The window needs at least one whole bucket."""
    with pytest.raises(ValueError, match="buckets"):
        RetryBudget(buckets=buckets)


def test_the_budget_holds_a_fixed_number_of_counters_whatever_the_traffic() -> None:
    """200,000 requests over an hour leave the budget with 2 x buckets counters, not a timestamp each."""
    budget = RetryBudget(0.5, min_per_second=0, ttl=10, buckets=10)
    for i in range(200_000):
        now = i * 0.018
        budget.deposit(now)
        if i % 7 == 0:
            budget.try_withdraw(now)
    assert budget._size() == 20
    last = [i for i in range(200_000) if i * 0.018 >= 3590.0]  # the ten 1 s buckets up to 3599.99
    expected = 0.5 * len(last) - sum(1 for i in last if i % 7 == 0)
    assert budget.balance(3599.99) == pytest.approx(expected), "only the last ttl's traffic counts"


def test_an_event_counts_between_ttl_minus_one_bucket_and_ttl() -> None:
    """With 10 buckets of 1 s, a deposit at 3.5 s counts until 13 s: less than ttl, never more."""
    budget = RetryBudget(1.0, min_per_second=0, ttl=10, buckets=10)
    budget.deposit(3.5)
    assert budget.balance(12.99) == 1.0
    assert budget.balance(13.0) == 0.0
    fine = RetryBudget(1.0, min_per_second=0, ttl=10, buckets=100)
    fine.deposit(3.5)
    assert fine.balance(13.49) == 1.0 and fine.balance(13.5) == 0.0


def test_a_long_quiet_spell_empties_the_window() -> None:
    """After more than ttl with nothing, only the floor is left; time running backwards counts as now."""
    budget = RetryBudget(1.0, min_per_second=1, ttl=10)
    for _ in range(5):
        budget.deposit(100.0)
    assert budget.balance(99.0) == 15.0, "an earlier now counts in the current bucket"
    assert budget.balance(1_000.0) == 10.0


@settings(max_examples=200, deadline=None)
@given(
    ttl=st.sampled_from([1.0, 10.0, 30.0]),
    buckets=st.integers(1, 20),
    steps=st.lists(st.tuples(st.floats(0, 3.0), st.booleans()), min_size=1, max_size=80),
)
def test_bucketed_counts_stay_within_one_bucket_of_the_exact_window(
    ttl: float, buckets: int, steps: list[tuple[float, bool]]
) -> None:
    """Against exact timestamps: everything younger than ttl - ttl/buckets counts, nothing older than ttl."""
    budget = RetryBudget(0.5, min_per_second=0.2, ttl=ttl, buckets=buckets)
    width, eps = ttl / buckets, 1e-6
    deposits: list[float] = []
    withdrawals: list[float] = []
    now = 0.0
    for gap, retry in steps:
        now += gap * ttl / 2

        def count(times: list[float], window: float, now: float = now) -> int:
            return sum(1 for t in times if now - t < window)

        d_lo, d_hi = count(deposits, ttl - width - eps), count(deposits, ttl + eps)
        w_lo, w_hi = count(withdrawals, ttl - width - eps), count(withdrawals, ttl + eps)
        floor = 0.2 * ttl
        balance = budget.balance(now)
        assert floor + 0.5 * d_lo - w_hi - 1e-9 <= balance <= floor + 0.5 * d_hi - w_lo + 1e-9
        if retry:
            if budget.try_withdraw(now):
                withdrawals.append(now)
        else:
            budget.deposit(now)
            deposits.append(now)


def test_full_jitter_stays_within_its_cap_and_respects_retry_after() -> None:
    """delay is uniform in [0, min(cap, base * 2**n)], and never below a server's Retry-After."""
    backoff = Backoff(base=0.1, cap=1.0)
    rng = random.Random(0)
    for n, bound in ((0, 0.1), (1, 0.2), (3, 0.8), (10, 1.0)):
        delays = [backoff.delay(n, rng) for _ in range(500)]
        assert min(delays) >= 0 and max(delays) <= bound
        assert max(delays) > bound * 0.9, "the whole range is used"
    assert backoff.delay(0, rng, retry_after=3.0) == 3.0
