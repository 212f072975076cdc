"""The retry budget and full-jitter backoff (pure, fake time)."""

from __future__ import annotations

import random

import pytest

from router import Backoff, RetryBudget


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


def test_full_jitter_stays_within_its_cap_and_respects_retry_after() -> None:
    """delay is uniform in [0, min(cap, base * 2**n)], and never below a server's Retry-After."""
    backoff = Backoff(base=0.1, cap=1.0)
    rng = random.Random(0)
    for n, bound in ((0, 0.1), (1, 0.2), (3, 0.8), (10, 1.0)):
        delays = [backoff.delay(n, rng) for _ in range(500)]
        assert min(delays) >= 0 and max(delays) <= bound
        assert max(delays) > bound * 0.9, "the whole range is used"
    assert backoff.delay(0, rng, retry_after=3.0) == 3.0
