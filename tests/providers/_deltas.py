"""The deltas of an adapter as its consumer reads them (a ``str`` is text alone)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from switchyard.providers.wire import Delta


async def read_deltas(items: AsyncIterator[Delta | str]) -> list[Delta]:
    """Every delta; a ``str`` as ``Delta(text=...)`` under the last response id given (Adapter.deltas)."""
    out: list[Delta] = []
    named: str | None = None
    async for item in items:
        if isinstance(item, str):
            out.append(Delta(text=item, response_id=named))
        else:
            named = item.response_id or named
            out.append(item)
    return out
