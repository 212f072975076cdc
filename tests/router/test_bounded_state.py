"""State that outlives a request stays bounded: 50,000 requests through one Router, on fake loop time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import looptime
from switchyard.policies import LowestLatency, Outcome, RequestContext
from switchyard.providers import (
    Capabilities,
    ChatRequest,
    Gateway,
    MockTransport,
    Offer,
    ProviderGraph,
    Response,
)
from switchyard.router import Router

from .conftest import HI

_BODY = json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
).encode()


def _children(obj: object) -> Iterator[object]:
    if isinstance(obj, dict):
        yield from obj.keys()
        yield from obj.values()
    elif isinstance(obj, list | tuple | set | frozenset) or type(obj).__name__ == "deque":
        yield from obj  # type: ignore[misc]
    else:
        names: list[str] = list(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            names.extend(getattr(cls, "__slots__", ()))
        for name in names:
            if hasattr(obj, name):
                yield getattr(obj, name)


_OURS = Router.__module__.split(".")[0]  # the library's top package (switchyard), whatever its layout


def _held(root: object) -> int:
    """Items held in every container reachable from ``root`` (through the library's own objects)."""
    seen: set[int] = set()
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, str | bytes | int | float | bool | type(None)):
            continue
        seen.add(id(obj))
        module = type(obj).__module__
        container = isinstance(obj, dict | list | tuple | set | frozenset) or type(obj).__name__ == "deque"
        if container:
            total += len(obj)  # type: ignore[arg-type]
        elif module != _OURS and not module.startswith(_OURS + "."):
            continue  # an rng, an enum, a function: not per-request state
        stack.extend(_children(obj))
    return total


def _graph() -> ProviderGraph:
    offers = [
        Offer("m", "m", 0.1 * (i + 1), 0.2, capabilities=Capabilities(streaming=True)) for i in range(2)
    ]
    gateways = [
        Gateway.openai_compatible(name, f"http://127.0.0.1:{9000 + i}/v1", "k", offers=[offers[i]])
        for i, name in enumerate(("a", "b"))
    ]
    return ProviderGraph.from_catalogs(gateways)


def _sizes(router: Router, policy: LowestLatency) -> dict[str, int]:
    return {
        "budget": _held(router.retry_budget),
        "breakers": _held(router.health),
        "latency": _held(policy),
        "limits": _held(router.admission),
    }


async def test_fifty_thousand_healthy_requests_leave_bounded_state(
    fake_time: looptime.LoopTimeEventLoop,
) -> None:
    """Retry budget, breakers, latency statistics and limits hold as much after 50k requests as after 5k."""
    transport = MockTransport(lambda wire: Response(200, {"content-type": "application/json"}, _BODY))
    policy = LowestLatency(seed=0)
    sizes: list[dict[str, int]] = []
    async with Router(_graph(), policy=policy, transport=transport, seed=0) as router:
        for i in range(1, 50_001):
            await router.chat("m", HI, max_tokens=1)
            if i % 100 == 0:
                await asyncio.sleep(1.0)  # fake loop time: 100 requests a second, 500 s in all
                transport.requests.clear()  # the double keeps every request; not the router's state
            if i in (5_000, 50_000):
                sizes.append(_sizes(router, policy))
    early, late = sizes
    assert all(early.values()), f"the walk found nothing to measure: {early}"
    assert all(late[part] <= early[part] + 8 for part in early), f"state grew from {early} to {late}"
    assert late["budget"] <= 64 and router.retry_budget._size() == 20, late


def test_latency_statistics_forget_targets_long_idle() -> None:
    """Targets unused for 50 decays are swept once the table passes its high-water mark; busy ones stay."""
    policy = LowestLatency(decay=1.0)
    busy = Offer("busy", gateway="g")
    policy.started(busy, 0.0)
    for i in range(5_000):
        o = Offer(f"m{i}", gateway="g")
        policy.started(o, float(i))
        policy.observe(Outcome(offer=o, ok=True, latency=0.1, now=float(i)))
    assert policy._size() <= 2 * 1024 + 1
    assert policy.score(Offer("m4999", gateway="g"), 4999.0) > 0, "a recent target is kept"
    ctx = RequestContext(request=ChatRequest.create("m", HI), prompt_tokens=1, output_tokens=1, now=5000.0)
    assert "probe in flight" in policy.reason(busy, ctx), "one in flight is never forgotten"


async def test_routers_sharing_one_store_let_go_of_it_when_closed() -> None:
    """A hundred routers made and closed over one store leave it no listener to keep them alive;
    the policy object they share holds no state at all."""
    from switchyard.policies import CheapestPerToken, RateLimitAware
    from switchyard.router import MemoryStore

    policy = RateLimitAware(CheapestPerToken())
    store = MemoryStore()
    graph = ProviderGraph.from_catalogs(
        [Gateway.openai_compatible("a", "http://a.test/v1", "k", offers=[Offer("m", "m", 1.0, 1.0)])]
    )
    for _ in range(100):
        async with Router(
            graph, policy=policy, store=store, transport=MockTransport(lambda wire: Response(500, {}, b""))
        ):
            pass
    assert store._listeners == []
    assert set(vars(policy)) == {"inner", "name"}
