"""The adapters' JSON: the direct encoder and scanner say what ``json.dumps``/``json.loads`` say."""

from __future__ import annotations

import json
import math

import pytest
from switchyard.providers import ValidationError
from switchyard.providers._codec import encode, loads

DOCUMENTS = [
    b'{"id":"x","choices":[{"message":{"content":"hi"}}]}',
    b'{"a": 1}  \r\n\t',  # whitespace after the value
    b'  \n{"a": 1}',  # whitespace before it: the general decoder's case
    '{"t": "caf\u00e9 \U0001f600"}'.encode(),
    '{"t": "caf\u00e9"}'.encode("utf-16"),  # another encoding, sniffed by json.loads
    b'\xef\xbb\xbf{"a": 1}',  # a UTF-8 byte-order mark
    b"[1, 2.5, true, null]",
    b'"just a string"',
    b"NaN",  # json.loads takes it; so does the direct path
]

NOT_JSON = [b"", b"   ", b"<html>", b'{"a": 1} trailing', b'{"a": 1}{"b": 2}', b"\xff\xfe\xfa", b'{"a":']


@pytest.mark.parametrize("document", DOCUMENTS)
def test_loads_reads_what_json_loads_reads(document: bytes) -> None:
    ok, value = loads(document)
    assert ok
    expected = json.loads(document)
    if isinstance(expected, float) and math.isnan(expected):
        assert math.isnan(value)
    else:
        assert value == expected
    if document.isascii():  # the stream's events come as str: the same answer
        assert loads(document.decode()) == (True, value) or math.isnan(value)


@pytest.mark.parametrize("document", NOT_JSON)
def test_loads_refuses_what_json_loads_refuses_without_an_exception_holding_the_document(
    document: bytes,
) -> None:
    with pytest.raises((ValueError, UnicodeDecodeError)):
        json.loads(document)
    assert loads(document) == (False, None)


def test_encode_is_compact_utf8_and_refuses_nan_and_objects() -> None:
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "caf\u00e9 \U0001f600"}],
        "temperature": 0.5,
    }
    assert encode(body) == json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    with pytest.raises(ValueError, match="JSON compliant"):
        encode({"temperature": math.nan})
    with pytest.raises(ValidationError, match="type set cannot be sent as JSON"):
        encode({"x": {1, 2}})
