"""Token estimates without the network.

tiktoken downloads its tables at run time, which cannot work where nothing
leaves the machine, and each model family counts differently anyway. The
:class:`HeuristicEstimator` uses OpenAI's rule of thumb, about four characters
per token for English text, with two corrections: a CJK character counts as one
token (those scripts run near one token per character), and each message adds 4
tokens of framing plus 3 for the reply's priming (OpenAI's chat format). An image
part counts 85 tokens (a low-detail image), tool definitions their JSON length
over four. It is an estimate for ranking, cost and admission; the gateway's own
``usage`` is what is billed and what buckets reconcile to.
"""

from __future__ import annotations

import json
import math
from typing import Final, Protocol

from ._request import ChatRequest, thaw

__all__ = ["HeuristicEstimator", "TokenEstimator"]

_IMAGE_TOKENS: Final = 85
_PER_MESSAGE: Final = 4
_PRIMING: Final = 3


class TokenEstimator(Protocol):
    """Estimates tokens before anything is sent."""

    def prompt_tokens(self, request: ChatRequest) -> int:
        """Tokens the request's prompt will count (messages and tools)."""
        ...

    def text_tokens(self, text: str) -> int:
        """Tokens of a piece of text."""
        ...


def _is_cjk(ch: str) -> bool:
    code = ord(ch)
    return (
        0x3040 <= code <= 0x30FF  # kana
        or 0x3400 <= code <= 0x4DBF  # CJK extension A
        or 0x4E00 <= code <= 0x9FFF  # CJK unified ideographs
        or 0xAC00 <= code <= 0xD7AF  # Hangul syllables
        or 0xF900 <= code <= 0xFAFF  # CJK compatibility ideographs
    )


class HeuristicEstimator:
    """About four characters per token (one per CJK character), plus chat framing."""

    __slots__ = ()

    def text_tokens(self, text: str) -> int:
        """``ceil(non-CJK characters / 4) + CJK characters``; 0 for empty text."""
        if not text:
            return 0
        if text.isascii():
            return math.ceil(len(text) / 4)
        cjk = sum(1 for ch in text if _is_cjk(ch))
        return math.ceil((len(text) - cjk) / 4) + cjk

    def prompt_tokens(self, request: ChatRequest) -> int:
        """Each message's text + 4, images 85 each, tools by JSON length, + 3 for the reply."""
        total = _PRIMING
        for message in request.messages:
            content = message.content
            if type(content) is str:  # the common case, without the general path's calls
                total += _PER_MESSAGE + (
                    -(-len(content) // 4) if content.isascii() else self.text_tokens(content)
                )
                if message.tool_calls:
                    total += self.text_tokens(json.dumps(thaw(message.tool_calls)))
                continue
            total += _PER_MESSAGE + self.text_tokens(message.text)
            if isinstance(message.content, tuple):
                total += _IMAGE_TOKENS * sum(1 for p in message.content if p.get("type") == "image_url")
            if message.tool_calls:
                total += self.text_tokens(json.dumps(thaw(message.tool_calls)))
        if request.tools:
            total += self.text_tokens(json.dumps(thaw(request.tools)))
        return total
