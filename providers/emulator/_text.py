"""Deterministic replies and a consistent token count for the emulator."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from typing import Any, Final

__all__ = ["LONGEST_REPLY", "Completion", "complete", "count_prompt_tokens", "count_tokens"]

_WORDS: Final = (
    "the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "while", "routers",
    "weigh", "every", "gateway", "and", "pick", "one", "that", "answers", "fast", "costs",
    "little", "and", "keeps", "its", "promises", "until", "the", "next", "request", "arrives",
)  # fmt: skip
_IMAGE_TOKENS: Final = 85
_NATURAL_MIN: Final = 16
_NATURAL_SPAN: Final = 33  # natural replies run 16 to 48 tokens
LONGEST_REPLY: Final = _NATURAL_MIN + _NATURAL_SPAN - 1
"""The longest natural reply, in tokens: what a request without ``max_tokens`` may cost."""


def count_tokens(text: str) -> int:
    """The emulator's token count of a text: one token per four characters, at least one."""
    return max(1, math.ceil(len(text) / 4))


def count_prompt_tokens(messages: Sequence[Any], tools: Any = None) -> int:
    """Prompt tokens: each message's text plus 4 for its framing, plus 3 for the reply's priming.

    An image part counts 85 tokens (a low-detail image); an assistant message's
    ``tool_calls`` and the request's ``tools``, when given, count as their JSON text
    (switchyard's own estimate counts the same way).
    """
    total = 3 if not tools else 3 + count_tokens(json.dumps(tools))
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            parts = [p for p in content if isinstance(p, dict)]
            total += _IMAGE_TOKENS * sum(1 for p in parts if p.get("type") == "image_url")
            content = " ".join(str(p.get("text", "")) for p in parts)
        total += 4 + count_tokens(content if isinstance(content, str) else "")
        calls = message.get("tool_calls") if isinstance(message, dict) else None
        if calls:
            total += count_tokens(json.dumps(calls))
    return total


class Completion:
    """A reply: its words (one token each), and why it stopped."""

    __slots__ = ("finish_reason", "words")

    def __init__(self, words: list[str], finish_reason: str) -> None:
        self.words = words
        self.finish_reason = finish_reason

    @property
    def text(self) -> str:
        """The reply's text."""
        return "".join(self.words)

    @property
    def tokens(self) -> int:
        """Completion tokens."""
        return len(self.words)


def complete(
    model: str, messages: Sequence[Any], max_tokens: int | None, stop: Sequence[str] = ()
) -> Completion:
    """The deterministic reply to ``messages``: the same input always gives the same text.

    Its natural length (16 to 48 tokens) comes from a hash of the input; ``max_tokens``
    cuts it (finish reason ``length``); a stop sequence ends it early (``stop``).
    """
    digest = hashlib.blake2b(repr((model, messages)).encode(), digest_size=8).digest()
    seed = int.from_bytes(digest, "big")
    natural = _NATURAL_MIN + seed % _NATURAL_SPAN
    n = natural if max_tokens is None else min(natural, max_tokens)
    start = seed % len(_WORDS)
    words = [(" " if i else "") + _WORDS[(start + i) % len(_WORDS)] for i in range(n)]
    finish = "length" if n < natural else "stop"
    if stop:
        text = ""
        for i, word in enumerate(words):
            text += word
            if any(s in text for s in stop):
                return Completion(words[:i], "stop")
    return Completion(words, finish)
