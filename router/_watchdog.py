"""One timer per stream, not one per event: each read of an upstream must end within its limit.

``asyncio.timeout`` around every read schedules and cancels a timer handle per
event (a few microseconds each, most of a stream's routing cost). A
:class:`Watchdog` keeps one handle: a read only records its deadline; the handle,
when it fires, cancels the reading task if the read it finds is past its deadline,
and otherwise moves itself to that read's deadline (or lapses when no read is
waiting; the next read arms it again). A stall of ``limit`` seconds is caught
within the same ``limit``; a 20 s stall limit over 20 ms events costs one timer
per 20 s instead of a thousand.

Cancellation is told apart the way ``asyncio.timeout`` does it: the watchdog
counts its own ``Task.cancel()`` and undoes it with ``Task.uncancel()``, so a
cancellation from outside still propagates.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import TypeVar

__all__ = ["Stalled", "Watchdog"]

T = TypeVar("T")


class Stalled(Exception):
    """Internal: a read outlived its limit."""


class Watchdog:
    """The read deadlines of one stream, watched by one timer handle."""

    __slots__ = ("_deadline", "_fired", "_handle", "_loop", "_task", "_when")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._when = math.inf  # when the handle fires; inf: there is none
        self._task: asyncio.Task[object] | None = None
        self._deadline = math.inf  # the waiting read's; inf: none is waiting
        self._fired = False

    async def read(self, events: AsyncIterator[T], limit: float) -> T:
        """The next item of ``events`` within ``limit`` seconds.

        Raises:
            Stalled: the limit passed first.
            StopAsyncIteration: ``events`` ended.
        """
        cancelling = self.arm(limit)
        try:
            return await anext(events)
        except asyncio.CancelledError:
            if self.stalled(cancelling):
                raise Stalled from None
            raise
        finally:
            self.disarm()

    def arm(self, limit: float) -> int:
        """Time the read the current task starts now, for ``limit`` seconds.

        :meth:`read`, for a caller that awaits the read itself (one coroutine less
        per event): call this, await the read, call :meth:`stalled` if it was
        cancelled, and :meth:`disarm` when it is over, whatever happened. Returns
        the task's count of cancellations under way, which :meth:`stalled` takes.
        """
        loop = self._loop
        task = asyncio.current_task(loop)
        assert task is not None
        self._task = task
        deadline = loop.time() + limit
        self._deadline = deadline
        if deadline < self._when:  # no timer, or one set for later
            if self._handle is not None:
                self._handle.cancel()
            self._handle = loop.call_at(deadline, self._check)
            self._when = deadline
        return task.cancelling()

    def stalled(self, cancelling: int) -> bool:
        """Whether the read just cancelled was cancelled by the watchdog alone (its limit
        passed); its cancellation is then undone. False: the cancel came from outside."""
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None
        return self._task.uncancel() <= cancelling

    def disarm(self) -> None:
        """The read is over: no read is waiting."""
        self._deadline = math.inf

    def _check(self) -> None:
        self._handle = None
        self._when = math.inf
        deadline = self._deadline
        if deadline == math.inf:
            return  # no read is waiting: the next one arms the timer
        if self._loop.time() >= deadline - 1e-9:
            assert self._task is not None
            self._fired = True
            self._task.cancel()
        else:
            self._handle = self._loop.call_at(deadline, self._check)
            self._when = deadline

    def close(self) -> None:
        """Stop watching (the stream ended)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._when = math.inf
        self._deadline = math.inf
