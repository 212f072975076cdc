"""Same-target retries (``retry_same``) and the rule that quality degrades last."""

from __future__ import annotations

import json
from collections.abc import Callable

import looptime
import pytest
from switchyard.policies import CheapestPerToken, FailoverOn5xx, LowestLatency, Policy, RateLimitAware
from switchyard.providers import (
    ConfigError,
    Gateway,
    MockTransport,
    Offer,
    ProviderGraph,
    Response,
    WireRequest,
)
from switchyard.router import Event, Router

from .conftest import HI

Loop = looptime.LoopTimeEventLoop

_OK = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()
_JSON = {"content-type": "application/json"}


def _graph() -> ProviderGraph:
    """Model m at gateways a (cheaper) and b."""
    return ProviderGraph.from_catalogs(
        [
            Gateway.openai_compatible(
                name, f"http://{name}.test/v1", "k", offers=[Offer("m", "m", price, price)]
            )
            for name, price in (("a", 1.0), ("b", 2.0))
        ]
    )


def _script(answers: dict[str, list[tuple[int, dict[str, str]]]]) -> Callable[[WireRequest], Response]:
    """Each gateway answers its list of (status, headers) in turn, then 200s."""

    def handler(wire: WireRequest) -> Response:
        gateway = (wire.url.host or "").split(".")[0]
        queue = answers.get(gateway, [])
        if queue:
            status, headers = queue.pop(0)
            return Response(status, {**_JSON, **headers}, b'{"error": {"message": "busy"}}')
        return Response(200, _JSON, _OK)

    return handler


async def _route(policy: Policy, answers: dict[str, list[tuple[int, dict[str, str]]]]) -> list[str]:
    async with Router(_graph(), policy=policy, transport=MockTransport(_script(answers)), seed=0) as router:
        reply = await router.chat("m", HI)
    return [f"{a.gateway}:{a.outcome}" for a in reply.route.attempts]


async def test_failover_on_5xx_retries_the_primary_before_moving_on(fake_time: Loop) -> None:
    """retry_same=2: two 503s from the primary are retried there; the third try answers."""
    attempts = await _route(FailoverOn5xx(["a", "b"], retry_same=2), {"a": [(503, {}), (503, {})]})
    assert attempts == ["a:Overloaded", "a:Overloaded", "a:ok"]


async def test_after_retry_same_tries_it_moves_on(fake_time: Loop) -> None:
    """retry_same=1 and a primary that keeps failing: one retry there, then the next gateway."""
    attempts = await _route(FailoverOn5xx(["a", "b"], retry_same=1), {"a": [(500, {})] * 5})
    assert attempts == ["a:ServerError", "a:ServerError", "b:ok"]


async def test_without_retry_same_it_moves_on_at_once(fake_time: Loop) -> None:
    """The default (0): the same model elsewhere costs only price, so a 5xx moves on at once."""
    attempts = await _route(CheapestPerToken(), {"a": [(503, {})]})
    assert attempts == ["a:Overloaded", "b:ok"]


async def test_the_routers_default_policy_takes_the_knob_too(fake_time: Loop) -> None:
    """CheapestPerToken(retry_same=1), as wrapped by the router (and by RateLimitAware)."""
    policy = RateLimitAware(CheapestPerToken(retry_same=1))
    assert policy.retry_same == 1
    attempts = await _route(policy, {"a": [(503, {})]})
    assert attempts == ["a:Overloaded", "a:ok"]


async def test_a_429_is_retried_in_place_after_its_retry_after(fake_time: Loop) -> None:
    """A 429 whose Retry-After (3 s) falls inside the deadline is waited out and retried there."""
    events: list[Event] = []
    transport = MockTransport(_script({"a": [(429, {"retry-after": "3"})]}))
    policy = FailoverOn5xx(["a", "b"], retry_same=1)
    async with Router(_graph(), policy=policy, transport=transport, hooks=[events.append], seed=0) as router:
        start = fake_time.time()
        reply = await router.chat("m", HI)
        waited = fake_time.time() - start
    assert [f"{a.gateway}:{a.outcome}" for a in reply.route.attempts] == ["a:RateLimited", "a:ok"]
    assert waited >= 3.0
    (retry,) = [e for e in events if e.name == "retry"]
    assert retry.latency is not None and retry.latency >= 3.0


async def test_a_429_whose_retry_after_passes_the_deadline_moves_on(fake_time: Loop) -> None:
    """Retry-After 60 s with a 10 s deadline: no wait, the next gateway answers."""
    transport = MockTransport(_script({"a": [(429, {"retry-after": "60"})]}))
    policy = FailoverOn5xx(["a", "b"], retry_same=3)
    async with Router(_graph(), policy=policy, transport=transport, deadline=10, seed=0) as router:
        start = fake_time.time()
        reply = await router.chat("m", HI)
        assert fake_time.time() - start < 1.0
    assert [f"{a.gateway}:{a.outcome}" for a in reply.route.attempts] == ["a:RateLimited", "b:ok"]


@pytest.mark.parametrize("value", [-1, 11, True, 1.5, "2"])
def test_a_bad_retry_same_is_refused(value: object) -> None:
    """retry_same is a whole number from 0 to 10, on every shipped policy."""
    for make in (
        lambda: FailoverOn5xx(["a"], retry_same=value),  # type: ignore[arg-type]
        lambda: CheapestPerToken(retry_same=value),  # type: ignore[arg-type]
        lambda: LowestLatency(retry_same=value),  # type: ignore[arg-type]
    ):
        with pytest.raises(ConfigError, match="retry_same"):
            make()
