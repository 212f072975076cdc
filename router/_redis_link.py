"""A :class:`~._redis.RedisStore`'s line to Redis: one connection made on first use, the scripts
loaded, and a lane that writes what is queued and reads the answers in order.

- **The lane.** Operations queue, and what was queued in one turn of the event loop
  goes out in one write, in order, without waiting for earlier answers (RESP
  pipelining: Redis answers one connection's commands in the order they came, and
  one reader takes the answers in that order). So a settle queued before an admit
  reaches Redis before it, and an admission is one round trip whatever is out before
  it. Writes nobody waits for (settles, records of successes) wait while answers
  are due, unless someone waits behind them: a busy lane gathers many requests'
  writes into one (each write is a system call).
- **Bounded.** Each answer may take ``timeout`` seconds from its write, of Redis's
  time: a timer that fires late because this process's loop was busy (the answer may
  be sitting unread) starts again, twice at most. Connecting (the first call of a
  process, and each reconnection, which happens in the background) gets
  ``connect_timeout``.
- **Degrade, never fail.** When Redis does not answer in time, refuses the connection
  or has lost the scripts, the link goes *down*: it logs one warning (logger
  ``switchyard``), leaves a ``store.fallback`` notice for the next request to report,
  and from then on answers every operation at once as unavailable, so the store
  serves it from local state. A background task reconnects with exponential backoff
  (equal jitter, after the AWS Architecture Blog's "Exponential Backoff and Jitter",
  so a fleet that lost Redis together does not hammer it back in step), reloads the
  scripts, and once Redis answers, logs, leaves ``store.recovered``, and goes up.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import urllib.parse
from collections.abc import Callable, Sequence
from typing import Final

from ._redis_conn import Arg, Connection, evalsha, where
from ._redis_mirror import Reply
from ._store import Notice

__all__ = ["Arg", "Link", "OnReply", "Unavailable"]

logger: Final = logging.getLogger("switchyard")

OnReply = Callable[[Reply, float], None]
"""Called with a script's answer and the loop time it arrived."""


class Unavailable(Exception):
    """Internal: Redis is down, or did not answer in time; answer from local state."""


class _Op:
    """One script call waiting in the lane."""

    __slots__ = ("args", "future", "keys", "on_reply", "script")

    def __init__(
        self,
        script: str,
        keys: tuple[str, ...],
        args: Sequence[Arg],
        on_reply: OnReply | None,
        future: asyncio.Future[Reply | None] | None,
    ) -> None:
        self.script = script
        self.keys = keys
        self.args = args
        self.on_reply = on_reply
        self.future = future

    def done(self, reply: Reply, now: float) -> None:
        if self.on_reply is not None:
            try:
                self.on_reply(reply, now)
            except Exception:  # a bug here must not stop the lane
                logger.exception("switchyard: handling a Redis answer to %s failed", self.script)
        if self.future is not None and not self.future.done():
            self.future.set_result(reply)

    def fail(self) -> None:
        # None, not an exception: nobody may be left to retrieve it (its caller timed out).
        if self.future is not None and not self.future.done():
            self.future.set_result(None)


def _fail(ops: Sequence[_Op]) -> None:
    for op in ops:
        op.fail()


class Link:
    """The connection, the lane, and the up/down state (see the module docstring).

    Attributes:
        round_trips: writes to Redis (each carries every call one turn of the loop queued).
        outages: times it went down.
        fallbacks: operations answered from local state because it was down or slow.
        dropped: background writes that could not be sent (their leases and TTLs heal it).
    """

    __slots__ = (
        "_conn",
        "_flusher",
        "_loop",
        "_password",
        "_queue",
        "_reader",
        "_reconnector",
        "_sent",
        "_url",
        "_wake",
        "connect_timeout",
        "down",
        "dropped",
        "fallbacks",
        "notices",
        "outages",
        "round_trips",
        "timeout",
        "where",
    )

    def __init__(self, url: str, timeout: float) -> None:
        Connection(url)  # the URL is redis-py's to refuse, here, and redis-py imported once, now
        self._url = url
        self._password = urllib.parse.urlsplit(url).password
        self.where = where(url)
        self.timeout = timeout
        # Connecting (a TCP handshake, the scripts loaded) may take longer than one call: the first
        # call and each reconnection get this long. Only the first call of a process waits for it.
        self.connect_timeout = max(10 * timeout, 0.25)
        self._conn: Connection | None = None  # made on the loop that first uses it
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: list[_Op] = []  # to write
        self._sent: collections.deque[tuple[_Op, float]] = collections.deque()  # written: answers due
        self._flusher: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._reconnector: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None  # the flusher's: someone waits, or answers are in
        self.down = False
        self.round_trips = self.outages = self.fallbacks = self.dropped = 0
        self.notices: list[Notice] = []

    # -- sending -----------------------------------------------------------------------------

    def submit(
        self, script: str, keys: tuple[str, ...], args: Sequence[Arg], on_reply: OnReply | None = None
    ) -> None:
        """Queue one script call; nobody waits for it (its answer goes to ``on_reply``).

        Raises:
            Unavailable: the link is down.
        """
        self._enqueue(_Op(script, keys, args, on_reply, None))

    def ask(
        self, script: str, keys: tuple[str, ...], args: Sequence[Arg], on_reply: OnReply | None = None
    ) -> asyncio.Future[Reply | None]:
        """Queue one script call; the future of its answer (None: Redis did not give one).

        Raises:
            Unavailable: the link is down.
        """
        future: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()
        self._enqueue(_Op(script, keys, args, on_reply, future))
        return future

    async def wait(self, future: asyncio.Future[Reply | None]) -> Reply:
        """The answer of an :meth:`ask` (the lane bounds it). A caller cancelled meanwhile cancels
        only the future: the call still goes out, and its answer still reaches its ``on_reply``.

        Raises:
            Unavailable: Redis gave no answer in time.
        """
        reply = await future
        if reply is None:
            raise Unavailable
        return reply

    def _enqueue(self, op: _Op) -> None:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            self._bind(loop)
        if self.down:
            raise Unavailable
        self._queue.append(op)
        if op.future is not None and self._wake is not None:
            self._wake.set()
        if self._flusher is None:
            self._flusher = loop.create_task(self._flush())

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """First use, or use from another loop: a client belongs to one loop, so start afresh."""
        self._loop = loop
        self._conn, self._queue, self._sent = None, [], collections.deque()
        self._flusher = self._reader = self._reconnector = None
        self._wake = asyncio.Event()
        self.down = False

    async def _flush(self) -> None:
        """Write what is queued, turn by turn; the reader takes the answers."""
        loop = asyncio.get_running_loop()
        try:
            while self._queue:
                wake = self._wake
                if (
                    wake is not None
                    and self._sent
                    and not self.down
                    and all(op.future is None for op in self._queue)
                ):
                    # Only writes nobody waits for, and answers still due: they gather until those
                    # are in or someone waits (each write is a system call; a busy lane makes few).
                    wake.clear()
                    await wake.wait()
                    continue
                batch, self._queue = self._queue, []
                if self.down:
                    _fail(batch)
                    continue
                try:
                    if self._conn is None:
                        self._conn = Connection(self._url)
                    conn = self._conn
                    # Connecting and writing are bounded plainly: a write waits only when the
                    # socket's buffer is full, and connecting has connect_timeout to spare.
                    async with asyncio.timeout(self.timeout if conn.loaded else self.connect_timeout):
                        await conn.open()
                        await conn.write(b"".join(evalsha(op.script, op.keys, op.args) for op in batch))
                except asyncio.CancelledError:
                    _fail(batch)
                    raise
                except Exception as exc:  # a timeout, a refused or lost connection
                    self.went_down(exc)
                    _fail(batch)
                    continue
                sent = loop.time()
                self._sent.extend((op, sent) for op in batch)
                self.round_trips += 1
                if self._reader is None:
                    self._reader = loop.create_task(self._read(conn))
        finally:
            self._flusher = None

    async def _read(self, conn: Connection) -> None:
        """Take the answers in the order of the writes, each within ``timeout`` of its write (one
        timer per write, not per answer: the answers of one write share its deadline)."""
        loop = asyncio.get_running_loop()
        bound = self.timeout
        try:
            async with asyncio.timeout(None) as scope:
                timer: list[asyncio.TimerHandle | None] = [None]
                armed = -1.0

                def check(deadline: float, again: int) -> None:
                    now = loop.time()
                    if now - deadline > bound / 2 and again > 0:  # late: the loop was busy
                        timer[0] = loop.call_at(now + bound, check, now + bound, again - 1)
                    else:
                        scope.reschedule(now)  # on time, or late too often: it is Redis

                while self._sent and conn is self._conn:
                    deadline = self._sent[0][1] + bound
                    if deadline != armed:
                        if timer[0] is not None:
                            timer[0].cancel()
                        timer[0], armed = loop.call_at(deadline, check, deadline, 2), deadline
                    reply = await conn.read()
                    if not self._sent or conn is not self._conn:
                        return  # gone down meanwhile: its operations have been failed
                    op, _ = self._sent.popleft()
                    if not self._sent and self._wake is not None:
                        self._wake.set()
                    if isinstance(reply, bytes):
                        op.done(reply.split(), loop.time())
                    else:
                        op.fail()
                        self.went_down(reply)  # NOSCRIPT (a restarted or flushed server), or a script error
                if timer[0] is not None:
                    timer[0].cancel()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a timeout, a lost connection
            self.went_down(exc)
        finally:
            if self._reader is asyncio.current_task():
                self._reader = None

    # -- down and up again -------------------------------------------------------------------

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            bounds = f"{self.timeout * 1000:g} ms a call, {self.connect_timeout * 1000:g} ms to connect"
            return f"no answer in time: {bounds}"
        text = f"{type(exc).__name__}: {exc}"
        return text.replace(self._password, "***") if self._password else text

    def went_down(self, exc: BaseException) -> None:
        """Redis failed: answer locally from now on, say so once, and start reconnecting."""
        if self.down:
            return
        self.down = True
        self.outages += 1
        detail = (
            f"Redis at {self.where} failed ({self._describe(exc)}); limits and breakers are this "
            "process's own (each tier divided by the replicas) until it answers again"
        )
        logger.warning("switchyard: %s", detail)
        self.notices.append(Notice("store.fallback", detail))
        # What was written and not answered never will be here: those callers go local now.
        sent, self._sent = self._sent, collections.deque()
        _fail([op for op, _ in sent])
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
        if self._wake is not None:
            self._wake.set()
        self._reconnector = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self, first: float = 0.05, most: float = 2.0) -> None:
        step = first
        while True:
            await asyncio.sleep(step / 2 + random.uniform(0.0, step / 2))
            step = min(step * 2, most)
            old, self._conn = self._conn, Connection(self._url)
            if old is not None:
                await self._close(old)
            try:
                async with asyncio.timeout(self.connect_timeout):
                    await self._conn.open()
            except Exception:
                continue
            break
        self.down = False
        self._reconnector = None
        detail = f"Redis at {self.where} answers again; limits and breakers are shared again"
        logger.info("switchyard: %s", detail)
        self.notices.append(Notice("store.recovered", detail))

    async def _close(self, conn: Connection) -> None:
        try:
            async with asyncio.timeout(self.connect_timeout):
                await conn.close()
        except Exception:
            logger.debug("switchyard: closing a Redis client failed", exc_info=True)

    def take_notices(self) -> tuple[Notice, ...]:
        """What happened since last asked (emptied)."""
        if not self.notices:
            return ()
        notices, self.notices = tuple(self.notices), []
        return notices

    async def aclose(self) -> None:
        """Send what is queued (bounded), stop reconnecting, and close the client; the next
        operation connects again."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            return  # never used on this loop: nothing of it to close
        # Flush, then let the answers' callbacks run (an admission nobody waited for queues its
        # undoing), and flush what they queued, within a bound.
        deadline = loop.time() + max(5 * self.timeout, 0.1)
        await asyncio.sleep(0)
        while self._flusher is not None or self._queue or self._sent:
            pending = [task for task in (self._flusher, self._reader) if task is not None]
            if loop.time() >= deadline or not pending:
                break
            await asyncio.wait(pending, timeout=deadline - loop.time())
            await asyncio.sleep(0)
        for task in (self._flusher, self._reader):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        self._flusher = self._reader = None
        _fail(self._queue)
        _fail([op for op, _ in self._sent])
        self._queue, self._sent = [], collections.deque()
        reconnector, self._reconnector = self._reconnector, None
        if reconnector is not None:
            reconnector.cancel()
            await asyncio.gather(reconnector, return_exceptions=True)
        conn, self._conn = self._conn, None
        self.down = False
        if conn is not None:
            await self._close(conn)
