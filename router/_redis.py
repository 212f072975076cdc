"""RedisStore: admission and health shared by every process on one Redis server.

``Router(graph, store=RedisStore("redis://127.0.0.1:6379", namespace="my-service"))``
runs the store's operations (``_store.py``) as Lua scripts (``_redis_lua.py``), so
N processes hold one tier between them, not N tiers, and a breaker one of them opens
keeps the others off. What is shared, and what stays in each process:

- **Shared, in Redis**: each tiered account's requests/min and tokens/min (GCRA),
  its requests in flight (slot leases), its 429 closure; each breaker's state,
  failure window, consecutive failures, slow trips in a row, period (epoch) and
  half-open probe permits (leases: one probe in flight across the fleet).
- **Per process**: the cap at the HTTP client's connections per host and slow
  start (both are about this process's connection pool and its own view of a
  gateway), latency statistics (the policies learn them locally), and the
  break jitter, drawn here and passed into the script.

**Time.** Scripts read the server's clock; durations go in and come back relative
to it, and are turned into this process's loop time on arrival.

**Cost.** One round trip per admission of a tiered account (its script, written with
whatever else that turn of the loop queued); none on an untiered account whose
breakers were learned within ``refresh`` seconds and are closed (the fast path:
the permission is granted from what this process last learned, and each outcome's
record tells it what changed). Ending a call (settle, a success's record, a 429's
closure) is written without anyone waiting for its answer; a record that may
change a breaker's state is awaited, to report the transition.

**Ending is never lost to a cancellation**: an ending operation is queued before
anything is awaited, and a queued operation is sent whatever happens to its caller.

**A slot held by another process** frees without telling this one, so a request
waiting for one is deferred until the soonest lease expires or about ``poll``
seconds (jittered), whichever is first, and asks again.

**Reads** (``peek``, ``breaker``, ``snapshot``) never do I/O: they answer from what
the last script told this process (``_redis_mirror.py``), "as last known".

**Degrade, never fail.** Each call waits at most ``timeout``; when Redis is slow or
down, operations are answered from a local :class:`MemoryStore` whose tiers are
divided by ``replicas``, one warning is logged, a ``store.fallback`` event is
emitted, and the store reconnects in the background (``_redis_link.py``).

What this costs in exactness, knowingly:

- On the fast path an untiered gateway's breakers may be up to ``refresh`` seconds
  old: a breaker another process just opened is learned from this process's next
  answer from Redis (the first failure's record brings it), or after ``refresh``.
- A script that ran but whose answer never came back (Redis stalled past the bound)
  holds what it took until its lease expires or its key's TTL: slots and probes
  after ``lease``, tokens as the bucket refills.
- After an outage, what was admitted locally ends locally, alongside what Redis
  admits again: for that while the fleet may exceed a tier by the local shares.
- Keys of one gateway share a hash tag (``_redis_lua.py``), so a Redis Cluster
  keeps each script's keys in one slot.
"""

from __future__ import annotations

import itertools
import random
import uuid
from collections.abc import Callable, Mapping

import attrs

from ..policies import AccountLimits, AccountSnapshot, Deferral, Reservation
from ..providers import ConfigError, Tier
from ._breaker import BreakerConfig, BreakerState, Permission
from ._redis_link import Link, Unavailable
from ._redis_mirror import Mirrors
from ._redis_ops import admit, close, record, settle
from ._redis_parts import Held, Leases, Parts, Pass, check, seconds
from ._store import Account, Admitted, BreakerView, MemoryStore, Permit, Reported, Verdict

__all__ = ["RedisStore"]

_NONE: list[Reported] = []  # shared and never appended to: "no transitions"


class RedisStore:
    """Limits and breakers shared by every process on one Redis server (see the module docstring).

    Args:
        url: the server: ``redis://[[user]:password@]host[:port][/db]``, ``rediss://`` (TLS) or
            ``unix://path``. The password never appears in a log line or a repr.
        namespace: names this fleet's keys. Processes that share accounts (the same keys at
            the same gateways) use the same namespace; any others, another one.
        replicas: how many processes are expected to share the accounts: while Redis is
            unreachable, each holds itself to every tier divided by this (at least 1 each).
        timeout: the longest one call to Redis may take, in seconds (20 ms); past it the
            operation is answered from local state.
        lease: how long a slot or a probe permit outlives a process that stopped renewing
            it (one that crashed); held ones are renewed every third of it.
        poll: about how long a request waiting for a slot another process holds waits
            before asking again (jittered by half either way).
        refresh: how long an untiered gateway's closed breakers, as last learned, are trusted
            without asking Redis (0: always ask).
        seed: seeds the break jitter and the poll jitter.

    Attributes:
        available: whether Redis is answering.
        fallbacks, outages, dropped, round_trips: counters (see each).

    Raises:
        ConfigError: on a bad setting, or when redis-py is missing (``pip install 'switchyard[redis]'``).
    """

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        replicas: int = 1,
        timeout: float = 0.02,
        lease: float = 15.0,
        poll: float = 0.05,
        refresh: float = 1.0,
        seed: int | None = None,
    ) -> None:
        check(url, namespace, replicas)
        self.namespace = namespace
        self.replicas = replicas
        self._refresh = seconds("refresh", refresh, zero=True)
        try:
            link = Link(url, seconds("timeout", timeout))
        except ValueError as exc:  # redis-py's word on a malformed URL
            raise ConfigError(f"RedisStore url is not one redis-py can use: {exc}") from None
        self._link = link
        self._parts = Parts(
            namespace=namespace,
            link=link,
            mirrors=Mirrors(self._opened),
            leases=Leases(link, seconds("lease", lease)),
            poll=seconds("poll", poll),
            rng=random.Random(seed),
        )
        self._fallback = MemoryStore(seed=seed)
        self._members = map(f"{uuid.uuid4().hex[:12]}:{{}}".format, itertools.count(1))
        self._gates: dict[str, AccountLimits] = {}
        self._refused: dict[str, int] = {}  # admissions each gate turned away, to know when to wake
        self._local_accounts: dict[str, Account] = {}
        self._listeners: list[Callable[[], None]] = []

    def __repr__(self) -> str:
        state = "down" if self._link.down else "up"
        return f"RedisStore({self._link.where!r}, namespace={self.namespace!r}, {state})"

    @property
    def available(self) -> bool:
        """Whether Redis is answering (False: operations are answered from local state)."""
        return not self._link.down

    @property
    def fallbacks(self) -> int:
        """Admissions answered from local state because Redis was down or slow."""
        return self._link.fallbacks

    @property
    def outages(self) -> int:
        """Times Redis stopped answering."""
        return self._link.outages

    @property
    def dropped(self) -> int:
        """Writes (settles, records, closures, renewals) not sent; leases and TTLs heal them."""
        return self._link.dropped

    @property
    def round_trips(self) -> int:
        """Writes to Redis: round trips (a write carries every call one turn of the loop queued)."""
        return self._link.round_trips

    # -- this process's own ------------------------------------------------------------------

    def _gate(self, account: Account, now: float) -> AccountLimits:
        """This process's own limits on the account: connections per host and slow start."""
        gate = self._gates.get(account.gateway)
        if gate is None:
            gate = AccountLimits(
                account.gateway, None, now, connections=account.connections, slow_start=account.slow_start
            )
            self._gates[account.gateway] = gate
        return gate

    def _opened(self, gateway: str) -> None:
        gate = self._gates.get(gateway)
        if gate is not None:
            gate.restart()  # a breaker opened, here or in another process: slow start begins again

    def _local(self, account: Account) -> Account:
        """The account as the fallback holds it: each limit divided by the replicas (at least 1)."""
        local = self._local_accounts.get(account.gateway)
        if local is None:
            tier = account.tier
            if tier is not None:
                limits = (tier.rpm, tier.tpm, tier.concurrency)
                tier = Tier(*(None if v is None else max(1, v // self.replicas) for v in limits))
            local = self._local_accounts[account.gateway] = Account(account.gateway, tier, None)
        return local

    def _notify(self) -> None:
        for listener in self._listeners:
            listener()

    # -- reads (no I/O) ----------------------------------------------------------------------

    def peek(self, account: Account, tokens: int, now: float) -> Deferral | None:
        """Why ``account`` could not take ``tokens`` now, as last known."""
        if self._link.down:
            shared = self._fallback.peek(self._local(account), tokens, now)
        else:
            mirror = self._parts.mirrors.accounts.get(account.gateway)
            poll = self._parts.poll
            shared = (
                None if mirror is None else mirror.check(account.gateway, account.tier, tokens, now, poll)
            )
        if shared is not None:
            return shared
        gate = self._gates.get(account.gateway)
        return None if gate is None or gate.unlimited else gate.check(tokens, now)

    def snapshot(self, account: Account, now: float) -> AccountSnapshot:
        """The account as last known: the fleet's slots where the tier caps them (else this
        process's requests in flight), this process's reserved tokens, the buckets' levels, the
        closure, and this process's slow-start window."""
        gate = self._gate(account, now)
        if self._link.down:
            snapshot = self._fallback.snapshot(self._local(account), now)
        else:
            mirror = self._parts.mirrors.account(account.gateway)
            snapshot = mirror.snapshot(account.tier, gate.in_flight, gate.reserved_tokens, now)
        return attrs.evolve(snapshot, slow_start=gate.ramp)

    def breaker(self, gateway: str, gateway_model: str | None, config: BreakerConfig) -> BreakerView:
        """A breaker as last known (the local one while Redis is down)."""
        if self._link.down:
            return self._fallback.breaker(gateway, gateway_model, config)
        return self._parts.mirrors.breaker(gateway, gateway_model, config)

    def breakers(
        self, gateway: str, gateway_model: str, config: BreakerConfig
    ) -> tuple[BreakerView, BreakerView]:
        """The gateway's breaker and the model's there, as last known (the local ones while Redis is down)."""
        if self._link.down:
            return self._fallback.breakers(gateway, gateway_model, config)
        return self._parts.mirrors.pair(gateway, gateway_model, config)

    def on_release(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener`` whenever a slot of this process frees."""
        self._listeners.append(listener)

        def remove() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return remove

    # -- operations --------------------------------------------------------------------------

    async def admit(
        self, account: Account, tokens: int, gateway_model: str, config: BreakerConfig, now: float
    ) -> Admitted:
        """This process's gate first (connections, slow start), then the shared account and both
        breakers in one script; the local fallback when Redis does not answer in time."""
        gateway = account.gateway
        gate = self._gate(account, now)
        held = gate.reserve(tokens, now)
        if isinstance(held, Deferral):
            self._refused[gateway] = self._refused.get(gateway, 0) + 1
            return Admitted(None, None, held, _NONE, self._link.take_notices())
        refused = self._refused.get(gateway, 0)
        try:
            admitted = await self._admit(account, tokens, gateway_model, config, now, held)
        except BaseException:
            self._ungate(gate, held, refused, now)
            raise
        if admitted.reservation is None:
            self._ungate(gate, held, refused, now)
        return admitted

    def _ungate(self, gate: AccountLimits, held: Reservation, refused: int, now: float) -> None:
        """Give back the gate share of an admission that did not go through; wake the waiters only
        when the gate turned one away meanwhile (waking them for nothing would have them spin)."""
        gate.settle(held, None, now)
        if self._refused.get(gate.gateway, 0) != refused:
            self._notify()

    async def _admit(
        self, account: Account, tokens: int, model: str, config: BreakerConfig, now: float, held: Reservation
    ) -> Admitted:
        gateway = account.gateway
        if not self._link.down:
            fast = self._fast(account, model, now)
            if fast is not None:
                permit = Pass(gateway, model, fast[0], fast[1], "", None)
                return Admitted(
                    Held(gateway, tokens, gate=held), permit, None, _NONE, self._link.take_notices()
                )
            try:
                return await admit(self._parts, account, tokens, model, config, next(self._members), held)
            except Unavailable:
                pass
        self._link.fallbacks += 1
        got = await self._fallback.admit(self._local(account), tokens, model, config, now)
        notices = self._link.take_notices()
        if got.reservation is None or got.permit is None:
            return Admitted(None, None, got.deferral, got.reported, notices)
        p = got.permit
        permit = Pass(gateway, model, p.gateway_permission, p.model_permission, "", p)
        reservation = Held(gateway, tokens, gate=held, local=got.reservation)
        return Admitted(reservation, permit, None, got.reported, notices)

    def _fast(self, account: Account, model: str, now: float) -> tuple[Permission, Permission] | None:
        """An untiered account whose closed breakers were learned within ``refresh``: no round trip."""
        if account.tier is not None and not account.tier.unlimited:
            return None
        breakers = self._parts.mirrors.breakers
        g, m = breakers.get((account.gateway, None)), breakers.get((account.gateway, model))
        if g is None or m is None or g.state is not BreakerState.CLOSED or m.state is not BreakerState.CLOSED:
            return None
        mirror = self._parts.mirrors.accounts.get(account.gateway)
        if now - min(g.seen, m.seen) > self._refresh or (mirror is not None and now < mirror.closed_until):
            return None
        return Permission(False, g.epoch), Permission(False, m.epoch)

    async def settle(
        self,
        reservation: Reservation,
        used_tokens: int | None,
        remaining: Mapping[str, float] | None,
        now: float,
    ) -> None:
        """Free the slot here at once and in Redis with the next write; correct the tokens."""
        if reservation.settled or not isinstance(reservation, Held):
            return
        reservation.settled = True
        gate = self._gates.get(reservation.gateway)
        if gate is not None:
            gate.settle(reservation.gate, used_tokens, now)
        if reservation.local is not None:
            await self._fallback.settle(reservation.local, used_tokens, remaining, now)
        elif reservation.member:
            settle(self._parts, reservation, used_tokens, remaining)
        self._notify()

    async def close_until(self, account: Account, until: float, now: float) -> None:
        """Close the account here at once, and for the fleet with the next write."""
        await self._fallback.close_until(self._local(account), until, now)
        close(self._parts, account, until, now)

    async def record(
        self,
        permit: Permit,
        config: BreakerConfig,
        verdicts: tuple[Verdict, Verdict],
        now: float,
        latency: float,
        reason: str,
    ) -> list[Reported]:
        """End ``permit``: queued when it cannot change a breaker's state, else awaited (bounded)."""
        if permit.ended or not isinstance(permit, Pass):
            return _NONE
        permit.ended = True
        gate = self._gates.get(permit.gateway)
        if gate is not None and verdicts[0] is Verdict.SUCCESS:
            gate.succeeded()
        if permit.local is not None:
            reported = await self._fallback.record(permit.local, config, verdicts, now, latency, reason)
        else:
            reported = await record(self._parts, permit, config, verdicts, latency, reason)
        if gate is not None and any(r.transition.after is BreakerState.OPEN for r in reported):
            gate.restart()
        return reported

    async def aclose(self) -> None:
        """Stop renewing leases, send what is queued (bounded), and close the connection; the
        store connects again when next used."""
        await self._parts.leases.aclose()
        await self._link.aclose()
