"""The shapes of a reply on the wire: OpenAI's ``chat.completion`` and its chunks, OneLLM's flat JSON."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ._text import Completion
from ._tools import ToolReply

__all__ = ["Answer", "chunk", "onellm_reply", "openai_reply", "usage_json"]


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


def usage_json(prompt_tokens: int, completion_tokens: int, cost: float | None = None) -> dict[str, Any]:
    """OpenAI's ``usage`` object (with OneRouter's ``cost`` when given)."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cost is not None:
        usage["cost"] = round(cost, 12)
    return usage


def openai_reply(
    ident: str, created: int, model: str, answer: Answer, usage: Mapping[str, Any]
) -> dict[str, Any]:
    """A ``chat.completion``."""
    return {
        "id": ident,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": dict(answer.message),
                "finish_reason": answer.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": dict(usage),
    }


def onellm_reply(model: str, answer: Answer, prompt_tokens: int) -> dict[str, Any]:
    """OneLLM's flat reply."""
    return {
        "provider": "emulator",
        "model": model,
        "role": "assistant",
        "content": answer.text,
        "usage": {
            "input_tokens": prompt_tokens,
            "output_tokens": answer.tokens,
            "total_tokens": prompt_tokens + answer.tokens,
        },
        "finish_reason": answer.finish_reason,
    }


def chunk(
    ident: str,
    created: int,
    model: str,
    delta: Mapping[str, Any] | None,
    finish: str | None = None,
    usage: Mapping[str, Any] | None = None,
) -> bytes:
    """One SSE event of a ``chat.completion.chunk``; ``delta=None`` is the usage chunk (no choices)."""
    payload: dict[str, Any] = {
        "id": ident,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [] if delta is None else [{"index": 0, "delta": dict(delta), "finish_reason": finish}],
    }
    if usage is not None:
        payload["usage"] = dict(usage)
    return b"data: " + json.dumps(payload).encode() + b"\n\n"
