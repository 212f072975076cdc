"""The chat request: a frozen value, validated when it is built, before anything is sent."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from ._errors import ValidationError
from ._jsonsafe import freeze, not_utf8, show, thaw, utf8
from ._message import PLAIN_ROLES, ROLES, Message

__all__ = ["ROLES", "SAMPLING_PARAMS", "ChatRequest", "Message", "thaw"]


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
_MAX_STOP: Final = 4
_NO_NEEDS: Final[frozenset[str]] = frozenset()
_INT64_MAX: Final = 2**63 - 1


_PART_NEEDS: Final[Mapping[str, str]] = {"image_url": "images", "file": "pdf", "input_audio": "audio"}


def _attachment_needs(parts: str | tuple[Mapping[str, Any], ...] | None) -> set[str]:
    """What a message's non-text parts need of a target: ``images``, ``pdf``, ``audio``.

    A part type this table does not know needs an image-capable target, the
    strictest reading, so it is never sent where it surely cannot be read.
    """
    if not isinstance(parts, tuple):
        return set()
    return {_PART_NEEDS.get(str(p.get("type")), "images") for p in parts if p.get("type") != "text"}


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValidationError(
            f"{name} must be a number from {low:g} to {high:g}, not {show(value)}", param=name
        )
    try:
        number = float(value)
    except OverflowError:  # an int past a float's range, like 10**400
        assert isinstance(value, int)
        raise ValidationError(
            f"{name} must be a number from {low:g} to {high:g}, not an integer of {value.bit_length()} bits",
            param=name,
        ) from None
    if not math.isfinite(number):
        raise ValidationError(
            f"{name} must be a finite number from {low:g} to {high:g}, not {number!r} "
            "(JSON has no NaN or Infinity)",
            param=name,
        )
    if not low <= number <= high:
        raise ValidationError(f"{name} must be from {low:g} to {high:g}, not {show(value)}", param=name)
    return number


def _positive_int(name: str, value: object) -> int:
    if (type(value) is not int and (isinstance(value, bool) or not isinstance(value, int))) or value <= 0:
        raise ValidationError(f"{name} must be a whole number above 0, not {show(value)}", param=name)
    if value > _INT64_MAX:
        raise ValidationError(
            f"{name} must be at most 2**63-1, not an integer of {value.bit_length()} bits", param=name
        )
    return int(value)


def _stop(value: object) -> tuple[str, ...]:
    stops = (value,) if isinstance(value, str) else value
    if not isinstance(stops, list | tuple) or not all(isinstance(s, str) and s for s in stops):
        raise ValidationError(
            f"stop must be a string or a list of non-empty strings, not {show(value)}", param="stop"
        )
    if not stops or len(stops) > _MAX_STOP:
        raise ValidationError(f"stop takes 1 to {_MAX_STOP} sequences, not {len(stops)}", param="stop")
    for i, s in enumerate(stops):
        if not s.isascii() and not utf8(s):
            raise not_utf8(s, "stop" if stops is not value else f"stop[{i}]", "stop")
    return tuple(stops)


def _tools(value: object) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(value, list | tuple) or not value:
        raise ValidationError("tools must be a non-empty list of tool definitions", param="tools")
    frozen: tuple[Mapping[str, Any], ...] = freeze(value, "tools", "tools")
    for i, tool in enumerate(frozen):
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
    return frozen


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(f"{name} must be a dict, not {type(value).__name__}", param=name)
    frozen: Mapping[str, Any] = freeze(value, name, name)
    return frozen


_TOOL_CHOICES: Final = ("none", "auto", "required")


def _tool_choice(value: object) -> str | Mapping[str, Any]:
    if isinstance(value, str) and value in _TOOL_CHOICES:
        return value
    if isinstance(value, Mapping):
        frozen: Mapping[str, Any] = freeze(value, "tool_choice", "tool_choice")
        function = frozen.get("function")
        if (
            frozen.get("type") == "function"
            and isinstance(function, Mapping)
            and isinstance(function.get("name"), str)
            and function["name"]
        ):
            return frozen
    raise ValidationError(
        "tool_choice must be 'none', 'auto', 'required' or "
        f"{{'type': 'function', 'function': {{'name': <one of tools>}}}}, not {show(value)}",
        param="tool_choice",
    )


def _named_tool(tool_choice: Mapping[str, Any], tools: tuple[Mapping[str, Any], ...]) -> None:
    """A tool_choice that names a tool must name one of ``tools``."""
    name = tool_choice["function"]["name"]
    names = [tool["function"]["name"] for tool in tools]
    if name not in names:
        import difflib

        close = difflib.get_close_matches(name, names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"tools has {', '.join(map(repr, names))}"
        raise ValidationError(
            f"tool_choice names the tool {show(name)}, which is not in tools; {hint}", param="tool_choice"
        )


def _seed(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"seed must be a whole number, not {show(value)}", param="seed")
    if not -_INT64_MAX - 1 <= value <= _INT64_MAX:
        raise ValidationError(
            f"seed must be a 64-bit integer (-2**63 to 2**63-1), not one of {value.bit_length()} bits",
            param="seed",
        )
    return int(value)


def _user(value: object) -> str:
    if not isinstance(value, str):
        raise ValidationError("user must be a string", param="user")
    if not utf8(value):
        raise not_utf8(value, "user", "user")
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


@attrs.frozen(slots=False)  # dict-backed: create() fills it in one step
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
    _sampling: MappingProxyType[str, Any] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # Direct construction and attrs.evolve() come here; create() derives the same in
        # _derived() without this hook (tests/providers/test_request.py pins that they agree).
        values = {name: value for name in _PARAMS if (value := getattr(self, name)) is not None}
        sampling, needs = _derived(values, self.messages)
        object.__setattr__(self, "needs", needs)
        object.__setattr__(self, "_sampling", sampling)

    @classmethod
    def create(cls, model: str, messages: Iterable[object], **params: Any) -> ChatRequest:
        """Validate and build a request.

        Raises:
            ValidationError: on an unknown parameter (naming close ones), a bad
                message, a value out of range, a ``tool_choice`` naming no tool of
                ``tools``, or a value that is not strict JSON (a set, bytes, an
                object, NaN, a lone surrogate, a cycle: see ``providers._jsonsafe``);
                nothing has been sent.
        """
        values: dict[str, Any] = {}
        for name, value in params.items():
            check = _CHECKS.get(name)
            if check is None:
                known = SAMPLING_PARAMS + _ROUTING_PARAMS
                import difflib

                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known parameters: {', '.join(known)}"
                raise ValidationError(f"unknown parameter {name!r}{hint}", param=name)
            if value is not None:
                values[name] = check(value)
        if type(model) is not str or not model or model.isspace():
            raise ValidationError(f"model must be a non-empty id, not {show(model)}", param="model")
        if not model.isascii() and not utf8(model):
            raise not_utf8(model, "model", "model")
        if type(messages) is not list and (
            isinstance(messages, str | bytes | Mapping) or not isinstance(messages, Iterable)
        ):
            raise ValidationError("messages must be a list of message dicts", param="messages")
        parsed: list[Message] = []
        for i, raw in enumerate(messages):
            # The common case, a plain {"role", "content": str}, needs only its text checked
            # (here, not in Message.parse: a call per message less).
            if type(raw) is dict and len(raw) == 2:
                role, content = raw.get("role"), raw.get("content")
                if type(content) is str and type(role) is str and role in PLAIN_ROLES:
                    if not content.isascii() and not utf8(content):
                        raise not_utf8(content, f"messages[{i}].content", "messages")
                    parsed.append(Message(role, content))
                    continue
            parsed.append(Message.parse(raw, i))
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
        if tool_choice is not None and "tools" not in values:  # even 'none': OpenAI refuses it alone
            raise ValidationError(
                "tool_choice needs tools; pass tools=[...] or leave tool_choice out", param="tool_choice"
            )
        if tool_choice is not None and isinstance(tool_choice, Mapping):
            _named_tool(tool_choice, values["tools"])
        # Built without __init__: the instance's dict at once, from values already checked.
        # The fields are those of _UNSET in order, as __init__ would set them.
        sampling, needs = _derived(values, parsed)
        request = _new(cls)
        fields = request.__dict__
        fields.update(_UNSET)
        fields["model"] = model
        fields["messages"] = tuple(parsed)
        fields.update(values)
        fields["needs"] = needs
        fields["_sampling"] = sampling
        return request

    def sampling(self) -> MappingProxyType[str, Any]:
        """The sampling parameters that are set, by OpenAI name, JSON-ready (read-only;
        ``.copy()`` gives a dict)."""
        return self._sampling


_PARAMS: Final = SAMPLING_PARAMS + _ROUTING_PARAMS
_ORDER: Final[Mapping[str, int]] = {name: i for i, name in enumerate(_PARAMS)}
_THAWED: Final = frozenset(("stop", "tools", "tool_choice", "response_format", "web_search_options"))
_UNSET: Final[Mapping[str, None]] = dict.fromkeys(("model", "messages", *_PARAMS))
_new: Final = object.__new__


def _derived(
    values: Mapping[str, Any], messages: Iterable[Message]
) -> tuple[MappingProxyType[str, Any], frozenset[str]]:
    """A request's sampling parameters (set ones, in SAMPLING_PARAMS order, JSON-ready: numbers
    and strings as they are, the rest thawed) and what a target must carry, from the parameters
    that are set (``values``) and the messages. The router reads both on its hot path."""
    sampling: dict[str, Any] = {}
    for name in sorted(values, key=_ORDER.__getitem__) if len(values) > 1 else values:
        if name in _THAWED:
            sampling[name] = thaw(values[name])
        elif name != "max_cost_usd":
            sampling[name] = values[name]
    needs: set[str] = set()
    if "tools" in values:
        needs.add("tools")
    response_format = values.get("response_format")
    if response_format is not None and response_format.get("type") != "text":
        needs.add("json_mode")
    if "web_search_options" in values:
        needs.add("web_search")
    for m in messages:
        if type(m.content) is str and not m.tool_calls and m.role != "tool":
            continue  # plain text: needs nothing
        if type(m.content) is not str and m.has_non_text:
            needs.update(_attachment_needs(m.content))
        if m.role == "tool" or m.tool_calls:
            needs.add("tools")
    return MappingProxyType(sampling), frozenset(needs) if needs else _NO_NEEDS
