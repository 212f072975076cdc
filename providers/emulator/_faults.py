"""What can go wrong at an emulated gateway: latency, errors, outages, broken streams; tool calls."""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import attrs

from .._errors import ConfigError

__all__ = ["FAULT_STATUSES", "Faults", "Latency", "Malformed", "Outage"]

FAULT_STATUSES: Final = frozenset({400, 402, 429, 500, 502, 503, 504})
"""Statuses an error rate may inject."""

# z such that P(Z <= z) = 0.99 for a standard normal: p99 = median * exp(sigma * z).
_Z99: Final = 2.3263478740408408


def _non_negative(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{attribute.name} must be a non-negative number of seconds, not {value!r}")


@attrs.frozen
class Latency:
    """A delay: fixed, or lognormal with the given median and 99th percentile.

    Build with :meth:`fixed` or :meth:`lognormal`; ``Latency()`` is no delay.
    """

    median: float = attrs.field(default=0.0, validator=_non_negative)
    p99: float = attrs.field(default=0.0, validator=_non_negative)

    def __attrs_post_init__(self) -> None:
        if self.p99 < self.median:
            raise ConfigError(f"latency p99 ({self.p99}) must be at least the median ({self.median})")

    @classmethod
    def fixed(cls, seconds: float) -> Latency:
        """Always ``seconds``."""
        return cls(seconds, seconds)

    @classmethod
    def lognormal(cls, median: float, p99: float) -> Latency:
        """Lognormal: half the delays under ``median``, 1% over ``p99``."""
        return cls(median, p99)

    def sample(self, rng: random.Random) -> float:
        """One delay."""
        if self.p99 == self.median or self.median == 0:
            return self.median
        sigma = math.log(self.p99 / self.median) / _Z99
        return rng.lognormvariate(math.log(self.median), sigma)

    @classmethod
    def parse(cls, value: Any) -> Latency:
        """From a number (fixed seconds) or ``{"median": m, "p99": p}``."""
        if isinstance(value, Latency):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return cls.fixed(float(value))
        if isinstance(value, Mapping) and set(value) <= {"median", "p99"} and "median" in value:
            return cls(float(value["median"]), float(value.get("p99", value["median"])))
        raise ConfigError(f"a latency is seconds or {{'median': s, 'p99': s}}, not {value!r}")


class Outage(enum.StrEnum):
    """How a gateway is down."""

    REFUSE = "refuse"
    """Nothing listens: connections are refused."""
    HANG = "hang"
    """Connections are accepted and never answered."""


class Malformed(enum.StrEnum):
    """How a 200 can be broken."""

    JSON = "json"
    """Truncated JSON (in a stream: an event that is not JSON)."""
    HTML = "html"
    """An HTML maintenance page with status 200."""
    EMPTY = "empty"
    """An empty body (in a stream: the stream ends with no events)."""


def _rates(value: Mapping[Any, float] | None, *, keys: frozenset[Any], what: str) -> Mapping[Any, float]:
    if not value:
        return {}
    out: dict[Any, float] = {}
    for key, rate in value.items():
        k = int(key) if what == "status" else Malformed(key)
        if k not in keys:
            raise ConfigError(f"an error rate takes a status in {sorted(keys)}, not {key!r}")
        if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 <= rate <= 1:
            raise ConfigError(f"the rate for {what} {key!r} must be from 0 to 1, not {rate!r}")
        out[k] = float(rate)
    if sum(out.values()) > 1 + 1e-9:
        raise ConfigError(f"{what} rates add up to more than 1: {out}")
    return out


def _latency(value: Any) -> Latency:
    return Latency.parse(value)


def _optional_latency(value: Any) -> Latency | None:
    return None if value is None else Latency.parse(value)


def _status_rates(value: Mapping[Any, float] | None) -> Mapping[int, float]:
    return _rates(value, keys=FAULT_STATUSES, what="status")


def _malformed_rates(value: Mapping[Any, float] | None) -> Mapping[Malformed, float]:
    return _rates(value, keys=frozenset(Malformed), what="malformed")


def _optional_outage(value: Outage | str | None) -> Outage | None:
    if value is None:
        return None
    try:
        return Outage(value)
    except ValueError:
        raise ConfigError(f"an outage is 'refuse' or 'hang', not {value!r}") from None


def _tool_calls(value: Any) -> int:
    if isinstance(value, bool):
        return int(value)
    if not isinstance(value, int) or value < 0:
        raise ConfigError(f"tool_calls is True, False or a number of calls (0 or more), not {value!r}")
    return value


def _flag(instance: object, attribute: attrs.Attribute[Any], value: bool) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{attribute.name} is True or False, not {value!r}")


def _optional_count(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise ConfigError(f"{attribute.name} must be a whole number of chunks (0 or more), not {value!r}")


@attrs.frozen
class Faults:
    """The faults of one gateway (or one model at it). ``Faults()`` is a healthy gateway.

    Args:
        latency: the delay before a complete reply (and before the first chunk of a
            stream when ``ttft`` is not set).
        ttft: the delay before a stream's first chunk.
        inter_chunk: the delay between a stream's chunks, in seconds.
        errors: status -> probability of answering it instead (500, 502, 503, 504,
            429, 402, 400); drawn once per request.
        malformed: kind -> probability of a broken 200 (``json``, ``html``, ``empty``).
        outage: ``refuse`` (nothing listens) or ``hang`` (accept, never answer).
        stall_after: a stream sends this many content chunks, then nothing, holding
            the connection open.
        cut_after: a stream sends this many content chunks, then the connection is
            dropped (0: right after the headers, before the first chunk).
        error_event_after: a stream sends this many content chunks, then an
            ``{"error": ...}`` event inside the 200, and ends.
        tool_calls: when a request to an OpenAI-compatible gateway carries
            ``tools`` (and ``tool_choice`` is not ``"none"`` or one named function),
            the model calls this many of them, the first ones, even under
            ``tool_choice="auto"``; ``True`` is 1, and 2 makes parallel calls unless
            ``parallel_tool_calls`` is false. 0: only ``"required"`` or a named
            function calls a tool (see :mod:`providers.emulator` for the rules).
        interleave_tool_calls: a stream sends parallel tool calls' headers first and
            then their argument fragments in turn, instead of one call after the
            other as OpenAI does; a client must assemble them by ``index``.
    """

    latency: Latency = attrs.field(factory=Latency, converter=_latency)
    ttft: Latency | None = attrs.field(default=None, converter=_optional_latency)
    inter_chunk: float = attrs.field(default=0.0, validator=_non_negative)
    errors: Mapping[int, float] = attrs.field(factory=dict, converter=_status_rates)
    malformed: Mapping[Malformed, float] = attrs.field(factory=dict, converter=_malformed_rates)
    outage: Outage | None = attrs.field(default=None, converter=_optional_outage)
    stall_after: int | None = attrs.field(default=None, validator=_optional_count)
    cut_after: int | None = attrs.field(default=None, validator=_optional_count)
    error_event_after: int | None = attrs.field(default=None, validator=_optional_count)
    tool_calls: int = attrs.field(default=0, converter=_tool_calls)
    interleave_tool_calls: bool = attrs.field(default=False, validator=_flag)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Faults:
        """From the JSON shape of a faults file (keys as the arguments above).

        Raises:
            ConfigError: on an unknown key or a bad value.
        """
        unknown = set(data) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown fault settings: {', '.join(sorted(unknown))}")
        try:
            return cls(**data)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"bad fault settings {dict(data)!r}: {exc}") from exc

    def draw_status(self, rng: random.Random) -> int | None:
        """The error status to answer instead, or None for a normal answer."""
        return _draw(self.errors, rng)

    def draw_malformed(self, rng: random.Random) -> Malformed | None:
        """The way to break this 200, or None."""
        return _draw(self.malformed, rng)


_K = TypeVar("_K")


def _draw(rates: Mapping[_K, float], rng: random.Random) -> _K | None:
    if not rates:
        return None
    u = rng.random()
    for key, rate in rates.items():
        if u < rate:
            return key
        u -= rate
    return None
