"""The router against the emulator: choice, failover, fallbacks, errors, deadline, budget, trace."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from openai.types.chat import ChatCompletion
from switchyard.policies import CheapestPerToken, FailoverOn5xx
from switchyard.providers import (
    AllCandidatesFailed,
    BadRequest,
    ChatRequest,
    ConfigError,
    ContextLengthExceeded,
    DeadlineExceeded,
    NoCandidatesError,
    PromptTooLong,
    ProviderGraph,
    RateLimited,
    ServerError,
    Tier,
    UnknownModelError,
    UnsupportedFeature,
    ValidationError,
)
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import BreakerConfig, BreakerState, CircuitBreaker, Event, RetryBudget, Router

from .conftest import HI

Loop = asyncio.AbstractEventLoop


async def test_cheapest_per_token_picks_the_cheapest(emu: Emulator, graph: ProviderGraph) -> None:
    """gpt-4o-mini goes to OneLLM ($0.10/$0.40), not Onetoken ($0.15/$0.60); swap prices, it follows."""
    async with Router(graph, policy=CheapestPerToken()) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=8)
        assert (reply.route.gateway, reply.route.gateway_model) == ("onellm", "GPT-4o-mini")
        assert [a.outcome for a in reply.route.attempts] == ["ok"]
        assert reply.cost_usd == pytest.approx((reply.usage.prompt_tokens * 0.10 + 8 * 0.40) / 1e6)
        graph.set_price("onellm", "GPT-4o-mini", 0.20, 0.80)
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=8)
        assert reply.route.gateway == "onetoken"
    assert (emu.stats("onellm").requests, emu.stats("onetoken").requests) == (1, 1)


async def test_a_5xx_fails_over_with_both_attempts_traced(emu: Emulator, graph: ProviderGraph) -> None:
    """A 500 at the cheapest moves on; the route lists both attempts; only the success is billed."""
    await emu.set_faults("onellm", Faults(errors={500: 1.0}))
    async with Router(graph) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    assert reply.route.gateway == "onetoken"
    attempts = reply.route.attempts
    assert [(a.gateway, a.outcome, a.status) for a in attempts] == [
        ("onellm", "ServerError", 500),
        ("onetoken", "ok", 200),
    ]
    assert all(a.latency >= 0 for a in attempts)
    assert reply.cost_usd == pytest.approx((reply.usage.prompt_tokens * 0.15 + 5 * 0.60) / 1e6)
    ChatCompletion.model_validate(reply.to_openai())


async def test_a_400_reaches_the_caller_after_exactly_one_attempt(
    emu: Emulator, graph: ProviderGraph
) -> None:
    """A rejected request is not tried anywhere else."""
    await emu.set_faults("onellm", Faults(errors={400: 1.0}))
    async with Router(graph) as router:
        with pytest.raises(BadRequest) as info:
            await router.chat("gpt-4o-mini", HI)
    assert info.value.gateway == "onellm" and len(info.value.attempts) == 1
    assert (emu.stats("onellm").requests, emu.stats("onetoken").requests) == (1, 0)


async def test_fallbacks_engage_when_every_gateway_of_a_model_is_down(
    emu: Emulator, graph: ProviderGraph, fake_time: object
) -> None:
    """gpt-4o-mini's two gateways refuse connections; each is retried once before the quality
    drops (a fallback model); then its fallback deepseek-v3 answers."""
    await emu.set_faults("onellm", Faults(outage="refuse"))
    await emu.set_faults("onetoken", Faults(outage="refuse"))
    events: list[Event] = []
    async with Router(graph, fallbacks={"gpt-4o-mini": ["deepseek-v3"]}, hooks=[events.append]) as router:
        reply = await router.chat("gpt-4o-mini", HI)
    assert reply.model == "deepseek-v3" and reply.route.gateway == "oneai"  # priced, so ahead of OneLLM's
    assert [a.outcome for a in reply.route.attempts] == ["UpstreamConnectionError"] * 4 + ["ok"]
    tried = [(a.gateway, a.model) for a in reply.route.attempts[:4]]
    assert tried[:2] == [("onellm", "gpt-4o-mini"), ("onetoken", "gpt-4o-mini")]
    assert sorted(tried[2:]) == sorted(tried[:2]), "each retried once, as its backoff came due"
    names = [e.name for e in events if e.name in ("failover", "fallback", "retry")]
    assert names[0] == "failover" and names[-1] == "fallback" and names.count("retry") == 2


async def test_failover_on_5xx_follows_its_order(emu: Emulator, graph: ProviderGraph) -> None:
    """FailoverOn5xx tries its primary first whatever the price, and moves on for a 5xx or a 429."""
    async with Router(graph, policy=FailoverOn5xx(["onetoken", "onellm"])) as router:
        assert (await router.chat("gpt-4o-mini", HI)).route.gateway == "onetoken"
        await emu.set_faults("onetoken", Faults(errors={503: 1.0}))
        reply = await router.chat("gpt-4o-mini", HI)
        assert [a.gateway for a in reply.route.attempts] == ["onetoken", "onellm"]
        await emu.set_faults("onetoken", Faults(errors={429: 1.0}))
        reply = await router.chat("gpt-4o-mini", HI)
        assert [(a.gateway, a.status) for a in reply.route.attempts] == [("onetoken", 429), ("onellm", 200)]
    async with Router(graph, policy=FailoverOn5xx(["onetoken", "onellm"], on=(ServerError,))) as router:
        await emu.set_faults("onetoken", Faults(errors={400: 1.0}))
        with pytest.raises(BadRequest):
            await router.chat("gpt-4o-mini", HI)  # a 400 never moves on


async def test_a_429_the_policy_does_not_move_on_from_is_retried_after_retry_after(
    fake_time: Loop,
) -> None:
    """FailoverOn5xx without RateLimited keeps a 429'd request on its gateway and retries it there
    after Retry-After; no other gateway sees it, and the caller gets the reply, not the 429."""
    started: list[tuple[float, str]] = []

    def watch(event: Event) -> None:
        if event.name == "attempt.started":
            started.append((fake_time.time(), event.gateway or ""))

    async with Emulator(seed=1) as emu:
        emu.set_tier("oneai", Tier(rpm=1))  # the client is not told the tier
        graph = ProviderGraph.from_catalogs(emu.gateways())
        policy = FailoverOn5xx(["oneai", "onerouter"], on=(ServerError,))
        async with Router(graph, policy=policy, hooks=[watch], deadline=120) as router:
            await router.chat("kimi", HI)
            reply = await router.chat("kimi", HI)
        assert [(a.gateway, a.status) for a in reply.route.attempts] == [("oneai", 429), ("oneai", 200)]
        assert emu.stats("onerouter").requests == 0
        assert emu.stats("oneai").statuses == {200: 2, 429: 1}
    assert [g for _, g in started] == ["oneai"] * 3
    assert started[2][0] - started[1][0] >= 59.0, "not before its Retry-After"

    async with Emulator(seed=1) as emu:
        emu.set_tier("oneai", Tier(rpm=1))
        graph = ProviderGraph.from_catalogs(emu.gateways())
        policy = FailoverOn5xx(["oneai", "onerouter"], on=(ServerError,))
        async with Router(graph, policy=policy, deadline=30) as router:
            await router.chat("kimi", HI)
            with pytest.raises(AllCandidatesFailed) as caught:
                await router.chat("kimi", HI)  # Retry-After is past the deadline: the 429 comes back
        assert [a.status for a in caught.value.attempts] == [429]
        assert emu.stats("onerouter").requests == 0


async def test_a_5xx_the_policy_does_not_move_on_from_is_retried_once_on_its_gateway(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """FailoverOn5xx listing only 429s keeps a 503'd request on its primary: one retry there, then the
    error with both attempts; the fallback gateway sees nothing."""
    await emu.set_faults("onetoken", Faults(errors={503: 1.0}))
    policy = FailoverOn5xx(["onetoken", "onellm"], on=(RateLimited,))
    async with Router(graph, policy=policy) as router:
        with pytest.raises(AllCandidatesFailed) as caught:
            await router.chat("gpt-4o-mini", HI)
    assert [(a.gateway, a.status) for a in caught.value.attempts] == [("onetoken", 503), ("onetoken", 503)]
    assert emu.stats("onellm").requests == 0


async def test_every_failover_event_in_order(emu: Emulator, graph: ProviderGraph) -> None:
    """One failover emits exactly this sequence of events."""
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    events: list[Event] = []
    async with Router(graph, hooks=[events.append]) as router:
        await router.chat("gpt-4o-mini", HI)
    assert [(e.name, e.gateway, e.outcome) for e in events] == [
        ("request.started", None, None),
        ("attempt.started", "onellm", None),
        ("attempt.finished", "onellm", "ServerError"),
        ("failover", "onetoken", None),
        ("attempt.started", "onetoken", None),
        ("attempt.finished", "onetoken", "ok"),
        ("request.finished", "onetoken", "ok"),  # the target that answered
    ]
    assert {e.request_id for e in events} == {1}
    assert events[0].detail == "gpt-4o-mini" and events[3].detail == "from onellm:GPT-4o-mini"
    assert [e.attempt for e in events if e.name.startswith("attempt.")] == [1, 1, 2, 2]


async def test_every_gateway_failing_raises_with_every_attempt(emu: Emulator, graph: ProviderGraph) -> None:
    """When all fail, AllCandidatesFailed carries each attempt and error; the first error is the cause."""
    await emu.set_faults("onellm", Faults(errors={503: 1.0}))
    await emu.set_faults("onetoken", Faults(errors={500: 1.0}))
    async with Router(graph, seed=1) as router:
        with pytest.raises(AllCandidatesFailed) as info:
            await router.chat("gpt-4o-mini", HI, deadline=30)
    error = info.value
    assert [a.gateway for a in error.attempts][:2] == ["onellm", "onetoken"]
    assert len(error.attempts) == 4, "each target once, then one retry each"
    assert error.__cause__ is error.errors[0] and error.errors[0].status == 503
    assert "503" in str(error) and "500" in str(error)


async def test_validation_happens_before_anything_is_sent(emu: Emulator, graph: ProviderGraph) -> None:
    """Bad input raises typed errors and the emulator receives nothing."""
    async with Router(graph) as router:
        with pytest.raises(UnknownModelError, match="did you mean 'gpt-4o-mini'"):
            await router.chat("gpt-4o-mimi", HI)
        with pytest.raises(ValidationError, match="temperature"):
            await router.chat("gpt-4o-mini", HI, temperature=3)
        with pytest.raises(ValidationError, match="role"):
            await router.chat("gpt-4o-mini", [{"role": "wizard", "content": "x"}])
        with pytest.raises(PromptTooLong, match="context window of 32,000"):
            await router.chat("qwen-max", HI, max_tokens=40_000)
        with pytest.raises(UnsupportedFeature, match="tools"):
            await router.chat("Sonnet-4", HI, tools=[{"type": "function", "function": {"name": "f"}}])
    assert sum(emu.stats(g).requests for g in ("onellm", "oneai", "onetoken", "onerouter")) == 0


async def test_price_cap_and_missing_keys_exclude_candidates(emu: Emulator) -> None:
    """max_cost_usd excludes unknown and dear offers; a gateway without a key is not tried."""
    gateways = emu.gateways()
    graph = ProviderGraph.from_catalogs(
        [*gateways[:1], gateways[1], type(gateways[2]).onetoken(None, base_url=emu.base_url("onetoken"))]
    )
    # OneLLM's DeepSeek-Chat (no price) is deepseek-v3's fallback here: DeepSeek's moving alias
    # joins no versioned model by itself.
    async with Router(graph, fallbacks={"deepseek-v3": ["deepseek-chat"]}) as router:
        reply = await router.chat("deepseek-v3", HI, max_tokens=10, max_cost_usd=0.01)
        assert reply.route.gateway == "oneai"
        with pytest.raises(NoCandidatesError) as info:
            await router.chat("deepseek-v3", HI, max_tokens=10, max_cost_usd=1e-9)
        reasons = {(g, m): why for g, m, why in info.value.exclusions}
        assert "over max_cost_usd" in reasons[("oneai", "deepseek-v3")]
        assert "price is unknown" in reasons[("onellm", "DeepSeek-Chat")]
        with pytest.raises(NoCandidatesError, match="no API key for onetoken"):
            await router.chat("gpt-4o-search-preview", HI)


async def test_context_length_rejection_moves_only_to_larger_windows(
    emu: Emulator, graph: ProviderGraph
) -> None:
    """A context-length 400 moves on only to a larger window; with none, the 400 reaches the caller."""

    class Underestimate:
        def prompt_tokens(self, request: Any) -> int:
            return 1

        def text_tokens(self, text: str) -> int:
            return 1

    async with Router(
        graph, estimator=Underestimate(), fallbacks={"qwen-max": ["glm-4", "qwen-coder"]}
    ) as router:
        reply = await router.chat("qwen-max", [{"role": "user", "content": "x" * 400}], max_tokens=31_990)
        assert reply.model == "glm-4"
        assert [a.outcome for a in reply.route.attempts] == ["ContextLengthExceeded", "ok"]
    async with Router(graph, estimator=Underestimate()) as router:
        with pytest.raises(ContextLengthExceeded) as info:
            await router.chat("qwen-max", [{"role": "user", "content": "x" * 400}], max_tokens=31_990)
        assert len(info.value.attempts) == 1


async def test_the_deadline_holds(emu: Emulator, graph: ProviderGraph, fake_time: Loop) -> None:
    """Every gateway hangs: the request ends at its deadline, not at the per-attempt timeout."""
    await emu.set_faults("onellm", Faults(outage="hang"))
    await emu.set_faults("onetoken", Faults(outage="hang"))
    async with Router(graph, timeout=30, deadline=45) as router:
        start = fake_time.time()
        with pytest.raises(DeadlineExceeded) as info:
            await router.chat("gpt-4o-mini", HI)
        assert fake_time.time() - start == pytest.approx(45, abs=0.5)
    assert [a.outcome for a in info.value.attempts] == ["UpstreamTimeout", "UpstreamTimeout"]
    assert isinstance(info.value, TimeoutError)


async def test_a_total_outage_cannot_multiply_traffic(emu: Emulator, graph: ProviderGraph) -> None:
    """With every gateway failing (breakers made inert), the shared budget alone caps extra attempts."""
    await emu.set_faults("onellm", Faults(errors={500: 1.0}))
    await emu.set_faults("onetoken", Faults(errors={500: 1.0}))
    budget = RetryBudget(ratio=0.5, min_per_second=0)
    inert = BreakerConfig(consecutive_failures=10**9, min_calls=10**9)
    async with Router(graph, retry_budget=budget, breaker=inert, seed=3) as router:
        for _ in range(100):
            with pytest.raises(AllCandidatesFailed):
                await router.chat("gpt-4o-mini", HI)
    sent = emu.stats("onellm").requests + emu.stats("onetoken").requests
    assert 100 <= sent <= 150, f"{sent} upstream requests for 100 callers"


async def test_breakers_stop_the_traffic_of_a_total_outage(emu: Emulator, graph: ProviderGraph) -> None:
    """With breakers on, after a few failures the outage fails fast, sending nothing."""
    await emu.set_faults("onellm", Faults(errors={500: 1.0}))
    await emu.set_faults("onetoken", Faults(errors={500: 1.0}))
    async with Router(graph, seed=3) as router:
        outcomes = []
        for _ in range(100):
            with pytest.raises((AllCandidatesFailed, NoCandidatesError)) as info:
                await router.chat("gpt-4o-mini", HI)
            outcomes.append(type(info.value).__name__)
    sent = emu.stats("onellm").requests + emu.stats("onetoken").requests
    assert sent <= 20, f"{sent} upstream requests for 100 callers"
    assert outcomes[-1] == "NoCandidatesError" and "circuit open" in str(info.value)


async def test_a_429_waits_for_retry_after_before_the_same_target(
    emu: Emulator, graph: ProviderGraph, fake_time: Loop
) -> None:
    """The only target answers 429 with Retry-After: 1; it is asked again only a second or more later."""
    await emu.set_faults("onellm", Faults(errors={429: 1.0}))
    await emu.set_faults("onetoken", Faults(outage="refuse"))
    events: list[Event] = []
    starts: list[float] = []

    def watch(event: Event) -> None:
        events.append(event)
        if event.name == "attempt.started" and event.gateway == "onellm":
            starts.append(fake_time.time())

    async with Router(graph, hooks=[watch], seed=0) as router:
        with pytest.raises(AllCandidatesFailed):
            await router.chat("gpt-4o-mini", HI, deadline=5)
    assert len(starts) >= 3, "a 429 is retried after each Retry-After while the deadline allows"
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(starts))
    retries = [e for e in events if e.name == "retry" and e.gateway == "onellm"]
    assert retries and all(e.latency is not None and e.latency >= 1.0 for e in retries)


async def test_explain_ranks_and_excludes_without_sending(emu: Emulator, graph: ProviderGraph) -> None:
    """explain() gives the order with reasons and each exclusion, and sends nothing."""
    async with Router(graph, fallbacks={"gpt-4o-mini": ["deepseek-v3", "deepseek-chat"]}) as router:
        plan = router.explain("GPT-4o-mini", HI, max_tokens=100)
    assert [(c.rank, c.gateway, c.fallback) for c in plan.candidates] == [
        (1, "onellm", 0),
        (2, "onetoken", 0),
        (3, "oneai", 1),
        (4, "onellm", 2),
    ]
    assert "expected $0.000041" in plan.candidates[0].reason
    assert plan.candidates[3].reason.startswith("price unknown")
    assert plan.model == "gpt-4o-mini" and plan.output_tokens == 100
    text = str(plan)
    assert "1. onellm:GPT-4o-mini" in text and "(fallback 1: deepseek-v3)" in text
    tools = router.explain("gpt-4o-mini", HI, tools=[{"type": "function", "function": {"name": "f"}}])
    assert [(e.gateway, e.model, e.reason) for e in tools.excluded] == [
        ("onellm", "gpt-4o-mini", "cannot carry tools"),
        ("onellm", "deepseek-chat", "cannot carry tools"),
    ]
    assert sum(emu.stats(g).requests for g in ("onellm", "oneai", "onetoken", "onerouter")) == 0


async def test_a_plan_leaves_out_an_open_breaker_and_takes_it_back_once_closed(
    emu: Emulator, graph: ProviderGraph
) -> None:
    """With every breaker closed a plan passes a tier whole; one open breaker anywhere sends
    planning back to offer-by-offer checks, until it closes again."""
    async with Router(graph, breaker=BreakerConfig(jitter=0.0), seed=0) as router:
        assert [c.gateway for c in router.explain("gpt-4o-mini", HI).candidates] == ["onellm", "onetoken"]
        breaker = router.health.breaker("onellm")
        assert isinstance(breaker, CircuitBreaker)
        now = asyncio.get_running_loop().time()
        breaker.force_open(now, 60.0, "test")
        plan = router.explain("gpt-4o-mini", HI)
        assert [c.gateway for c in plan.candidates] == ["onetoken"]
        assert [(e.gateway, e.reason.split(" (")[0]) for e in plan.excluded] == [
            ("onellm", "circuit open for onellm")
        ]
        permission, _ = breaker.acquire(now + 61.0)  # the break has passed: half-open, one probe
        assert permission is not None and breaker.state is BreakerState.HALF_OPEN
        assert [c.gateway for c in router.explain("gpt-4o-mini", HI).candidates] == ["onetoken"]
        breaker.success(permission, now + 61.0)
        assert [c.gateway for c in router.explain("gpt-4o-mini", HI).candidates] == ["onellm", "onetoken"]


async def test_a_tier_reordered_for_dropped_parameters_is_not_kept_as_a_price_chain(
    emu: Emulator, graph: ProviderGraph
) -> None:
    """A request whose parameters some target drops reorders its tier per request; the policy's
    per-tier price chains are kept only for the tiers themselves, not one per request."""
    cheapest = CheapestPerToken()
    async with Router(graph, policy=cheapest) as router:
        for _ in range(5):
            router.explain("gpt-4o-mini", HI)  # the tier as it is
            router._planner.plan(ChatRequest.create("gpt-4o-mini", HI, seed=1), stream=False)
        kept = len(cheapest._chains)
        for _ in range(20):
            router._planner.plan(ChatRequest.create("gpt-4o-mini", HI, seed=1), stream=False)
        assert len(cheapest._chains) == kept <= 1


def test_from_env_builds_the_gateways_it_has_keys_for(emu: Emulator) -> None:
    """Router.from_env takes keys, base URLs and tiers from the environment."""
    env = {
        "ONEAI_API_KEY": "k1",
        "ONEAI_BASE_URL": emu.base_url("oneai"),
        "ONEAI_TIER": "free",
        "ONELLM_API_KEY": "k2",
        "ONELLM_CHAT_PATH": "/v1/chat/completions",
    }
    router = Router.from_env(env)
    gateways = router.graph.gateways
    assert list(gateways) == ["onellm", "oneai"]
    assert gateways["oneai"].base_url == emu.base_url("oneai") and gateways["oneai"].tier is not None
    assert gateways["onellm"].chat_path == "/v1/chat/completions"
    with pytest.raises(Exception, match="ONEAI_API_KEY"):
        Router.from_env({})
    with pytest.raises(Exception, match="free' or 'pro"):
        Router.from_env({"ONEAI_API_KEY": "k", "ONEAI_TIER": "gold"})


@pytest.mark.parametrize("bad", [0, -1, float("nan"), True, "30"])
async def test_a_deadline_that_is_no_positive_number_is_refused_before_sending(
    emu: Emulator, graph: ProviderGraph, bad: object
) -> None:
    """A router's deadline and one request's are positive numbers of seconds: not 0, negative,
    NaN (which no comparison would ever end), a bool or a string; nothing is sent."""
    with pytest.raises(ConfigError, match="deadline must be a positive number"):
        Router(graph, deadline=bad)  # type: ignore[arg-type]
    async with Router(graph) as router:
        with pytest.raises(ConfigError, match="deadline must be a positive number"):
            await router.chat("gpt-4o-mini", HI, deadline=bad)  # type: ignore[arg-type]
    assert emu.stats("onellm").requests == 0 and emu.stats("onetoken").requests == 0
