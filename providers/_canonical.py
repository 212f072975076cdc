"""Canonical model ids: the one normalisation that joins a model across gateways.

``canonical_id`` applies a few rules, then the alias table (data, in
``catalogs/canonical.json``):

1. case is folded and surrounding space dropped: ``GPT-4o-mini`` -> ``gpt-4o-mini``;
2. a ``vendor/`` prefix is dropped: ``anthropic/claude-3.5-sonnet`` -> ``claude-3.5-sonnet``;
3. a pinned snapshot joins its family: ``@20240620``, ``-20240620`` or ``-2024-06-20``
   at the end is dropped (the gateway keeps the pinned id on the wire);
4. Anthropic's dashed versions are dotted: ``claude-3-5-sonnet`` -> ``claude-3.5-sonnet``;
5. the alias table maps what is left: ``sonnet-3.7`` -> ``claude-3.7-sonnet``.

Canonical ids are fixed points: normalising one returns it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

from ._errors import ConfigError

__all__ = ["Canonicalizer"]

_DATED: Final = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")
_CLAUDE_VERSION: Final = re.compile(r"(?<=-)(\d)-(\d)(?=-|$)")


def _step(name: str) -> str:
    name = name.strip().casefold()
    name = name.rsplit("/", 1)[-1]  # vendor prefix
    name = name.split("@", 1)[0]  # pinned snapshot
    name = _DATED.sub("", name, count=1)
    if name.startswith("claude-"):
        name = _CLAUDE_VERSION.sub(r"\1.\2", name)
    return name


def _by_rule(model_id: str) -> str:
    # Apply the rules until nothing changes, so normalising is idempotent
    # ("x-20240101-20240102", "a/b/c"). After the first step (which folds case)
    # every step keeps or shortens the id, so this ends.
    name = model_id
    for _ in range(len(model_id) + 2):
        new = _step(name)
        if new == name:
            return name
        name = new
    return name


class Canonicalizer:
    """Maps any gateway's model id to its canonical id.

    Args:
        aliases: normalised id -> canonical id. Keys are normalised by the rules
            above before use, so ``{"Sonnet-3.7": ...}`` works too.

    Raises:
        ConfigError: when an alias points at an id that is itself an alias (the
            table must be flat, so one lookup is enough), or at an id that the
            rules would change.
    """

    __slots__ = ("_aliases", "_memo")

    def __init__(self, aliases: Mapping[str, str]) -> None:
        table = {_by_rule(k): v for k, v in aliases.items()}
        for source, target in table.items():
            if _by_rule(target) != target:
                raise ConfigError(f"alias {source!r} -> {target!r}: the target is not in canonical form")
            if target in table and table[target] != target:
                raise ConfigError(f"alias {source!r} -> {target!r}: the target is itself an alias")
        self._aliases: dict[str, str] = table
        self._memo: dict[str, str] = {}

    @property
    def aliases(self) -> Mapping[str, str]:
        """The alias table (normalised id -> canonical id)."""
        return self._aliases

    def with_aliases(self, extra: Mapping[str, str]) -> Canonicalizer:
        """A canonicalizer whose table is this one's with ``extra`` laid over it."""
        return Canonicalizer({**self._aliases, **{_by_rule(k): v for k, v in extra.items()}})

    def __call__(self, model_id: str) -> str:
        """Return the canonical id of ``model_id``."""
        try:
            return self._memo[model_id]
        except KeyError:
            pass
        name = _by_rule(model_id)
        canonical = self._aliases.get(name, name)
        if len(self._memo) < 65_536:  # bounded: ids come from catalogs and from callers
            self._memo[model_id] = canonical
        return canonical
