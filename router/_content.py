"""Message content in the OpenTelemetry GenAI conventions' JSON shapes, for ``capture_content=True``.

``gen_ai.input.messages`` and ``gen_ai.output.messages`` (semantic conventions
v1.41.0): a list of ``{"role", "parts": [...]}``, each part typed (``text``,
``tool_call``, ``tool_call_response``; other kinds by their type only, never their bytes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ..providers import Message

__all__ = ["input_messages", "output_messages"]


def input_messages(messages: tuple[Message, ...]) -> str:
    """The messages in the conventions' input-messages JSON shape (only with ``capture_content``)."""
    return json.dumps([_message(m) for m in messages], ensure_ascii=False)


def _message(message: Message) -> dict[str, Any]:
    parts: list[dict[str, Any]] = []
    content = message.content
    if message.role == "tool":
        parts.append({"type": "tool_call_response", "id": message.tool_call_id, "response": content})
    elif isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif content is not None:
        for part in content:
            kind = part.get("type")
            if kind == "text":
                parts.append({"type": "text", "content": part.get("text")})
            else:  # images, audio, files: their kind only, never their bytes
                parts.append({"type": str(kind)})
    for call in message.tool_calls or ():
        function = call.get("function")
        named: Mapping[str, Any] = function if isinstance(function, Mapping) else {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": named.get("name"),
                "arguments": named.get("arguments"),
            }
        )
    return {"role": message.role, "parts": parts}


def output_messages(text: str, finish_reason: str | None) -> str:
    message = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
    return json.dumps([{**message, "finish_reason": finish_reason or "stop"}], ensure_ascii=False)
