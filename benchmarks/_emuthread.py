"""Where the bench's emulator runs: its own thread and loop (the bench), or the caller's loop (tests).

The router under test keeps the main thread to itself, so ``time.thread_time()``
there is the router's CPU alone, while the emulator answers from its own loop.
:class:`InLoopEmulator` offers the same two calls on the caller's loop, so the
cells can run on fake loop time in tests (their CPU figures then include the
emulator's, and mean nothing).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Protocol, TypeVar

from ..providers.emulator import Emulator

__all__ = ["EmulatorHost", "EmulatorThread", "InLoopEmulator"]

T = TypeVar("T")


class EmulatorHost(Protocol):
    """A running emulator the bench can reach from its loop."""

    emulator: Emulator | None

    async def call(self, action: Callable[[Emulator], T]) -> T:
        """Run ``action(emulator)`` where the emulator lives; its result here."""
        ...

    async def run(self, action: Callable[[Emulator], Coroutine[Any, Any, T]]) -> T:
        """Await ``action(emulator)`` where the emulator lives; its result here."""
        ...


class InLoopEmulator:
    """An emulator on the caller's own loop, behind the same calls as :class:`EmulatorThread`."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator: Emulator | None = emulator

    async def call(self, action: Callable[[Emulator], T]) -> T:
        """Run ``action(emulator)``."""
        assert self.emulator is not None
        return action(self.emulator)

    async def run(self, action: Callable[[Emulator], Coroutine[Any, Any, T]]) -> T:
        """Await ``action(emulator)``."""
        assert self.emulator is not None
        return await action(self.emulator)


class EmulatorThread:
    """Runs an :class:`Emulator` on a background thread; call into it from the main loop."""

    def __init__(self, seed: int = 0) -> None:
        self._seed = seed
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="switchyard-emulator", daemon=True)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.emulator: Emulator | None = None

    def start(self) -> EmulatorThread:
        """Start the thread and wait until the emulator listens."""
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error
        if self.emulator is None:
            raise RuntimeError("the emulator did not start within 30 s")
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()
        finally:
            loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        async with Emulator(seed=self._seed) as emulator:
            self.emulator = emulator
            self._ready.set()
            await self._stop.wait()

    async def call(self, action: Callable[[Emulator], T]) -> T:
        """Run ``action(emulator)`` on the emulator's loop and await its result here."""

        async def run(emulator: Emulator) -> T:
            return action(emulator)

        return await self.run(run)

    async def run(self, action: Callable[[Emulator], Coroutine[Any, Any, T]]) -> T:
        """Await ``action(emulator)`` on the emulator's loop and its result here."""
        assert self._loop is not None and self.emulator is not None
        future = asyncio.run_coroutine_threadsafe(action(self.emulator), self._loop)
        return await asyncio.wrap_future(future)

    def stop(self) -> None:
        """Stop the emulator and join the thread."""
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()
