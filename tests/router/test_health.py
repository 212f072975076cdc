"""Health: which outcomes count against which breaker."""

from __future__ import annotations

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
from switchyard.router import Account, BreakerConfig, BreakerState, Health, MemoryStore, Permit, Reported

OFFER = Offer("m", "m-1", gateway="g")
CONFIG = BreakerConfig(consecutive_failures=2, jitter=0.0, account_break=300.0)


def _health() -> Health:
    return Health(MemoryStore(seed=0), CONFIG)


async def _acquire(health: Health, now: float, offer: Offer = OFFER) -> tuple[Permit | None, list[Reported]]:
    """Both breakers' permission for ``offer`` (on an account without limits)."""
    admitted = await health.store.admit(Account("g", None, None), 0, offer.gateway_model, CONFIG, now)
    return admitted.permit, admitted.reported


async def _fail_twice(health: Health, error: UpstreamError) -> None:
    for t in (0.0, 1.0):
        permit, _ = await _acquire(health, t)
        assert permit is not None
        await health.record(permit, error, 0.01, t)


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
async def test_what_counts_against_which_breaker(
    error: UpstreamError, gateway_state: BreakerState, model_state: BreakerState
) -> None:
    """Refusals and timeouts count against the gateway; 5xx and malformed only the model; 400/429 neither."""
    health = _health()
    await _fail_twice(health, error)
    assert health.state("g") is gateway_state
    assert health.state("g", "m-1") is model_state


@pytest.mark.parametrize(
    "error", [AuthenticationError("g", status=401), InsufficientBalance("g", status=402)]
)
async def test_a_refused_account_opens_the_gateway_for_a_long_break(error: UpstreamError) -> None:
    """One 401 or 402 opens the whole gateway for account_break seconds."""
    health = _health()
    permit, _ = await _acquire(health, 0.0)
    assert permit is not None
    (reported,) = await health.record(permit, error, 0.01, 0.0)
    assert reported.gateway_model is None and reported.transition.until == 300.0
    assert health.exclusion(OFFER, 299.0) == "circuit open for g (1.0s more)"
    assert health.exclusion(Offer("other", gateway="g"), 10.0) is not None, "every model of the gateway"


async def test_a_half_open_probe_is_the_only_call_let_through() -> None:
    """After the break, the first acquire probes; the others are refused until it ends."""
    health = _health()
    await _fail_twice(health, UpstreamConnectionError("g"))
    reopen = health.breaker("g").open_until
    probe, reported = await _acquire(health, reopen)
    assert probe is not None and [r.transition.after for r in reported] == [BreakerState.HALF_OPEN] * 2
    assert await _acquire(health, reopen) == (None, [])
    assert "probe in flight" in (health.exclusion(OFFER, reopen) or "")
    closed = await health.record(probe, None, 0.01, reopen)
    assert [r.transition.after for r in closed] == [BreakerState.CLOSED] * 2


async def test_a_cancelled_call_gives_its_permission_back() -> None:
    """release ends a permit without a verdict; ending twice changes nothing."""
    health = _health()
    await _fail_twice(health, UpstreamConnectionError("g"))
    reopen = health.breaker("g").open_until
    probe, _ = await _acquire(health, reopen)
    assert probe is not None
    await health.release(probe, reopen)
    await health.release(probe, reopen)
    again, _ = await _acquire(health, reopen)
    assert again is not None
