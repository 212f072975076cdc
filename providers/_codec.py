"""What the two adapters share of JSON over HTTP: the POST they build, and reading a complete answer.

The request side: the headers (the key only in ``Authorization``), one JSON
encoder for every body, the refusal of a need the target cannot carry. The
answer side: the body of a complete answer as a JSON object or the typed error it
is (a status, a body that is not JSON, an error object inside a 200), usage, and
the cost of an answer.
"""

from __future__ import annotations

import json
import json.scanner
from typing import Any, Final

from ._classify import classify, error_from_object, malformed
from ._errors import UnsupportedFeature, ValidationError
from ._exchange import Response, WireRequest
from ._gateway import Gateway
from ._offer import Offer
from ._reply import Usage

__all__ = [
    "capped",
    "check_unmet",
    "cost",
    "encode",
    "indexed",
    "loads",
    "nonnegative",
    "parse_usage",
    "post",
    "read_payload",
]


def _unencodable(value: object) -> object:
    # Unreachable from a validated request (its values are strict JSON); said as one, not a TypeError.
    raise ValidationError(f"a value of type {type(value).__name__} cannot be sent as JSON")


# One C encoder for every body. json.dumps() and JSONEncoder.encode() build a new one per call
# (half of encoding a short body); this one is made once. It has no cycle check: a body is built
# from a validated request, whose values are frozen copies, which cannot hold a cycle.
_C_ENCODER: Final[Any] = getattr(json.encoder, "c_make_encoder", None)  # None without CPython's _json
_ENCODER: Final[Any] = (
    None
    if _C_ENCODER is None
    else _C_ENCODER(None, _unencodable, json.encoder.encode_basestring, None, ":", ",", False, False, False)
)
_PY_ENCODE: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def encode(body: object) -> bytes:
    """``body`` as compact UTF-8 JSON (no NaN or Infinity, which JSON has not)."""
    if _ENCODER is None:
        return _PY_ENCODE(body).encode()
    return "".join(_ENCODER(body, 0)).encode()


# The C scanner json.loads() ends in, called directly: for the usual body (UTF-8, a value with
# nothing around it) that skips the encoding sniff and both whitespace searches.
_SCAN: Final[Any] = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed types it as its own class


def _headers(gateway: Gateway, *, stream: bool) -> dict[str, str]:
    headers = {
        "Content-Type": "application/json",
        "Accept": "text/event-stream" if stream else "application/json",
    }
    if gateway.api_key is not None:
        headers["Authorization"] = f"Bearer {gateway.api_key.reveal()}"
    return headers


def post(
    gateway: Gateway, body: dict[str, Any], *, stream: bool, dropped: tuple[str, ...], prefilled: str = ""
) -> WireRequest:
    """The POST of ``body`` to the gateway's chat URL, with its headers."""
    return WireRequest(  # positional, in WireRequest's field order (one per attempt)
        gateway.name,
        "POST",
        gateway.chat_url,
        gateway.origin,
        _headers(gateway, stream=stream),
        encode(body),
        stream,
        dropped,
        prefilled,
    )


def check_unmet(unmet: frozenset[str], offer: Offer, gateway: Gateway) -> None:
    """Refuse a request whose needs the target cannot carry.

    Raises:
        UnsupportedFeature: naming what it cannot carry.
    """
    if unmet:
        raise UnsupportedFeature(
            f"{gateway.name} cannot carry {', '.join(sorted(unmet))} for {offer.gateway_model!r}; "
            "choose a model or gateway that supports it",
            param=sorted(unmet)[0],
        )


def nonnegative(value: object) -> int | None:
    """``value`` when it is a non-negative int (not a bool), else None (for decoded JSON, whose
    numbers are exactly ``int`` or ``float``)."""
    return value if type(value) is int and value >= 0 else None


def loads(data: str | bytes) -> tuple[bool, Any]:
    """(True, value) for valid JSON, (False, None) otherwise.

    The decoder's exception holds the whole document, which may echo a key: an
    error raised for it is raised outside the ``except`` block, so that neither its
    ``__cause__`` nor its ``__context__`` holds that document.
    """
    try:
        text: str = data.decode() if isinstance(data, bytes) else data
        value, end = _SCAN(text, 0)
        if end == len(text) or not text[end:].strip(" \t\n\r"):
            return True, value
    except (StopIteration, ValueError):  # also UnicodeDecodeError: json.loads says what it is
        pass
    # Leading whitespace, another encoding (json.loads sniffs UTF-16 and UTF-32), or not JSON.
    try:
        return True, json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return False, None


def capped(wire: WireRequest, completion: int) -> bool:
    """A length stop short of the ``max_tokens`` sent: OneLLM lowered it (its document says it
    does, silently, when the balance cannot pay for it; no header tells)."""
    asked = wire.json().get("max_tokens")
    return isinstance(asked, int) and completion < asked


def indexed(call: object) -> bool:
    """A streamed tool-call piece: an object with a non-negative integer ``index``."""
    if not isinstance(call, dict):
        return False
    index = call.get("index")
    return isinstance(index, int) and not isinstance(index, bool) and index >= 0


def cost(usage: Usage, offer: Offer) -> float | None:
    """The cost of an answer: the gateway's own figure, else the offer's prices times the usage."""
    if usage.reported_cost_usd is not None:
        return usage.reported_cost_usd
    return offer.cost_usd(usage.prompt_tokens, usage.completion_tokens)


async def read_payload(
    response: Response, gateway: Gateway, wall_now: float, answer_key: str
) -> dict[str, Any]:
    """A complete answer's JSON object, or the error it is: a status, a body that is not a JSON
    object, or an error object inside a 200 (one without ``answer_key``).

    Raises:
        UpstreamError: the typed error (and what the transport raises for a body it could not read).
    """
    body = await response.stream.read()  # Response.read(), one coroutine fewer
    status = response.status
    if status != 200:
        raise classify(gateway.name, status, response.headers, body, key=gateway.api_key, wall_now=wall_now)
    ok, payload = loads(body)
    if not ok:
        body = body.lstrip()
        what = "empty body" if not body else "an HTML page" if body[:1] == b"<" else "not JSON"
        raise malformed(gateway.name, status, what)
    if not isinstance(payload, dict):
        raise malformed(gateway.name, 200, "the body is not a JSON object")
    if "error" in payload and answer_key not in payload:
        raise error_from_object(
            gateway.name,
            payload,
            status=200,
            headers=response.headers,
            key=gateway.api_key,
            wall_now=wall_now,
        )
    return payload


def parse_usage(raw: Any) -> Usage | None:
    """OpenAI-style ``usage`` (with OneRouter's ``cost``), or None when it is not usable."""
    if type(raw) is not dict:
        return None
    prompt = raw.get("prompt_tokens")
    completion = raw.get("completion_tokens")
    if type(prompt) is not int or type(completion) is not int or prompt < 0 or completion < 0:
        return None
    total = raw.get("total_tokens")
    reported = raw.get("cost")
    return Usage(
        prompt,
        completion,
        total if type(total) is int and total >= 0 else prompt + completion,
        float(reported) if (type(reported) is int or type(reported) is float) and reported >= 0 else None,
    )
