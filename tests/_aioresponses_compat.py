"""aioresponses 0.7.9 against aiohttp >= 3.14: a guarded shim, test-side only.

aiohttp 3.14 (a security release) made ``stream_writer`` a required argument of
``ClientResponse.__init__``; aioresponses 0.7.9 does not pass it, so every mocked
response raises TypeError (pnuckowski/aioresponses#289, fix proposed in #288 and
#292, not released). aiohttp only reads ``stream_writer.output_size``, so a writer
that reports 0 bytes sent is enough, which is what #288 does.

The shim installs itself only when aioresponses still builds responses without
the argument; once a fixed aioresponses is released it does nothing. Bodies over
64 KiB would also need #292; the tests keep mocked bodies small.
"""

from __future__ import annotations

import inspect
from typing import Any

import aiohttp
import aioresponses.core


class _SentNothing:
    """A stand-in for the request writer of a response that was never sent."""

    output_size = 0


class _CompatClientResponse(aiohttp.ClientResponse):
    def __init__(self, method: str, url: Any, **kwargs: Any) -> None:
        kwargs.setdefault("stream_writer", _SentNothing())
        super().__init__(method, url, **kwargs)


def install() -> bool:
    """Install the shim if this aioresponses needs it; return whether it did."""
    needs_writer = "stream_writer" in inspect.signature(aiohttp.ClientResponse.__init__).parameters
    passes_writer = "stream_writer" in inspect.getsource(aioresponses.core.RequestMatch._build_response)
    if needs_writer and not passes_writer and aioresponses.core.ClientResponse is aiohttp.ClientResponse:
        aioresponses.core.ClientResponse = _CompatClientResponse  # type: ignore[misc]
        return True
    return False
