"""The stream watchdog: one timer per stream, stalls caught within their limit, outside cancels kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import looptime
import pytest
from switchyard.router._watchdog import Stalled, Watchdog

Loop = looptime.LoopTimeEventLoop


async def _events(n: int, every: float, stall_at: int | None = None) -> AsyncIterator[int]:
    for i in range(n):
        await asyncio.sleep(60.0 if i == stall_at else every)
        yield i


async def test_a_thousand_events_cost_a_handful_of_timers(fake_time: Loop, monkeypatch: Any) -> None:
    """1,000 reads 10 ms apart under a 1 s limit schedule about one timer per second, not one per read."""
    scheduled = 0
    call_at = fake_time.call_at

    def counting(when: float, callback: Any, *args: Any, **kwargs: Any) -> asyncio.TimerHandle:
        nonlocal scheduled
        if getattr(callback, "__self__", None).__class__ is Watchdog:
            scheduled += 1
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(fake_time, "call_at", counting)
    watchdog = Watchdog()
    events = _events(1000, 0.01)
    got = [await watchdog.read(events, 1.0) for _ in range(1000)]
    watchdog.close()
    assert got == list(range(1000))
    assert scheduled <= 15


async def test_a_stall_is_caught_within_its_limit(fake_time: Loop) -> None:
    """The 4th event never comes in time: Stalled after the 2 s limit, not at the 60 s the source waits."""
    watchdog = Watchdog()
    events = _events(10, 0.1, stall_at=3)
    start = fake_time.time()
    for _ in range(3):
        await watchdog.read(events, 2.0)
    with pytest.raises(Stalled):
        await watchdog.read(events, 2.0)
    assert fake_time.time() - start == pytest.approx(0.3 + 2.0, abs=0.01)


async def test_a_cancel_from_outside_is_not_taken_for_a_stall(fake_time: Loop) -> None:
    """Cancelling the reading task raises CancelledError, and the watchdog fires nothing later."""
    watchdog = Watchdog()
    events = _events(10, 5.0)
    task = asyncio.create_task(watchdog.read(events, 10.0))
    await asyncio.sleep(1.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(20.0)  # past the read's deadline: nothing to cancel
    watchdog.close()


async def test_slow_consumers_are_not_stalls(fake_time: Loop) -> None:
    """Time the caller spends between reads does not count against the next read's limit."""
    watchdog = Watchdog()
    events = _events(5, 0.1)
    for _ in range(5):
        await watchdog.read(events, 1.0)
        await asyncio.sleep(3.0)  # the caller is busy longer than the limit
    watchdog.close()
