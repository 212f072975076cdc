"""The circuit breaker state machine (pure, on a fake clock), and a hypothesis model of it."""

from __future__ import annotations

import random

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from switchyard.providers import ConfigError
from switchyard.router import BreakerConfig, BreakerState, CircuitBreaker, Permission, Transition
from switchyard.router._breaker import Tally

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


def _breaker(**kwargs: object) -> CircuitBreaker:
    config = BreakerConfig(**{"jitter": 0.0, **kwargs})  # type: ignore[arg-type]
    return CircuitBreaker(config, random.Random(0))


def _calls(b: CircuitBreaker, now: float, outcomes: str) -> list[object]:
    """Run calls at ``now``: 's' success, 'f' fast failure, 'F' slow failure (30 s); the transitions."""
    out = []
    for o in outcomes:
        permission, t = b.acquire(now)
        assert permission is not None
        out.append(t)
        if o == "s":
            out.append(b.success(permission, now))
        else:
            out.append(b.failure(permission, now, latency=30.0 if o == "F" else 0.0))
    return [t for t in out if t is not None]


def test_opens_on_the_failure_ratio_once_the_window_has_enough_calls() -> None:
    """50% failures open it only after min_calls calls are in the window."""
    b = _breaker(min_calls=10, failure_ratio=0.5, consecutive_failures=100)
    assert _calls(b, 0.0, "sf" * 4) == [] and b.state is CLOSED  # 8 calls: below min_calls
    (transition,) = _calls(b, 0.0, "sf")
    assert (transition.before, transition.after) == (CLOSED, OPEN)  # type: ignore[attr-defined]
    assert "5 of 10 calls failed" in transition.reason  # type: ignore[attr-defined]


def test_opens_on_consecutive_failures_whatever_the_ratio() -> None:
    """N failures in a row open it even when the window is mostly successes."""
    b = _breaker(min_calls=1000, consecutive_failures=3)
    _calls(b, 0.0, "s" * 50)
    assert _calls(b, 1.0, "ff") == [] and b.state is CLOSED
    (transition,) = _calls(b, 1.0, "f")
    assert b.state is OPEN and "3 failures in a row" in transition.reason  # type: ignore[attr-defined]


def test_old_calls_leave_the_window() -> None:
    """Failures older than the window no longer count toward the ratio."""
    b = _breaker(window=10, min_calls=4, failure_ratio=0.5, consecutive_failures=100)
    _calls(b, 0.0, "fff")
    assert b.window_counts(5.0) == (3, 3)
    assert b.window_counts(11.0) == (0, 0)
    _calls(b, 11.0, "sss")
    assert b.state is CLOSED


def test_open_refuses_then_half_opens_after_the_break() -> None:
    """While open nothing is granted; after the break one probe is let through."""
    b = _breaker(consecutive_failures=1, base_break=5)
    _calls(b, 0.0, "f")
    assert b.state is OPEN and b.open_until == 5.0
    assert b.acquire(4.9) == (None, None)
    probe, transition = b.acquire(5.0)
    assert probe is not None and probe.probe and transition is not None and transition.after is HALF
    assert b.acquire(5.0) == (None, None), "a second caller waits for the probe"


def test_a_successful_probe_closes_and_a_failed_slow_one_reopens_for_longer() -> None:
    """Breaks grow with each slow trip in a row (x2, capped), and start over once closed."""
    b = _breaker(consecutive_failures=1, base_break=5, break_multiplier=2, max_break=12)
    _calls(b, 0.0, "F")
    breaks = []
    now = 0.0
    for _ in range(4):
        now = b.open_until
        probe, _ = b.acquire(now)
        assert probe is not None
        b.failure(probe, now, latency=30.0)
        breaks.append(b.open_until - now)
    assert breaks == [10.0, 12.0, 12.0, 12.0]
    now = b.open_until
    probe, _ = b.acquire(now)
    assert probe is not None
    transition = b.success(probe, now)
    assert transition is not None and transition.after is CLOSED
    _calls(b, now, "F")
    assert b.open_until - now == 5.0


def test_fast_failures_keep_a_short_break_however_long_the_outage() -> None:
    """Refusals and fast 5xx cost a probe little: every break stays base_break, so a
    recovered gateway is back within one break after an outage of any length."""
    b = _breaker(consecutive_failures=1, base_break=5, break_multiplier=2, max_break=120)
    _calls(b, 0.0, "f")
    breaks = []
    for _ in range(20):  # 100 s of outage, a failed probe every break
        now = b.open_until
        probe, _ = b.acquire(now)
        assert probe is not None
        b.failure(probe, now, latency=0.05)
        breaks.append(b.open_until - now)
    assert breaks == [5.0] * 20
    now = b.open_until
    probe, _ = b.acquire(now)
    assert probe is not None and b.success(probe, now) is not None
    assert b.state is CLOSED


def test_jitter_stays_within_its_fraction() -> None:
    """A jittered break stays within +/- jitter of its nominal length."""
    lengths = []
    for seed in range(200):
        b = CircuitBreaker(
            BreakerConfig(consecutive_failures=1, base_break=10, jitter=0.2), random.Random(seed)
        )
        _calls(b, 0.0, "f")
        lengths.append(b.open_until)
    assert 8.0 <= min(lengths) < 8.5 and 11.5 < max(lengths) <= 12.0


def test_half_open_admits_a_bounded_number_of_probes() -> None:
    """With probes=3, exactly three of a hundred callers get through; a release frees a place."""
    b = _breaker(consecutive_failures=1, base_break=1, probes=3)
    _calls(b, 0.0, "f")
    granted = [p for p in (b.acquire(1.0)[0] for _ in range(100)) if p is not None]
    assert len(granted) == 3 and b.probes_in_flight == 3
    b.release(granted[0], 1.0)
    assert b.acquire(1.0)[0] is not None and b.acquire(1.0)[0] is None


def test_slow_calls_can_count_as_failures() -> None:
    """With slow_call set, successes slower than it count as failures."""
    b = _breaker(consecutive_failures=2, slow_call=1.0)
    for _ in range(2):
        permission, _ = b.acquire(0.0)
        assert permission is not None
        b.success(permission, 0.0, latency=1.5)
    assert b.state is OPEN


def test_a_call_from_before_the_trip_is_never_taken_for_a_probe() -> None:
    """A call granted while closed, ending during half-open, neither frees nor decides the probe."""
    b = _breaker(consecutive_failures=1, base_break=1, probes=1)
    old_call, _ = b.acquire(0.0)
    tripping, _ = b.acquire(0.0)
    assert old_call is not None and tripping is not None
    b.failure(tripping, 0.0)
    probe, _ = b.acquire(1.0)
    assert probe is not None and b.state is HALF
    b.release(old_call, 1.0)
    assert b.acquire(1.0)[0] is None, "the old call's end did not free the probe's place"
    assert b.success(old_call, 1.0) is None and b.state is HALF, "nor did it close the breaker"
    assert b.failure(old_call, 1.0) is None and b.state is HALF


def test_force_open_for_a_refused_account() -> None:
    """force_open opens for the given time from any state, and never shortens a longer break."""
    b = _breaker()
    transition = b.force_open(0.0, 300.0, "401")
    assert transition is not None and b.state is OPEN and b.open_until == 300.0
    assert b.force_open(1.0, 10.0, "401 again") is None and b.open_until == 300.0


@pytest.mark.parametrize("kwargs", [{"window": 0}, {"failure_ratio": 1.5}, {"jitter": 1.0}, {"probes": 0}])
def test_bad_configs_are_refused(kwargs: dict[str, float]) -> None:
    """Non-positive sizes, ratios over 1 and jitter of 1 or more are refused."""
    with pytest.raises(ConfigError, match="BreakerConfig"):
        BreakerConfig(**kwargs)  # type: ignore[arg-type]


LEGAL = {(CLOSED, OPEN), (OPEN, HALF), (HALF, CLOSED), (HALF, OPEN), (OPEN, OPEN)}


class BreakerModel(RuleBasedStateMachine):
    """Random calls, outcomes and clock moves against one breaker."""

    @initialize(probes=st.integers(1, 4), consecutive=st.integers(1, 6), min_calls=st.integers(1, 8))
    def setup(self, probes: int, consecutive: int, min_calls: int) -> None:
        """A breaker with random thresholds, at time zero, and its tally of breakers not closed."""
        self.probes = probes
        self.tally = Tally()
        self.breaker = CircuitBreaker(
            BreakerConfig(
                probes=probes, consecutive_failures=consecutive, min_calls=min_calls, base_break=3, window=20
            ),
            random.Random(1),
            self.tally,
        )
        self.now = 0.0
        self.period = 0  # changes at every transition, as the breaker's epoch does
        self.outstanding: list[tuple[Permission, int]] = []
        self.state = CLOSED

    def _transition(self, t: Transition | None) -> None:
        if t is not None:
            assert (t.before, t.after) in LEGAL
            assert t.before is self.state
            self.state = t.after
            self.period += 1
        assert self.breaker.state is self.state

    @rule(dt=st.floats(0, 10))
    def advance(self, dt: float) -> None:
        """Time passes."""
        self.now += dt

    @rule()
    def ask(self) -> None:
        """A caller asks to make a call."""
        open_now = self.breaker.state is OPEN and self.now < self.breaker.open_until
        permission, t = self.breaker.acquire(self.now)
        self._transition(t)
        if open_now:
            assert permission is None, "nothing is let through while open"
        if permission is not None:
            assert permission.probe == (self.state is HALF)
            self.outstanding.append((permission, self.period))

    @precondition(lambda self: self.outstanding)
    @rule(outcome=st.sampled_from(["success", "failure", "release"]), which=st.integers(0, 100))
    def end(self, outcome: str, which: int) -> None:
        """One permitted call ends, in any order."""
        permission, _ = self.outstanding.pop(which % len(self.outstanding))
        if outcome == "success":
            self._transition(self.breaker.success(permission, self.now))
        elif outcome == "failure":
            self._transition(self.breaker.failure(permission, self.now))
        else:
            self.breaker.release(permission, self.now)
            self._transition(None)

    @rule(duration=st.floats(1, 100))
    def refuse_account(self, duration: float) -> None:
        """The account is refused (401): forced open."""
        self._transition(self.breaker.force_open(self.now, duration, "401"))

    @invariant()
    def probes_are_bounded(self) -> None:
        """At most K probes of the current half-open period are out, and the breaker agrees."""
        if not hasattr(self, "breaker"):
            return
        current = [p for p, period in self.outstanding if p.probe and period == self.period]
        if self.breaker.state is HALF:
            assert len(current) <= self.probes
            assert self.breaker.probes_in_flight == len(current)

    @invariant()
    def the_tally_counts_it_while_it_is_not_closed(self) -> None:
        """The tally a plan reads (0: every breaker closed) follows the breaker through every move."""
        if hasattr(self, "breaker"):
            assert self.tally.not_closed == (self.breaker.state is not CLOSED)


TestBreakerModel = BreakerModel.TestCase
TestBreakerModel.settings = settings(max_examples=400, stateful_step_count=60, deadline=None)
