"""Wire adapters: pure translation between a :class:`ChatRequest` and a gateway's HTTP.

An adapter turns a request into a :class:`WireRequest` (method, URL, headers,
body), a complete :class:`RawResponse` into a :class:`Reply` or a typed error, and
an open stream into :class:`StreamDelta` values. It does no I/O; the transport
does. There are two: :class:`OpenAIAdapter` for OneAI, Onetoken, OneRouter and
any OpenAI-compatible gateway (``providers/_openai.py``, with a small
:class:`Dialect` per gateway), and :class:`OneLLMAdapter` for OneLLM's own JSON
(``providers/_onellm.py``). The router never decodes SSE, classifies a status or
tests a wire format: it asks the gateway's adapter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ._exchange import Adapter, RawResponse, StreamDelta, StreamResponse, WireRequest
from ._gateway import Gateway, Wire
from ._onellm import OneLLMAdapter
from ._openai import DIALECTS, Dialect, OpenAIAdapter

__all__ = [
    "Adapter",
    "Dialect",
    "OneLLMAdapter",
    "OpenAIAdapter",
    "RawResponse",
    "StreamDelta",
    "StreamResponse",
    "WireRequest",
    "adapter_for",
]


_ONELLM: Final = OneLLMAdapter()
_OPENAI_DEFAULT: Final = OpenAIAdapter()
_OPENAI: Final[Mapping[str, OpenAIAdapter]] = {name: OpenAIAdapter(d) for name, d in DIALECTS.items()}


def adapter_for(gateway: Gateway) -> Adapter:
    """The adapter for a gateway's wire format and dialect."""
    if gateway.wire is Wire.ONELLM:
        return _ONELLM
    return _OPENAI.get(gateway.name, _OPENAI_DEFAULT)
