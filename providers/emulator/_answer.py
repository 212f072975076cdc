"""What the model answers, text or tool calls, before a dialect puts it in its wire shape."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ._text import Completion
from ._tools import ToolReply

__all__ = ["Answer"]


@attrs.frozen
class Answer:
    """What the model answers, text or tool calls, ready for either wire shape.

    Attributes:
        message: the ``chat.completion`` message.
        deltas: a stream's deltas; the first carries the role, the others are the
            content chunks the stream faults count (``cut_after`` and the like).
        tokens: completion tokens.
        finish_reason: ``stop``, ``length`` or ``tool_calls``.
        text: the reply's text (empty for tool calls).
        tool_calls: how many tools the model called.
    """

    message: Mapping[str, Any]
    deltas: tuple[Mapping[str, Any], ...]
    tokens: int
    finish_reason: str
    text: str
    tool_calls: int = 0

    @classmethod
    def of_text(cls, completion: Completion) -> Answer:
        """A text reply, streamed one word (one token) per chunk."""
        return cls(
            message={"role": "assistant", "content": completion.text},
            deltas=({"role": "assistant", "content": ""}, *({"content": w} for w in completion.words)),
            tokens=completion.tokens,
            finish_reason=completion.finish_reason,
            text=completion.text,
        )

    @classmethod
    def of_tools(cls, reply: ToolReply, *, interleave: bool = False) -> Answer:
        """A reply that calls tools (no text); ``interleave`` streams parallel calls' fragments in turn."""
        return cls(
            message=reply.message(),
            deltas=tuple(reply.deltas(interleave=interleave)),
            tokens=reply.tokens,
            finish_reason=reply.finish_reason,
            text="",
            tool_calls=len(reply.calls),
        )
