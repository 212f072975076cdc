"""Emulated tool calls: which functions the model calls, with what arguments, and how they stream.

The rules (OpenAI-compatible gateways only; OneLLM's document has no tools):

- no ``tools``, or ``tool_choice="none"``: no call, a text reply;
- ``tool_choice={"type": "function", "function": {"name": f}}``: one call to ``f``;
- ``tool_choice="required"``: calls to the first ``max(1, Faults.tool_calls)`` tools;
- ``tool_choice="auto"`` (or absent): calls to the first ``Faults.tool_calls`` tools
  (0 by default: a text reply);
- ``parallel_tool_calls=false`` allows one call at most; never more calls than tools.

Arguments are a JSON object built from the function's ``parameters`` schema: one
value per required property (``const`` or the first ``enum`` value when there is
one, else strings ``"emulated"``, numbers and integers 1, booleans true, arrays
``[]`` (``minItems`` values, up to 3, when it asks for some), objects built the
same way, the first of ``anyOf``/``oneOf``/``allOf``); ``{}`` when nothing is
required. Each call costs ``count_tokens(arguments)`` completion
tokens; when ``max_tokens`` runs out the arguments are cut there, later calls
are not made, and the finish reason is ``length`` instead of ``tool_calls``.

Streamed, the calls arrive as OpenAI sends them: the first delta carries the
role and call 0's id, type and name with ``arguments: ""``, then its argument
fragments (four characters, one token, each, and at least three for arguments of
three or more characters), then call 1's header in its own delta and its
fragments. OpenAI's own SDK relies on that order (its ``.stream()`` helper takes a
call as done when the next index starts). ``Faults(interleave_tool_calls=True)``
sends every header first and then the calls' fragments in turn, as some
upstreams do, so a client must assemble them by ``index``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._text import count_tokens

__all__ = ["ToolCall", "ToolReply", "arguments_for", "check_tools", "tool_reply"]

_CHOICES: Final = frozenset({"none", "auto", "required"})
_MAX_DEPTH: Final = 8  # a self-referencing schema stops here instead of recursing forever


@attrs.frozen
class ToolCall:
    """One call the model makes: its id, the function's name, and the arguments' JSON text."""

    id: str
    name: str
    arguments: str

    def to_json(self) -> dict[str, Any]:
        """The call as a ``message.tool_calls`` entry."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": self.arguments},
        }

    def header(self, index: int) -> dict[str, Any]:
        """The streamed delta entry that opens the call (arguments still empty)."""
        return {
            "index": index,
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": ""},
        }

    def fragments(self) -> list[str]:
        """The arguments in the pieces a stream sends them in."""
        text = self.arguments
        size = max(1, min(4, math.ceil(len(text) / 3)))
        return [text[i : i + size] for i in range(0, len(text), size)]


@attrs.frozen
class ToolReply:
    """The model's answer when it calls tools: the calls, their tokens, why it stopped."""

    calls: tuple[ToolCall, ...]
    tokens: int
    finish_reason: str

    def message(self) -> dict[str, Any]:
        """The ``chat.completion`` message."""
        return {"role": "assistant", "content": None, "tool_calls": [c.to_json() for c in self.calls]}

    def deltas(self, *, interleave: bool = False) -> list[dict[str, Any]]:
        """The stream's deltas: the role with call 0's header first, then each call's fragments.

        In order (as OpenAI sends them), call 1's header follows call 0's last
        fragment; interleaved, every header comes first and then the calls'
        fragments in turn.
        """
        first = {"role": "assistant", "content": None, "tool_calls": [self.calls[0].header(0)]}
        headers = [{"tool_calls": [call.header(i)]} for i, call in enumerate(self.calls)]
        pieces = [
            [{"tool_calls": [{"index": i, "function": {"arguments": f}}]} for f in call.fragments()]
            for i, call in enumerate(self.calls)
        ]
        out: list[dict[str, Any]] = [first]
        if not interleave:
            for i, fragments in enumerate(pieces):
                out.extend(fragments if i == 0 else [headers[i], *fragments])
            return out
        out.extend(headers[1:])
        for round_ in range(max(map(len, pieces))):
            out.extend(fragments[round_] for fragments in pieces if round_ < len(fragments))
        return out


def check_tools(body: Mapping[str, Any]) -> str | None:
    """What is wrong with the request's ``tools``, ``tool_choice`` and ``parallel_tool_calls``, or None."""
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if tools is None:
        if choice is not None:
            return (
                "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified."
            )
        return None
    if not isinstance(tools, list) or not tools:
        return "Invalid 'tools': expected a non-empty array of tools."
    names = []
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            return f"Invalid 'tools[{i}]': expected {{'type': 'function', 'function': {{...}}}}."
        name = function.get("name")
        if not isinstance(name, str) or not name:
            return f"Missing required parameter: 'tools[{i}].function.name'."
        if "parameters" in function and not isinstance(function["parameters"], dict):
            return f"Invalid 'tools[{i}].function.parameters': expected an object (a JSON schema)."
        names.append(name)
    if choice is not None and not (isinstance(choice, str) and choice in _CHOICES):
        named = _named_choice(choice)
        if named is None:
            return (
                "Invalid value for 'tool_choice': expected 'none', 'auto', 'required' or "
                "{'type': 'function', 'function': {'name': ...}}."
            )
        if named not in names:
            return f"Invalid value for 'tool_choice': no function named '{named}' in 'tools'."
    parallel = body.get("parallel_tool_calls")
    if parallel is not None and not isinstance(parallel, bool):
        return "Invalid type for 'parallel_tool_calls': expected a boolean."
    return None


def _named_choice(choice: Any) -> str | None:
    if not isinstance(choice, dict) or choice.get("type") != "function":
        return None
    function = choice.get("function")
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) and name else None


def _functions_to_call(body: Mapping[str, Any], fault_calls: int) -> list[Mapping[str, Any]]:
    tools = body.get("tools") or []
    choice = body.get("tool_choice", "auto")
    functions = [tool["function"] for tool in tools]
    if choice == "none":
        return []
    named = _named_choice(choice)
    if named is not None:
        return [f for f in functions if f["name"] == named][:1]
    count = max(1, fault_calls) if choice == "required" else fault_calls
    if body.get("parallel_tool_calls") is False:
        count = min(count, 1)
    return functions[:count]


def arguments_for(schema: Any, depth: int = 0) -> Any:
    """A deterministic value that fits ``schema`` (for an object: its required properties only)."""
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return "emulated"
    if "const" in schema:
        return schema["const"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        alternatives = schema.get(key)
        if isinstance(alternatives, list) and alternatives:
            return arguments_for(alternatives[0], depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        properties = properties if isinstance(properties, Mapping) else {}
        required = schema.get("required")
        names = [n for n in required if isinstance(n, str)] if isinstance(required, list) else []
        return {name: arguments_for(properties.get(name), depth + 1) for name in names}
    if kind == "array":
        least = schema.get("minItems")
        count = least if isinstance(least, int) and not isinstance(least, bool) and least > 0 else 0
        return [arguments_for(schema.get("items"), depth + 1) for _ in range(min(count, 3))]
    return {"integer": 1, "number": 1, "boolean": True, "null": None}.get(str(kind), "emulated")


def tool_reply(
    body: Mapping[str, Any], *, fault_calls: int, max_tokens: int | None, id_seed: str
) -> ToolReply | None:
    """The tool calls the model answers ``body`` with (see the module's rules), or None for a text reply.

    ``body`` has passed :func:`check_tools`; ``id_seed`` makes the calls' ids (the
    same seed, the same ids).
    """
    functions = _functions_to_call(body, fault_calls)
    if not functions:
        return None
    calls = []
    tokens = 0
    finish = "tool_calls"
    for index, function in enumerate(functions):
        arguments = json.dumps(arguments_for(function.get("parameters", {})), separators=(",", ":"))
        cost = count_tokens(arguments)
        left = None if max_tokens is None else max_tokens - tokens
        if left is not None and cost > left:
            finish = "length"
            if left <= 0:  # max_tokens is at least 1, so the first call always has a piece
                break
            arguments, cost = arguments[: left * 4], left
        calls.append(ToolCall(_call_id(id_seed, index), function["name"], arguments))
        tokens += cost
        if finish == "length":
            break
    return ToolReply(tuple(calls), tokens, finish)


def _call_id(*parts: object) -> str:
    """A deterministic OpenAI-looking call id: ``call_`` and 24 hex digits."""
    return "call_" + hashlib.blake2b(repr(parts).encode(), digest_size=12).hexdigest()
