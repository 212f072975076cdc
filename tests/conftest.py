"""Shared fixtures."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import looptime
import pytest
from switchyard.providers import BUILTIN_GATEWAYS, Gateway, ProviderGraph

from . import _aioresponses_compat
from ._redis import MISSING, REDIS_SERVER, RedisServer

_aioresponses_compat.install()


def _fake_time_capable_loop() -> asyncio.AbstractEventLoop:
    """An asyncio loop that can run on fake time; it does only where a test asks (``fake_time``)."""
    return looptime.new_event_loop(_enabled=False)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, object]:
    """pytest-asyncio makes every test's loop with this one factory."""
    return {"asyncio": _fake_time_capable_loop}


@pytest.fixture
async def fake_time() -> AsyncIterator[looptime.LoopTimeEventLoop]:
    """Run the test on fake loop time: sleeps and timeouts take no real time, socket I/O none of loop time.

    Yields the loop; ``loop.time()`` is the fake clock.
    """
    loop = asyncio.get_running_loop()
    assert isinstance(loop, looptime.LoopTimeEventLoop)
    with loop.looptime_enabled():
        yield loop


@pytest.fixture(autouse=True)
def _no_gateway_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the developer's own gateway keys and URLs out of every test."""
    for name in BUILTIN_GATEWAYS:
        monkeypatch.delenv(f"{name.upper()}_API_KEY", raising=False)
        monkeypatch.delenv(f"{name.upper()}_BASE_URL", raising=False)


@pytest.fixture
def builtin_gateways() -> list[Gateway]:
    """The four built-in gateways with test keys."""
    return [Gateway.builtin(name, f"test-key-{name}") for name in BUILTIN_GATEWAYS]


@pytest.fixture
def graph(builtin_gateways: list[Gateway]) -> ProviderGraph:
    """The graph of the four shipped catalogs."""
    return ProviderGraph.from_catalogs(builtin_gateways)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One real redis-server for the session (each test keeps to a namespace of its own)."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A real redis-server of this test's own, to kill, pause or restart."""
    if REDIS_SERVER is None:
        pytest.skip(MISSING)
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A RedisStore namespace no other test uses."""
    return f"t{uuid.uuid4().hex[:12]}"
