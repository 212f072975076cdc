"""The chat request: a frozen value, validated when it is built, before anything is sent."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from ._errors import ValidationError

__all__ = ["ROLES", "SAMPLING_PARAMS", "ChatRequest", "Message"]

ROLES: Final = frozenset({"system", "developer", "user", "assistant", "tool"})

SAMPLING_PARAMS: Final = (
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "seed",
    "frequency_penalty",
    "presence_penalty",
    "tools",
    "tool_choice",
    "response_format",
    "web_search_options",
    "user",
)
"""The request parameters switchyard knows; each gateway's handling of each is in ``_params``."""

_ROUTING_PARAMS: Final = ("max_cost_usd",)
_PLAIN_ROLES: Final = frozenset({"system", "developer", "user", "assistant"})
_MESSAGE_KEYS: Final = frozenset({"role", "content", "name", "tool_call_id", "tool_calls"})
_MAX_STOP: Final = 4
_NO_NEEDS: Final[frozenset[str]] = frozenset()


def _freeze(value: Any) -> Any:
    """A deep, immutable copy of JSON-like data (dicts become read-only mappings)."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(k): _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """The JSON-ready form of :func:`_freeze`'d data."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


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
            return raw
        # The common case, a plain {"role", "content": str}, needs no further checks.
        if (
            type(raw) is dict
            and len(raw) == 2
            and type(raw.get("content")) is str
            and raw.get("role") in _PLAIN_ROLES
        ):
            return cls(role=raw["role"], content=raw["content"])
        where = f"messages[{index}]"
        if not isinstance(raw, Mapping):
            raise ValidationError(
                f"{where} must be a dict with 'role' and 'content', not {raw!r}", param="messages"
            )
        unknown = set(raw) - _MESSAGE_KEYS
        if unknown:
            raise ValidationError(f"{where} has unknown keys {sorted(unknown)}", param="messages")
        role = raw.get("role")
        if role not in ROLES:
            raise ValidationError(
                f"{where}.role must be one of {', '.join(sorted(ROLES))}, not {role!r}", param="messages"
            )
        content = raw.get("content")
        tool_calls = raw.get("tool_calls")
        if isinstance(content, list | tuple):
            if not content:
                raise ValidationError(f"{where}.content is an empty list", param="messages")
            for part in content:
                if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                    raise ValidationError(
                        f"{where}.content parts must be dicts with a 'type', not {part!r}", param="messages"
                    )
            content = _freeze(content)
        elif content is None:
            if not (role == "assistant" and tool_calls):
                raise ValidationError(
                    f"{where} has no content (only an assistant message with tool_calls may)",
                    param="messages",
                )
        elif not isinstance(content, str):
            raise ValidationError(
                f"{where}.content must be a string or a list of parts, not {type(content).__name__}",
                param="messages",
            )
        if role == "tool" and not isinstance(raw.get("tool_call_id"), str):
            raise ValidationError(f"{where} is a tool message without a 'tool_call_id'", param="messages")
        if tool_calls is not None:
            if role != "assistant" or not isinstance(tool_calls, list | tuple) or not tool_calls:
                raise ValidationError(
                    f"{where}.tool_calls must be a non-empty list on an assistant message", param="messages"
                )
            tool_calls = _freeze(tool_calls)
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise ValidationError(f"{where}.name must be a string", param="messages")
        return cls(
            role=role, content=content, name=name, tool_call_id=raw.get("tool_call_id"), tool_calls=tool_calls
        )

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


_PART_NEEDS: Final[Mapping[str, str]] = {"image_url": "images", "file": "pdf", "input_audio": "audio"}


def _attachment_needs(parts: tuple[Mapping[str, Any], ...] | None) -> set[str]:
    """What a message's non-text parts need of a target: ``images``, ``pdf``, ``audio``.

    A part type this table does not know needs an image-capable target, the
    strictest reading, so it is never sent where it surely cannot be read.
    """
    return {_PART_NEEDS.get(str(p.get("type")), "images") for p in parts or () if p.get("type") != "text"}


def _number(name: str, value: object, low: float, high: float) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(f"{name} must be a number from {low:g} to {high:g}, not {value!r}", param=name)
    if not low <= value <= high:
        raise ValidationError(f"{name} must be from {low:g} to {high:g}, not {value!r}", param=name)
    return float(value)


def _positive_int(name: str, value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(f"{name} must be a whole number above 0, not {value!r}", param=name)
    return value


def _stop(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    stops = (value,) if isinstance(value, str) else value
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) and s for s in stops):
        raise ValidationError(
            f"stop must be a string or a list of non-empty strings, not {value!r}", param="stop"
        )
    if not stops or len(stops) > _MAX_STOP:
        raise ValidationError(f"stop takes 1 to {_MAX_STOP} sequences, not {len(stops)}", param="stop")
    return tuple(stops)


def _tools(value: object) -> tuple[Mapping[str, Any], ...] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("tools must be a non-empty list of tool definitions", param="tools")
    for i, tool in enumerate(value):
        function = tool.get("function") if isinstance(tool, Mapping) else None
        if (
            not isinstance(tool, Mapping)
            or tool.get("type") != "function"
            or not isinstance(function, Mapping)
        ):
            raise ValidationError(
                f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}", param="tools"
            )
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise ValidationError(f"tools[{i}].function needs a 'name'", param="tools")
    frozen: tuple[Mapping[str, Any], ...] = _freeze(value)
    return frozen


def _mapping(name: str, value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a dict, not {type(value).__name__}", param=name)
    frozen: Mapping[str, Any] = _freeze(value)
    return frozen


def _tool_choice(value: object) -> str | Mapping[str, Any]:
    if isinstance(value, Mapping):
        frozen: Mapping[str, Any] = _freeze(value)
        return frozen
    if value not in ("none", "auto", "required"):
        raise ValidationError(
            f"tool_choice must be 'none', 'auto', 'required' or a dict, not {value!r}", param="tool_choice"
        )
    assert isinstance(value, str)
    return value


def _seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"seed must be a whole number, not {value!r}", param="seed")
    return value


def _user(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("user must be a string", param="user")
    return value


# One check per parameter, run only for the parameters a request sets.
_CHECKS: Final[Mapping[str, Any]] = {
    "temperature": lambda v: _number("temperature", v, 0, 2),
    "top_p": lambda v: _number("top_p", v, 0, 1),
    "max_tokens": lambda v: _positive_int("max_tokens", v),
    "stop": _stop,
    "seed": _seed,
    "frequency_penalty": lambda v: _number("frequency_penalty", v, -2, 2),
    "presence_penalty": lambda v: _number("presence_penalty", v, -2, 2),
    "tools": _tools,
    "tool_choice": _tool_choice,
    "response_format": lambda v: _mapping("response_format", v),
    "web_search_options": lambda v: _mapping("web_search_options", v),
    "user": _user,
    "max_cost_usd": lambda v: _number("max_cost_usd", v, 0, math.inf),
}
assert set(_CHECKS) == set(SAMPLING_PARAMS + _ROUTING_PARAMS)


@attrs.frozen
class ChatRequest:
    """One chat request, validated; build it with :meth:`create`.

    The sampling parameters are OpenAI's names; each gateway's adapter translates
    or drops them by one table (``providers._params``) and the reply says which
    were dropped. ``max_cost_usd`` is a routing option and is never sent: a
    candidate whose estimated cost is above it (or unknown) is not used.
    """

    model: str
    messages: tuple[Message, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    frequency_penalty: float | None = None
    presence_penalty: float | None = None
    tools: tuple[Mapping[str, Any], ...] | None = None
    tool_choice: str | Mapping[str, Any] | None = None
    response_format: Mapping[str, Any] | None = None
    web_search_options: Mapping[str, Any] | None = None
    user: str | None = None
    max_cost_usd: float | None = None
    needs: frozenset[str] = attrs.field(init=False, eq=False, repr=False)
    """What a target must carry: ``tools``, ``json_mode``, ``web_search``, ``images``, ``pdf``, ``audio``."""
    _sampling: Mapping[str, Any] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Derived once here, not on every use: the router reads both on its hot path.
        sampling: dict[str, Any] = {}
        for name in SAMPLING_PARAMS:
            value = getattr(self, name)
            if value is not None:
                sampling[name] = thaw(value)
        object.__setattr__(self, "_sampling", MappingProxyType(sampling))
        needs = set()
        if self.tools is not None:
            needs.add("tools")
        if self.response_format is not None and self.response_format.get("type") != "text":
            needs.add("json_mode")
        if self.web_search_options is not None:
            needs.add("web_search")
        for m in self.messages:
            if type(m.content) is not str and m.has_non_text:
                needs.update(_attachment_needs(m.content))
            if m.role == "tool" or m.tool_calls:
                needs.add("tools")
        object.__setattr__(self, "needs", frozenset(needs) if needs else _NO_NEEDS)

    @classmethod
    def create(cls, model: str, messages: Iterable[object], **params: Any) -> ChatRequest:
        """Validate and build a request.

        Raises:
            ValidationError: on an unknown parameter (naming close ones), a bad
                message, or a value out of range; nothing has been sent.
        """
        values: dict[str, Any] = {}
        for name, value in params.items():
            check = _CHECKS.get(name)
            if check is None:
                known = SAMPLING_PARAMS + _ROUTING_PARAMS
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known parameters: {', '.join(known)}"
                raise ValidationError(f"unknown parameter {name!r}{hint}", param=name)
            if value is not None:
                values[name] = check(value)
        if type(model) is not str or not model or model.isspace():
            raise ValidationError(f"model must be a non-empty id, not {model!r}", param="model")
        if type(messages) is not list and (
            isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable)
        ):
            raise ValidationError("messages must be a list of message dicts", param="messages")
        parsed = tuple([Message.parse(m, i) for i, m in enumerate(messages)])
        if not parsed:
            raise ValidationError("messages must not be empty", param="messages")
        for m in parsed:
            if m.role not in ("system", "developer"):
                break
        else:
            raise ValidationError(
                "messages need at least one user, assistant or tool message", param="messages"
            )
        tool_choice = values.get("tool_choice")
        if tool_choice is not None and tool_choice != "none" and "tools" not in values:
            raise ValidationError("tool_choice needs tools", param="tool_choice")
        return cls(model=model, messages=parsed, **values)

    def sampling(self) -> Mapping[str, Any]:
        """The sampling parameters that are set, by OpenAI name, JSON-ready (read-only)."""
        return self._sampling
