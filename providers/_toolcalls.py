"""Tool calls assembled from stream deltas, the way the official OpenAI SDK assembles them.

A streamed tool call arrives in pieces: the first delta of a call carries its
``index``, ``id``, ``type`` and ``function.name`` (with empty ``arguments``), and
the following deltas carry ``{"index": i, "function": {"arguments": "<fragment>"}}``.
Calls made in parallel interleave, told apart by ``index``.

:class:`ToolCallAssembler` folds deltas exactly as the SDK's stream accumulator
does (``openai.lib.streaming._deltas.accumulate_delta``): strings are
concatenated, nested objects merged key by key, ``index`` and ``type`` replaced
rather than concatenated, and a value that was None takes the new one. The
finished calls are OpenAI-shaped (``id``, ``type``, ``function.name``,
``function.arguments``), ordered by index.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ._errors import MalformedReply

__all__ = ["ToolCallAssembler"]


def _merge(acc: dict[str, Any], delta: Mapping[str, Any]) -> None:
    """Fold ``delta`` into ``acc`` (the SDK's ``accumulate_delta``, for the shapes tool calls take)."""
    for key, value in delta.items():
        if key not in acc or acc[key] is None:
            acc[key] = dict(value) if isinstance(value, Mapping) else value
            continue
        current = acc[key]
        if key in ("index", "type"):
            acc[key] = value
        elif isinstance(current, str) and isinstance(value, str):
            acc[key] = current + value
        elif isinstance(current, dict) and isinstance(value, Mapping):
            _merge(current, value)
        elif value is not None:
            acc[key] = value


class ToolCallAssembler:
    """Collects the tool-call pieces of one streamed answer; :meth:`calls` gives the finished calls."""

    __slots__ = ("_calls", "_gateway")

    def __init__(self, gateway: str = "") -> None:
        self._gateway = gateway
        self._calls: dict[int, dict[str, Any]] = {}

    def __bool__(self) -> bool:
        return bool(self._calls)

    def add(self, pieces: Iterable[Mapping[str, Any]]) -> None:
        """Fold one delta's ``tool_calls`` in.

        A piece without an ``index`` (a whole reply's calls, as a gateway that does
        not stream gives them) takes its position in the list.

        Raises:
            MalformedReply: on a piece that is not an object, or an index that is not
                a non-negative integer.
        """
        for position, piece in enumerate(pieces):
            if not isinstance(piece, Mapping):
                raise MalformedReply(
                    self._gateway, status=200, detail=f"a tool-call delta is not an object: {piece!r:.40}"
                )
            index = piece.get("index", position)
            if isinstance(index, bool) or not isinstance(index, int) or index < 0:
                raise MalformedReply(
                    self._gateway, status=200, detail=f"a tool-call delta has an invalid index: {index!r:.20}"
                )
            call = self._calls.get(index)
            if call is None:
                call = self._calls[index] = {}
            _merge(call, piece)

    def clear(self) -> None:
        """Forget everything (the answer restarts)."""
        self._calls.clear()

    def calls(self) -> tuple[Mapping[str, Any], ...] | None:
        """The finished calls, OpenAI-shaped and ordered by index; None when there were none."""
        if not self._calls:
            return None
        out = []
        for index in sorted(self._calls):
            call = {k: v for k, v in self._calls[index].items() if k != "index"}
            call.setdefault("type", "function")
            function = call.get("function")
            if isinstance(function, dict):
                function.setdefault("arguments", "")
            out.append(call)
        return tuple(out)
