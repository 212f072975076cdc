"""The refusals every gateway shares: parameter values, and input a model cannot take.

Each dialect checks a body's shape by its own error table (``_openai_dialect``,
``_onellm_dialect``), with the parameter tests here. Then, at every gateway:
parameters the catalog marks unsupported for the model (Onetoken's search models)
are 400 ``unsupported_parameter``; image (``image_url``), PDF (``file``) and audio
(``input_audio``) content parts are 400 ``unsupported_content`` for a model whose
offer marks that input False (``Capabilities.images``, ``pdf``, ``audio``);
``tools`` likewise when ``Capabilities.tools`` is False (where the dialect takes
tools). A capability that is not known (None) is accepted, as the router's filters
assume. A prompt plus ``max_tokens`` over the context window is 400
``context_length_exceeded``.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

from .._offer import Capabilities

__all__ = [
    "INPUT_PARTS",
    "PARAMS",
    "Refusal",
    "check_capabilities",
    "check_context",
    "strings",
    "wrong_param",
]


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


def _whole(low: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low


def _number(low: float, high: float) -> Callable[[Any], bool]:
    return lambda v: (
        isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) and low <= v <= high
    )


def strings(v: Any) -> bool:
    """An array of strings."""
    return isinstance(v, list) and all(isinstance(s, str) for s in v)


PARAMS: Final[Mapping[str, tuple[Callable[[Any], bool], str]]] = {
    "max_tokens": (_whole(1), "an integer of at least 1"),
    "temperature": (_number(0, 2), "a number from 0 to 2"),
    "top_p": (_number(0, 1), "a number from 0 to 1"),
}
"""Parameter -> (the test its value passes, what it must be), at every gateway. null is always accepted."""


def wrong_param(
    body: Mapping[str, Any], params: Mapping[str, tuple[Callable[[Any], bool], str]]
) -> str | None:
    """What is wrong with the first parameter in ``body`` that fails its test, or None."""
    for name, (test, what) in params.items():
        if name in body and body[name] is not None and not test(body[name]):
            return f"'{name}' must be {what}, not {reprlib.repr(body[name])}."
    return None


def check_capabilities(
    body: Mapping[str, Any], capabilities: Capabilities, *, takes_tools: bool = True
) -> Refusal | None:
    """A refusal when the request carries a parameter or input the model cannot take (False).

    Unknown (None) is accepted. ``takes_tools=False`` (OneLLM, which ignores ``tools``)
    skips the tools check.
    """
    for param in capabilities.unsupported_params:
        if param in body:
            return Refusal(
                400,
                f"Unsupported parameter: '{param}' is not supported with this model.",
                "unsupported_parameter",
            )
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


def check_context(context_window: int | None, prompt_tokens: int, max_tokens: int | None) -> Refusal | None:
    """A refusal when the prompt plus ``max_tokens`` does not fit the context window (when known)."""
    asked = prompt_tokens + (max_tokens or 0)
    if context_window is None or asked <= context_window:
        return None
    return Refusal(
        400,
        (
            f"This model's maximum context length is {context_window} tokens. However, you "
            f"requested {asked} tokens. Please reduce the length of the messages."
        ),
        "context_length_exceeded",
    )
