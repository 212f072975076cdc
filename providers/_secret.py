"""A wrapper that keeps API keys out of reprs, logs, exceptions and traces."""

from __future__ import annotations

from typing import Final

from ._errors import ConfigError

__all__ = ["Secret"]

_MASK: Final = "Secret('**********')"


class Secret:
    """An API key. Its repr and str never show the value; only :meth:`reveal` does.

    Args:
        value: the key. It must be non-empty and contain no whitespace or control
            characters (it goes into an HTTP header).

    Raises:
        ConfigError: when the value is not a string, is empty or could break the header.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise ConfigError(f"an API key must be a str, not {type(value).__name__}")
        if not value:
            raise ConfigError("an API key must not be empty")
        if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
            raise ConfigError("an API key must not contain whitespace or control characters")
        self._value = value

    def reveal(self) -> str:
        """Return the key itself; call this only where it goes onto the wire."""
        return self._value

    def __repr__(self) -> str:
        return _MASK

    __str__ = __repr__

    def __format__(self, format_spec: str) -> str:
        return _MASK

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # keys are seldom compared: not loaded by every import of switchyard

        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))
