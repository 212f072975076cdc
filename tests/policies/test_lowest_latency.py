"""LowestLatency's peak-EWMA, decay, probing, load and power of two choices (fake clock)."""

from __future__ import annotations

from collections import Counter

import pytest
from switchyard.policies import LowestLatency, Outcome

from .conftest import context, offer


def _observe(policy: LowestLatency, o: object, latency: float, now: float, ok: bool = True) -> None:
    policy.started(o, now)  # type: ignore[arg-type]
    policy.observe(Outcome(offer=o, ok=ok, latency=latency, now=now))  # type: ignore[arg-type]


def test_a_slow_sample_is_believed_at_once_a_fast_one_gradually() -> None:
    """Peak sensitivity: a higher sample replaces the cost; a lower one blends in by exp(-dt/decay)."""
    policy = LowestLatency(decay=10.0)
    a = offer("a")
    _observe(policy, a, 0.1, now=0.0)
    _observe(policy, a, 2.0, now=1.0)
    assert policy.score(a, 1.0) == pytest.approx(2.0)
    _observe(policy, a, 0.1, now=2.0)
    w = pytest.approx(2.0 * 0.9048374 + 0.1 * 0.0951626, rel=1e-5)
    assert policy.score(a, 2.0) == w


def test_costs_decay_with_time_so_stale_targets_are_probed_again() -> None:
    """A slow target not tried for a while looks cheaper and cheaper until it is tried again."""
    policy = LowestLatency(decay=10.0, seed=0)
    fast, slow = offer("fast"), offer("slow")
    _observe(policy, slow, 2.0, now=0.0)
    for t in range(30):
        _observe(policy, fast, 0.2, now=float(t))
        first = policy.rank([fast, slow], context(now=float(t)))[0]
        if first is slow:
            break
    assert first is slow and 20 <= t <= 25, "2.0 * exp(-t/10) drops under 0.2 after ~23 s"


def test_untried_targets_are_probed_first_but_not_piled_onto() -> None:
    """An untried target costs 0; once a probe is in flight it costs a penalty."""
    policy = LowestLatency(seed=0)
    tried, new = offer("tried"), offer("new")
    _observe(policy, tried, 0.05, now=0.0)
    assert policy.rank([tried, new], context())[0] is new
    policy.started(new, 0.0)
    assert policy.rank([tried, new], context())[0] is tried
    assert {o.gateway: r for o, r in policy.explain([tried, new], context())}[
        "new"
    ] == "untried, probe in flight"


def test_in_flight_requests_raise_the_cost() -> None:
    """Cost is multiplied by in-flight + 1 (Finagle's load factor)."""
    policy = LowestLatency(seed=0)
    a, b = offer("a"), offer("b")
    _observe(policy, a, 0.1, now=0.0)
    _observe(policy, b, 0.15, now=0.0)
    assert policy.rank([a, b], context())[0] is a
    policy.started(a, 0.0)
    assert policy.rank([a, b], context())[0] is b


def test_failures_never_look_fast() -> None:
    """A fast failure counts as at least the failure penalty."""
    policy = LowestLatency(failure_penalty=5.0, seed=0)
    dead, slow = offer("dead"), offer("slow")
    _observe(policy, dead, 0.001, now=0.0, ok=False)
    _observe(policy, slow, 1.0, now=0.0)
    assert policy.rank([dead, slow], context())[0] is slow
    assert policy.score(dead, 0.0) == pytest.approx(5.0)


def test_two_random_choices_spread_load_among_equals() -> None:
    """With four equal targets, the first place goes to each of them over many requests."""
    policy = LowestLatency(seed=42)
    offers = [offer(g) for g in "abcd"]
    for o in offers:
        _observe(policy, o, 0.1, now=0.0)
    firsts = Counter(policy.rank(offers, context())[0].gateway for _ in range(400))
    assert set(firsts) == set("abcd") and min(firsts.values()) > 40


def test_a_clearly_better_target_always_goes_first() -> None:
    """Two random choices apply only among near-equals, never to a clearly slower one."""
    policy = LowestLatency(seed=7)
    good, bad1, bad2 = offer("good"), offer("bad1"), offer("bad2")
    _observe(policy, good, 0.1, now=0.0)
    _observe(policy, bad1, 0.5, now=0.0)
    _observe(policy, bad2, 0.6, now=0.0)
    assert {policy.rank([bad1, good, bad2], context())[0].gateway for _ in range(100)} == {"good"}


def test_abandoned_attempts_release_without_a_sample() -> None:
    """A cancelled attempt (ok=False, no error) counts as a failure sample, and releases its slot."""
    policy = LowestLatency(seed=0)
    a = offer("a")
    policy.started(a, 0.0)
    policy.observe(Outcome(offer=a, ok=False, latency=0.5, now=1.0))
    assert policy.reason(a, context(now=1.0)).endswith("0 in flight")


@pytest.mark.parametrize("kwargs", [{"decay": 0}, {"tolerance": -1}, {"failure_penalty": -1}])
def test_bad_settings(kwargs: dict[str, float]) -> None:
    """Non-positive decay or negative tolerance/penalty are refused."""
    with pytest.raises(ValueError, match="decay"):
        LowestLatency(**kwargs)
