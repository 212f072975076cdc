"""Where breakers and buckets keep their state: a small seam, in memory for now.

The state machines (a breaker, an account's buckets) hold their own logic; a
store only hands out the instance for a key, making it on first use. A store
shared between processes can come later behind the same interface without
touching that logic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol, TypeVar

__all__ = ["MemoryStore", "StateStore"]

T = TypeVar("T")


class StateStore(Protocol):
    """Hands out the state object for a key, making it with ``factory`` on first use.

    The object for a key must stay the same for the store's life: callers keep it
    (a shared store would hand out a stable proxy that syncs its state).
    """

    def get(self, kind: str, key: Hashable, factory: Callable[[], T]) -> T:
        """The ``kind`` state for ``key``."""
        ...


class MemoryStore:
    """State in this process's memory, per (kind, key)."""

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[tuple[str, Hashable], object] = {}

    def get(self, kind: str, key: Hashable, factory: Callable[[], T]) -> T:
        """The ``kind`` state for ``key``."""
        item = self._items.get((kind, key))
        if item is None:
            item = self._items[(kind, key)] = factory()
        return item  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._items)
