"""One message of a conversation, validated as it is parsed."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._errors import ValidationError
from ._jsonsafe import freeze, not_utf8, show, thaw, utf8

__all__ = ["PLAIN_ROLES", "ROLES", "Message"]

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool"})
PLAIN_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})
"""The roles a message of text alone may have (a tool message also needs its call's id)."""
_MESSAGE_KEYS: Final = frozenset({"role", "content", "name", "tool_call_id", "tool_calls"})


@attrs.frozen
class Message:
    """One message of the conversation.

    Args:
        role: ``system``, ``developer``, ``user``, ``assistant`` or ``tool``.
        content: the text, or a list of content parts (``{"type": "text", ...}``,
            ``{"type": "image_url", ...}``); None only for an assistant message with
            tool calls.
        name: an optional participant name.
        tool_call_id: for a ``tool`` message, the call it answers.
        tool_calls: for an ``assistant`` message, the calls it made.
    """

    role: str
    content: str | tuple[Mapping[str, Any], ...] | None
    name: str | None = None
    tool_call_id: str | None = None
    tool_calls: tuple[Mapping[str, Any], ...] | None = None

    @classmethod
    def parse(cls, raw: object, index: int) -> Message:
        """Build a message from an OpenAI-style dict (or a Message), validating it.

        Raises:
            ValidationError: naming the message and what is wrong with it.
        """
        if isinstance(raw, Message):
            # A Message built directly was never checked: check it as the dict it stands for.
            fields = attrs.asdict(raw, recurse=False)
            raw = {k: v for k, v in fields.items() if v is not None or k == "content"}
        where = f"messages[{index}]"
        if not isinstance(raw, Mapping):
            raise ValidationError(
                f"{where} must be a dict with 'role' and 'content', not {show(raw)}", param="messages"
            )
        unknown = [key for key in raw if key not in _MESSAGE_KEYS]
        if unknown:
            raise ValidationError(
                f"{where} has unknown keys {', '.join(sorted(map(show, unknown)))}; a message takes "
                f"{', '.join(sorted(_MESSAGE_KEYS))}",
                param="messages",
            )
        role = raw.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise ValidationError(
                f"{where}.role must be one of {', '.join(sorted(ROLES))}, not {show(role)}", param="messages"
            )
        content = raw.get("content")
        tool_calls = raw.get("tool_calls")
        if isinstance(content, list | tuple):
            if not content:
                raise ValidationError(f"{where}.content is an empty list", param="messages")
            for part in content:
                if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                    raise ValidationError(
                        f"{where}.content parts must be dicts with a 'type', not {show(part)}",
                        param="messages",
                    )
            content = freeze(content, f"{where}.content", "messages")
            for i, part in enumerate(content):
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise ValidationError(
                        f"{where}.content[{i}] is a text part without a 'text' string; "
                        "give it {'type': 'text', 'text': '...'}",
                        param="messages",
                    )
        elif content is None:
            if not (role == "assistant" and tool_calls):
                raise ValidationError(
                    f"{where} has no content (only an assistant message with tool_calls may)",
                    param="messages",
                )
        elif isinstance(content, str):
            if not utf8(content):
                raise not_utf8(content, f"{where}.content", "messages")
        else:
            raise ValidationError(
                f"{where}.content must be a string or a list of parts, not {type(content).__name__}",
                param="messages",
            )
        tool_call_id = raw.get("tool_call_id")
        if role == "tool":
            if not isinstance(tool_call_id, str):
                raise ValidationError(f"{where} is a tool message without a 'tool_call_id'", param="messages")
            if not utf8(tool_call_id):
                raise not_utf8(tool_call_id, f"{where}.tool_call_id", "messages")
        elif tool_call_id is not None:
            raise ValidationError(
                f"{where} is a {role} message with a 'tool_call_id'; only a tool message answers a "
                "tool call: drop the key or make it a tool message",
                param="messages",
            )
        if tool_calls is not None:
            if role != "assistant" or not isinstance(tool_calls, list | tuple) or not tool_calls:
                raise ValidationError(
                    f"{where}.tool_calls must be a non-empty list on an assistant message", param="messages"
                )
            tool_calls = freeze(tool_calls, f"{where}.tool_calls", "messages")
            for i, call in enumerate(tool_calls):
                if not isinstance(call, Mapping):
                    raise ValidationError(
                        f"{where}.tool_calls[{i}] must be a dict ({{'id': ..., 'type': 'function', "
                        f"'function': ...}}), not {show(call)}",
                        param="messages",
                    )
        name = raw.get("name")
        if name is not None:
            if not isinstance(name, str):
                raise ValidationError(f"{where}.name must be a string", param="messages")
            if not utf8(name):
                raise not_utf8(name, f"{where}.name", "messages")
        return cls(role=role, content=content, name=name, tool_call_id=tool_call_id, tool_calls=tool_calls)

    @property
    def text(self) -> str:
        """The message's text (text parts joined; other parts left out)."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "\n".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")

    @property
    def has_non_text(self) -> bool:
        """True when the content has parts other than text (images, audio, files)."""
        return isinstance(self.content, tuple) and any(p.get("type") != "text" for p in self.content)

    def to_openai(self, role: str | None = None) -> dict[str, Any]:
        """The message as an OpenAI chat message dict, optionally with another role."""
        if (
            type(self.content) is str
            and self.name is None
            and self.tool_call_id is None
            and self.tool_calls is None
        ):
            return {"role": role or self.role, "content": self.content}
        out: dict[str, Any] = {"role": role or self.role, "content": thaw(self.content)}
        if self.name is not None:
            out["name"] = self.name
        if self.tool_call_id is not None:
            out["tool_call_id"] = self.tool_call_id
        if self.tool_calls is not None:
            out["tool_calls"] = thaw(self.tool_calls)
        return out
