"""What a faster JSON library would save the router per request: stdlib json against orjson and msgspec.

The router's JSON work per request, timed alone: encoding a typical request body
(as the OpenAI adapter encodes it), decoding a typical plain reply, and decoding the
events of a streamed 16-token answer (stdlib: ``json.loads``; the stream reader's
``raw_decode`` shortcut takes about a third less per event). orjson and
msgspec are not dependencies: each is timed only when it is installed. Give
``--overhead FILE`` (a results file of ``switchyard.benchmarks.overhead``, or its
``request_overhead`` part) to see each saving as a share of a routed request's client CPU.

Run: ``python -m switchyard.benchmarks.json_codecs [--overhead FILE] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

from ._machine import provenance, write_figures

__all__ = ["json_costs", "main"]

WORDS = [" one", " that", " answers", " fast", " costs", " little", " and", " keeps"] * 2
HEAD = {"id": "chatcmpl-oneai-1", "object": "chat.completion.chunk", "created": 1795527559, "model": "kimi"}


def _samples() -> tuple[dict[str, Any], bytes, list[str]]:
    """A request body, a plain reply and a stream's event payloads, shaped as the emulator's."""
    from ..providers import ChatRequest, Gateway, ProviderGraph
    from ..providers.wire import adapter_for

    gateway = Gateway.builtin("oneai", "bench", base_url="http://127.0.0.1:9/v1")
    offer = ProviderGraph.from_catalogs([gateway]).offer("oneai", "kimi")
    request = ChatRequest.create(
        "kimi", [{"role": "user", "content": "Say hello in five words."}], max_tokens=16
    )
    body = adapter_for(gateway).build(request, offer, gateway).json()
    text = "".join(WORDS)
    usage = {"prompt_tokens": 14, "completion_tokens": 16, "total_tokens": 30}
    reply = {
        "id": "chatcmpl-oneai-1",
        "object": "chat.completion",
        "created": 1795527559,
        "model": "kimi",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}
        ],
        "usage": usage,
    }
    events = [
        {
            **HEAD,
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        }
    ]
    events += [
        {**HEAD, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]} for w in WORDS
    ]
    events.append({**HEAD, "choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]})
    events.append({**HEAD, "choices": [], "usage": usage})
    return body, json.dumps(reply).encode(), [json.dumps(e) for e in events]


def _codecs() -> dict[str, tuple[Callable[[Any], bytes], Callable[[bytes | str], Any]]]:
    """Each library's (encode to bytes, decode bytes or str), for those installed."""
    # As the adapters encode a request body (compact, UTF-8 as is, no NaN).
    encoder = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)

    def stdlib_encode(body: Any) -> bytes:
        return encoder.encode(body).encode()

    stdlib_decode: Callable[[bytes | str], Any] = json.loads
    out = {"json": (stdlib_encode, stdlib_decode)}
    if importlib.util.find_spec("orjson") is not None:
        import orjson

        out["orjson"] = (orjson.dumps, orjson.loads)
    if importlib.util.find_spec("msgspec") is not None:
        import msgspec

        out["msgspec"] = (msgspec.json.encode, msgspec.json.decode)
    return out


def _us(call: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=repeat)) / number * 1e6


def json_costs(number: int = 2000, repeat: int = 7) -> dict[str, Any]:
    """Microseconds of JSON work per request with each library (the fastest of ``repeat`` runs)."""
    body, reply, events = _samples()
    out: dict[str, Any] = {"stream_events": len(events)}
    for name, (encode, decode) in _codecs().items():
        figures = {
            "encode_request_us": _us(lambda encode=encode: encode(body), number, repeat),
            "decode_reply_us": _us(lambda decode=decode: decode(reply), number, repeat),
            "decode_stream_us": _us(lambda decode=decode: [decode(e) for e in events], number, repeat),
        }
        figures["plain_us"] = figures["encode_request_us"] + figures["decode_reply_us"]
        figures["stream_us"] = figures["encode_request_us"] + figures["decode_stream_us"]
        out[name] = figures
    for name in out.keys() - {"json", "stream_events"}:
        for mode in ("plain", "stream"):
            out[name][f"{mode}_saves_us"] = out["json"][f"{mode}_us"] - out[name][f"{mode}_us"]
    return out


def _shares(costs: dict[str, Any], overhead: dict[str, Any]) -> dict[str, Any]:
    """Each saving as a share of the routed request's client CPU (median over the router variants)."""
    overhead = overhead.get("request_overhead", overhead)
    shares: dict[str, Any] = {}
    for mode in ("plain", "stream"):
        routed = statistics.median(r["cpu_us_per_request"] for r in overhead[mode]["routers"].values())
        shares[mode] = {
            "routed_cpu_us_per_request": routed,
            "json_share": costs["json"][f"{mode}_us"] / routed,
        }
        for name in costs.keys() - {"json", "stream_events"}:
            shares[mode][f"{name}_saves_share"] = costs[name][f"{mode}_saves_us"] / routed
    return shares


def main(argv: list[str] | None = None) -> int:
    """Time the codecs and print the figures (and write JSON with --json)."""
    parser = argparse.ArgumentParser(prog="python -m switchyard.benchmarks.json_codecs")
    parser.add_argument(
        "--overhead", metavar="FILE", help="an overhead results file, for shares of a request"
    )
    parser.add_argument("--json", metavar="FILE", help="also write the figures here, with the machine")
    args = parser.parse_args(argv)
    head = provenance("json_codecs", argv, "python -m switchyard.benchmarks.json_codecs")
    figures: dict[str, Any] = {"json_costs": json_costs()}
    if args.overhead:
        with open(args.overhead, encoding="utf-8") as f:
            figures["shares"] = _shares(figures["json_costs"], json.load(f))
    write_figures(head, figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
