"""switchyard's async core: the router, its values and errors, and the ``switchyard`` CLI."""

from providers import ConfigError, RouterError, UnknownModelError

__all__ = ["ConfigError", "RouterError", "UnknownModelError"]
