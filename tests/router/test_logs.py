"""Logs(): one INFO record per request, one WARNING per failed attempt, with structured extra fields."""

from __future__ import annotations

import asyncio
import logging

import looptime
import pytest
from switchyard.providers import NoCandidatesError, ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Logs, Router

from .conftest import HI


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "switchyard"]


async def test_a_failover_logs_the_failed_attempt_then_the_request(
    caplog: pytest.LogCaptureFixture, emu: Emulator, graph: ProviderGraph
) -> None:
    """A 502 then an answer: a WARNING for the failed attempt, an INFO for the request, with their fields."""
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    caplog.set_level(logging.INFO, logger="switchyard")
    async with Router(graph, hooks=[Logs()]) as router:
        reply = await router.chat("gpt-4o-mini", HI, max_tokens=5)
    attempt, request = _records(caplog)
    assert attempt.levelno == logging.WARNING
    assert attempt.getMessage().startswith(
        "request 1 attempt 1 at onellm:GPT-4o-mini failed: ServerError (HTTP 502)"
    )
    assert {
        k: getattr(attempt, k) for k in ("request_id", "attempt", "gateway", "model", "outcome", "status")
    } == {
        "request_id": 1,
        "attempt": 1,
        "gateway": "onellm",
        "model": "gpt-4o-mini",
        "outcome": "ServerError",
        "status": 502,
    }
    assert request.levelno == logging.INFO
    assert request.getMessage().startswith("request 1 gpt-4o-mini: ok after 2 attempt(s) in ")
    fields = (
        "request_id",
        "model",
        "outcome",
        "attempts",
        "gateway",
        "input_tokens",
        "output_tokens",
        "cost_usd",
    )
    assert {k: getattr(request, k) for k in fields} == {
        "request_id": 1,
        "model": "gpt-4o-mini",
        "outcome": "ok",
        "attempts": 2,
        "gateway": "onetoken",
        "input_tokens": reply.usage.prompt_tokens,
        "output_tokens": reply.usage.completion_tokens,
        "cost_usd": reply.cost_usd,
    }
    assert request.duration_s > 0


async def test_a_stream_logs_its_time_to_first_chunk(
    caplog: pytest.LogCaptureFixture,
    emu: Emulator,
    graph: ProviderGraph,
    fake_time: looptime.LoopTimeEventLoop,
) -> None:
    """A streamed request's record carries ttft_s."""
    await emu.set_faults("oneai", Faults(ttft=0.25))
    caplog.set_level(logging.INFO, logger="switchyard")
    async with (
        Router(graph, hooks=[Logs()]) as router,
        router.stream("deepseek-v3", HI, max_tokens=5) as stream,
    ):
        async for _ in stream:
            pass
    (record,) = _records(caplog)
    assert record.outcome == "ok" and record.ttft_s == pytest.approx(0.25, abs=1e-3)


async def test_cancelled_and_rejected_requests_are_one_line_each(
    caplog: pytest.LogCaptureFixture,
    emu: Emulator,
    graph: ProviderGraph,
    fake_time: looptime.LoopTimeEventLoop,
) -> None:
    """A cancelled request logs one INFO line (its attempt is not a failure); a rejected one logs one too."""
    await emu.set_faults("onellm", Faults(latency=30.0))
    caplog.set_level(logging.INFO, logger="switchyard")
    async with Router(graph, hooks=[Logs()]) as router:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(router.chat("gpt-4o-mini", HI), 1.0)
        with pytest.raises(NoCandidatesError):
            await router.chat("gpt-4o-mini", HI, max_cost_usd=1e-12)
    cancelled, rejected = _records(caplog)
    assert (cancelled.levelno, cancelled.outcome, cancelled.attempts) == (logging.INFO, "cancelled", 1)
    assert (rejected.levelno, rejected.outcome, rejected.attempts) == (logging.INFO, "NoCandidatesError", 0)
    assert not hasattr(cancelled, "gateway")


async def test_nothing_is_logged_without_the_hook(
    caplog: pytest.LogCaptureFixture, emu: Emulator, graph: ProviderGraph
) -> None:
    """Off by default: a router without Logs() writes no record to the switchyard logger, even on failures."""
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    caplog.set_level(logging.DEBUG)
    async with Router(graph) as router:
        await router.chat("gpt-4o-mini", HI)
    assert [r for r in caplog.records if r.name.startswith("switchyard")] == []


async def test_a_disabled_logger_costs_no_record(emu: Emulator, graph: ProviderGraph) -> None:
    """With the logger above WARNING, nothing is built or handled."""
    handled: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            handled.append(record)

    logger = logging.Logger("switchyard-quiet", level=logging.ERROR)  # not registered: no global state
    logger.addHandler(Keep())
    await emu.set_faults("onellm", Faults(errors={502: 1.0}))
    async with Router(graph, hooks=[Logs(logger)]) as router:
        await router.chat("gpt-4o-mini", HI)
    assert handled == []
