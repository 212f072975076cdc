"""Health: which outcomes count against which breaker."""

from __future__ import annotations

import random

import pytest
from switchyard.providers import (
    AuthenticationError,
    BadRequest,
    InsufficientBalance,
    MalformedReply,
    Offer,
    RateLimited,
    ServerError,
    UpstreamConnectionError,
    UpstreamError,
    UpstreamTimeout,
)
from switchyard.router import BreakerConfig, BreakerState, Health

OFFER = Offer("m", "m-1", gateway="g")
CONFIG = BreakerConfig(consecutive_failures=2, jitter=0.0, account_break=300.0)


def _health() -> Health:
    return Health(CONFIG, rng=random.Random(0))


def _fail_twice(health: Health, error: UpstreamError) -> None:
    for t in (0.0, 1.0):
        permit, _ = health.acquire(OFFER, t)
        assert permit is not None
        health.record(permit, OFFER, error, 0.01, t)


@pytest.mark.parametrize(
    ("error", "gateway_state", "model_state"),
    [
        (UpstreamConnectionError("g"), BreakerState.OPEN, BreakerState.OPEN),
        (UpstreamTimeout("g"), BreakerState.OPEN, BreakerState.OPEN),
        (ServerError("g", status=500), BreakerState.CLOSED, BreakerState.OPEN),
        (MalformedReply("g", status=200), BreakerState.CLOSED, BreakerState.OPEN),
        (BadRequest("g", status=400), BreakerState.CLOSED, BreakerState.CLOSED),
        (RateLimited("g", status=429), BreakerState.CLOSED, BreakerState.CLOSED),
    ],
)
def test_what_counts_against_which_breaker(
    error: UpstreamError, gateway_state: BreakerState, model_state: BreakerState
) -> None:
    """Refusals and timeouts count against the gateway; 5xx and malformed only the model; 400/429 neither."""
    health = _health()
    _fail_twice(health, error)
    assert health.state("g") is gateway_state
    assert health.state("g", "m-1") is model_state


@pytest.mark.parametrize(
    "error", [AuthenticationError("g", status=401), InsufficientBalance("g", status=402)]
)
def test_a_refused_account_opens_the_gateway_for_a_long_break(error: UpstreamError) -> None:
    """One 401 or 402 opens the whole gateway for account_break seconds."""
    health = _health()
    permit, _ = health.acquire(OFFER, 0.0)
    assert permit is not None
    (reported,) = health.record(permit, OFFER, error, 0.01, 0.0)
    assert reported.gateway_model is None and reported.transition.until == 300.0
    assert health.exclusion(OFFER, 299.0) == "circuit open for g (1.0s more)"
    assert health.exclusion(Offer("other", gateway="g"), 10.0) is not None, "every model of the gateway"


def test_a_half_open_probe_is_the_only_call_let_through() -> None:
    """After the break, the first acquire probes; the others are refused until it ends."""
    health = _health()
    _fail_twice(health, UpstreamConnectionError("g"))
    reopen = health.gateway_breaker("g").open_until
    probe, reported = health.acquire(OFFER, reopen)
    assert probe is not None and [r.transition.after for r in reported] == [BreakerState.HALF_OPEN] * 2
    assert health.acquire(OFFER, reopen) == (None, [])
    assert "probe in flight" in (health.exclusion(OFFER, reopen) or "")
    closed = health.record(probe, OFFER, None, 0.01, reopen)
    assert [r.transition.after for r in closed] == [BreakerState.CLOSED] * 2


def test_a_cancelled_call_gives_its_permission_back() -> None:
    """release ends a permit without a verdict; ending twice changes nothing."""
    health = _health()
    _fail_twice(health, UpstreamConnectionError("g"))
    reopen = health.gateway_breaker("g").open_until
    probe, _ = health.acquire(OFFER, reopen)
    assert probe is not None
    health.release(probe, reopen)
    health.release(probe, reopen)
    again, _ = health.acquire(OFFER, reopen)
    assert again is not None
