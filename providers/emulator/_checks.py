"""What a gateway refuses before it does any work: a malformed body, and input a model cannot take.

OneLLM follows its document's error table: 400 for invalid JSON or a missing
required field (``model``, ``messages``, a message's ``role`` or ``content``),
422 for a field of the wrong type or format (``messages`` not a non-empty array,
``max_tokens`` not a whole number of at least 1, ``temperature`` not a number
from 0 to 2, ``top_p`` not from 0 to 1, ``stop_sequences`` not an array of
strings); ``stream`` and ``stop`` are 400 (it does not stream; it takes
``stop_sequences``). The OpenAI-compatible gateways answer 400 to all of these
(``stop`` there is a string or an array of strings), and check ``tools``.

By capability (every gateway): image (``image_url``), PDF (``file``) and audio
(``input_audio``) content parts are 400 ``unsupported_content`` for a model whose
offer marks that input False (``Capabilities.images``, ``pdf``, ``audio``);
``tools`` likewise when ``Capabilities.tools`` is False. A capability that is not
known (None) is accepted, as the router's filters assume.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from .._offer import Capabilities
from ._tools import check_tools

__all__ = ["INPUT_PARTS", "Refusal", "check_body", "check_capabilities"]


@attrs.frozen
class Refusal:
    """An error answer: its status, and the message and code when not the gateway's defaults."""

    status: int
    message: str | None = None
    code: str | None = None


INPUT_PARTS: Final[Mapping[str, tuple[Callable[[Capabilities], bool | None], str]]] = {
    "image_url": (lambda c: c.images, "image"),
    "file": (lambda c: c.pdf, "PDF"),
    "input_audio": (lambda c: c.audio, "audio"),
}
"""Content part type -> (the capability that allows it, what the refusal calls it)."""

_MISSING: Final = "Invalid JSON or missing required fields: "
_WRONG: Final = "Invalid type or format in the request body: "


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high
    )


def _strings(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


# Parameter -> (the test its value passes, what it must be). null is always accepted.
_PARAMS: Final[Mapping[str, tuple[Callable[[Any], bool], str]]] = {
    "max_tokens": (_whole(1), "an integer of at least 1"),
    "temperature": (_number(0, 2), "a number from 0 to 2"),
    "top_p": (_number(0, 1), "a number from 0 to 1"),
}
_ONELLM_PARAMS: Final = {**_PARAMS, "stop_sequences": (_strings, "an array of strings")}
_OPENAI_PARAMS: Final = {
    **_PARAMS,
    "stop": (lambda v: isinstance(v, str) or _strings(v), "a string or an array of strings"),
}


def check_body(body: Any, *, onellm: bool) -> Refusal | None:
    """What the gateway refuses in a decoded request body, or None when it takes it."""
    return _check_onellm(body) if onellm else _check_openai(body)


def _check_onellm(body: Any) -> Refusal | None:
    if not isinstance(body, dict):
        return Refusal(400, _MISSING + "the body must be a JSON object.")
    for field in ("model", "messages"):
        if field not in body:
            return Refusal(400, f"{_MISSING}'{field}' is required.")
    if not isinstance(body["model"], str) or not body["model"]:
        return Refusal(422, _WRONG + "'model' must be a non-empty string.")
    messages = body["messages"]
    if not isinstance(messages, list) or not messages:
        return Refusal(422, _WRONG + "'messages' must be a non-empty array of message objects.")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            return Refusal(422, f"{_WRONG}'messages[{i}]' must be an object with 'role' and 'content'.")
        for field in ("role", "content"):
            if field not in message:
                return Refusal(400, f"{_MISSING}'messages[{i}].{field}' is required.")
        if not isinstance(message["role"], str):
            return Refusal(422, f"{_WRONG}'messages[{i}].role' must be a string.")
        if not isinstance(message["content"], str | list):
            return Refusal(422, f"{_WRONG}'messages[{i}].content' must be a string (or an array of parts).")
    wrong = _wrong_param(body, _ONELLM_PARAMS)
    if wrong is not None:
        return Refusal(422, _WRONG + wrong)
    if "stream" in body:
        return Refusal(400, "Streaming is not supported. Do not include a stream parameter.")
    if "stop" in body:
        return Refusal(400, "Unknown parameter 'stop'; use stop_sequences.")
    return None


def _check_openai(body: Any) -> Refusal | None:
    if not isinstance(body, dict):
        return Refusal(400, "The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        return Refusal(400, "You must provide a model parameter.")
    messages = body.get("messages")
    if messages is None:
        return Refusal(400, "Missing required parameter: 'messages'.")
    if not isinstance(messages, list) or not messages:
        return Refusal(400, "Invalid 'messages': expected a non-empty array of messages.")
    wrong = _wrong_param(body, _OPENAI_PARAMS)
    if wrong is not None:
        return Refusal(400, wrong)
    tools = check_tools(body)
    return None if tools is None else Refusal(400, tools)


def _wrong_param(
    body: Mapping[str, Any], params: Mapping[str, tuple[Callable[[Any], bool], str]]
) -> str | None:
    for name, (test, what) in params.items():
        if name in body and body[name] is not None and not test(body[name]):
            return f"'{name}' must be {what}, not {reprlib.repr(body[name])}."
    return None


def check_capabilities(
    body: Mapping[str, Any], capabilities: Capabilities, *, takes_tools: bool = True
) -> Refusal | None:
    """A refusal when the request carries input the model cannot take (False); unknown is accepted.

    ``takes_tools=False`` (OneLLM, which ignores ``tools``) skips the tools check.
    """
    for message in body["messages"]:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(kind, str) and kind in INPUT_PARTS:
                supports, what = INPUT_PARTS[kind]
                if supports(capabilities) is False:
                    return Refusal(400, f"This model does not support {what} input.", "unsupported_content")
    if takes_tools and body.get("tools") and capabilities.tools is False:
        return Refusal(400, "This model does not support tools.", "unsupported_parameter")
    return None
