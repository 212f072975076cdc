"""The error tree of switchyard.

Every error the library raises derives from :class:`RouterError`, which users
import as ``router.RouterError``. The tree so far::

    RouterError
    ├── ConfigError (ValueError)           a value or a configuration is invalid
    ├── UnknownModelError (LookupError)    no configured gateway serves the model
    └── CatalogError (ValueError)          a catalog snapshot or models listing cannot be read

Messages say what was wrong and what to do about it. They never contain an
API key.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["CatalogError", "ConfigError", "RouterError", "UnknownModelError"]


class RouterError(Exception):
    """Root of every error switchyard raises."""


class ConfigError(RouterError, ValueError):
    """A value or a configuration is invalid; raised before anything is sent."""


class CatalogError(RouterError, ValueError):
    """A catalog snapshot or a gateway's models listing cannot be read."""


class UnknownModelError(RouterError, LookupError):
    """No configured gateway serves the model.

    Attributes:
        model: the id that was asked for.
        suggestions: the closest known ids, best first (possibly empty).
    """

    def __init__(self, model: str, suggestions: Sequence[str] = ()) -> None:
        self.model = model
        self.suggestions = tuple(suggestions)
        message = f"model {model!r} is not served by any configured gateway"
        if self.suggestions:
            best, *others = self.suggestions
            message += f"; did you mean {best!r}?"
            if others:
                message += " (also close: " + ", ".join(repr(s) for s in others) + ")"
        else:
            message += "; run `switchyard catalog` to list the models that are"
        super().__init__(message)
