"""The one check that a caller's value can go on the wire as strict JSON (RFC 8259).

:func:`freeze` walks a value once: it accepts dicts with string keys, lists,
tuples, strings that are valid UTF-8, finite floats, integers JSON peers can
read, booleans and None, and returns a read-only copy (dicts become read-only
mappings, lists tuples). Anything else is a :class:`ValidationError` naming
where it sits (``tools[0].function.parameters.properties.x``), raised before
anything is sent: a set, bytes, an object, NaN or Infinity, a lone surrogate,
a cycle, or nesting deeper than :data:`MAX_DEPTH`.

The walk builds no path while it succeeds; a failure collects its path as it
unwinds, so valid input pays only for the copy.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from ._errors import ValidationError

__all__ = ["INT_MAX", "INT_MIN", "MAX_DEPTH", "freeze", "not_utf8", "show", "thaw", "utf8"]

MAX_DEPTH: Final = 64
"""How deep containers may nest; real tool schemas stay far below, and a cycle stops here."""

INT_MIN: Final = -(2**63)
INT_MAX: Final = 2**64 - 1
"""The integers JSON peers read exactly (int64 and uint64); beyond them parsers lose digits or fail."""

_SHOW: Final = reprlib.Repr()
_SHOW.maxstring = _SHOW.maxother = 60


def show(value: object) -> str:
    """A short repr of a caller's value for an error message (bounded in length and depth)."""
    try:
        return _SHOW.repr(value)
    except Exception:  # an object whose own repr fails still gets a message
        return f"a {type(value).__name__} object"


def utf8(value: str) -> bool:
    """True when ``value`` encodes as UTF-8, i.e. holds no lone surrogate (ASCII answers at once)."""
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _surrogate(value: str) -> str:
    """What is wrong with text that is not UTF-8, and what to do."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        at = f"{value[exc.start]!r} at index {exc.start}"
    else:  # pragma: no cover - only called for text that failed utf8()
        at = "somewhere"
    return (
        f"has a lone surrogate {at}, which is not valid UTF-8; fix the text where it was decoded "
        "(e.g. bytes.decode('utf-8', errors='replace'))"
    )


def not_utf8(value: str, where: str, param: str) -> ValidationError:
    """The error for ``value`` (at ``where``) failing :func:`utf8`."""
    return ValidationError(f"{where} {_surrogate(value)}", param=param)


class _NotJSON(Exception):
    """Raised inside the walk; each level adds its step and container on the way out."""

    def __init__(self, why: str) -> None:
        self.why = why
        self.steps: list[str] = []
        self.containers: list[int] = []


def _step(key: object) -> str:
    if isinstance(key, int):
        return f"[{key}]"
    assert isinstance(key, str)
    return f".{key}" if key.isidentifier() else f"[{key!r}]"


def _scalar(value: object) -> object:
    """A JSON scalar's frozen form; raises _NotJSON for anything that is not one."""
    if isinstance(value, str):
        if not utf8(value):
            raise _NotJSON(_surrogate(value))
        return value
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise _NotJSON(
                f"is an integer of {value.bit_length()} bits, outside the -2**63 to 2**64-1 that JSON "
                "peers read exactly; send it as a string"
            )
        return value if type(value) is int else int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NotJSON(f"is {value!r}; JSON has no NaN or Infinity: send a finite number or None")
        return value if type(value) is float else float(value)
    if isinstance(value, set | frozenset):
        raise _NotJSON("is a set, which is not JSON; use a list")
    if isinstance(value, bytes | bytearray | memoryview):
        raise _NotJSON("is bytes, which are not JSON; decode them to a str (base64 for binary data)")
    raise _NotJSON(
        f"is a {type(value).__name__} object, which is not JSON; use a dict, list, str, number, bool or None"
    )


def _walk(value: object, depth: int) -> Any:
    if type(value) is str and value.isascii():  # the common leaf, first
        return value
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            raise _NotJSON(f"nests deeper than {MAX_DEPTH} levels; flatten it")
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                kind = type(key).__name__
                bad = _NotJSON(f"has a {kind} key {show(key)}; JSON keys are strings: use str(key)")
                bad.containers.append(id(value))
                raise bad
            try:
                _scalar(key)
                out[key] = _walk(item, depth + 1)
            except _NotJSON as exc:
                exc.steps.append(_step(key))
                exc.containers.append(id(value))
                raise
        return MappingProxyType(out)
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise _NotJSON(f"nests deeper than {MAX_DEPTH} levels; flatten it")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(_walk(item, depth + 1))
            except _NotJSON as exc:
                exc.steps.append(_step(index))
                exc.containers.append(id(value))
                raise
        return tuple(items)
    return _scalar(value)


def freeze(value: object, where: str, param: str) -> Any:
    """A deep, read-only copy of ``value`` (dicts become read-only mappings, lists tuples).

    Args:
        value: the caller's value.
        where: its name in error messages (``tools``, ``messages[0].content``).
        param: the parameter an error names.

    Raises:
        ValidationError: when ``value`` is not strict JSON, naming the path to the
            first bad element and what to do about it.
    """
    try:
        return _walk(value, 0)
    except _NotJSON as exc:
        steps = exc.steps[::-1]
        containers = exc.containers[::-1]
        # Nesting too deep through a container already on the path is a cycle: name where it closes.
        if exc.why.startswith("nests deeper") and len(set(containers)) < len(containers):
            again = next(i for i, c in enumerate(containers) if c in containers[:i])
            first = containers.index(containers[again])
            raise ValidationError(
                f"{where}{''.join(steps[:first])} contains itself (at {where}{''.join(steps[:again])}); "
                "JSON cannot carry a cycle: pass a copy without the back-reference",
                param=param,
            ) from None
        raise ValidationError(f"{where}{''.join(steps)} {exc.why}", param=param) from None


_SCALARS: Final = frozenset({str, int, float, bool, type(None)})


def thaw(value: Any) -> Any:
    """The JSON-ready form of :func:`freeze`'d data (read-only mappings to dicts, tuples to lists)."""
    if type(value) in _SCALARS:
        return value  # the usual case, without the Mapping ABC's slower check
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value
