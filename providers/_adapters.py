"""Wire adapters: everything about one wire format, between a :class:`ChatRequest` and the gateway's HTTP.

An adapter turns a request into a :class:`WireRequest` (method, URL, headers,
body), and the transport's :class:`Response` into an :class:`Answer` (read whole)
or into :class:`Delta` values (as it arrives), or into the typed error it is: it
checks the status, decodes the body (JSON, server-sent events) and classifies
failures. The transport does the I/O; the router never decodes SSE, classifies a
status or tests a wire format. There are two: :class:`OpenAIAdapter` for OneAI,
Onetoken, OneRouter and any OpenAI-compatible gateway (``_openai.py``, with a
small :class:`Dialect` per gateway), and :class:`OneLLMAdapter` for OneLLM's own
JSON (``_onellm.py``), which does not stream and gives its whole answer as one delta.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Final, Protocol

from ._exchange import Response, WireRequest
from ._gateway import Gateway, Wire
from ._offer import Offer
from ._onellm import OneLLMAdapter
from ._openai import DIALECTS, OpenAIAdapter
from ._reply import Answer, Delta
from ._request import ChatRequest

__all__ = ["Adapter", "adapter_for"]


class Adapter(Protocol):
    """One wire format: the request it sends, and how it reads what comes back."""

    def unmet(self, request: ChatRequest, offer: Offer) -> frozenset[str]:
        """What the request needs that this target cannot carry (empty when it can)."""
        ...

    def drops(self, request: ChatRequest, offer: Offer) -> int:
        """How many of the request's parameters this target would leave out."""
        ...

    def build(
        self,
        request: ChatRequest,
        offer: Offer,
        gateway: Gateway,
        *,
        stream: bool = False,
        prefill: str | None = None,
    ) -> WireRequest:
        """The HTTP request for ``request`` at ``offer`` on ``gateway``.

        Args:
            stream: the answer is wanted as it arrives (read with :meth:`deltas`);
                a format that does not stream asks for the complete answer.
            prefill: assistant text for the target to continue, where it takes
                one; :attr:`WireRequest.prefilled` says whether it was sent.

        Raises:
            UnsupportedFeature: when the target cannot carry what the request needs.
        """
        ...

    async def answer(
        self, response: Response, wire: WireRequest, offer: Offer, gateway: Gateway, *, wall_now: float
    ) -> Answer:
        """Read a complete answer to ``wire`` and parse it.

        Raises:
            UpstreamError: the typed error for a refusal, a failure, a malformed
                body, or a body the transport could not read.
        """
        ...

    def deltas(
        self, response: Response, wire: WireRequest, offer: Offer, gateway: Gateway, *, wall_now: float
    ) -> AsyncIterator[Delta | str]:
        """The answer to ``wire`` as it arrives; the iteration ends only when the answer is complete.

        A ``str`` stands for ``Delta(text=...)`` under the response id of the last
        delta that gave one: a stream's usual event, given without making a
        :class:`Delta` for each.

        Raises:
            UpstreamError: the typed error for a refusal, an error event, a
                malformed or empty answer, or a :class:`StreamCut` for one that
                ended before it finished.
        """
        ...


_ONELLM: Final = OneLLMAdapter()
_OPENAI_DEFAULT: Final = OpenAIAdapter()
_OPENAI: Final[Mapping[str, OpenAIAdapter]] = {name: OpenAIAdapter(d) for name, d in DIALECTS.items()}


def adapter_for(gateway: Gateway) -> Adapter:
    """The adapter for a gateway's wire format and dialect."""
    if gateway.wire is Wire.ONELLM:
        return _ONELLM
    return _OPENAI.get(gateway.name, _OPENAI_DEFAULT)
