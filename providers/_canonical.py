"""Canonical model ids: the one normalisation that joins a model across gateways.

``canonical_id`` applies a few rules, then the alias table (data, in
``catalogs/canonical.json``):

1. case is folded and surrounding space dropped: ``GPT-4o-mini`` -> ``gpt-4o-mini``;
2. a ``vendor/`` prefix is dropped: ``anthropic/claude-3.5-sonnet`` -> ``claude-3.5-sonnet``;
3. a pinned snapshot keeps its pin, spelled one way: ``@20240620``, ``-20240620`` and
   ``-2024-06-20`` at the end all become ``-20240620``. Two snapshots are never one
   model, and a snapshot is not its undated name: ``gpt-4o-2024-05-13`` ->
   ``gpt-4o-20240513``, which is not ``gpt-4o``;
4. Anthropic's dashed versions are dotted: ``claude-3-5-sonnet`` -> ``claude-3.5-sonnet``;
5. the alias table maps what is left: ``sonnet-3.7`` -> ``claude-3.7-sonnet``.

Canonical ids are fixed points: normalising one returns it unchanged. Which
aliases the shipped table may hold (none from a pinned snapshot to another model,
none for a vendor's moving alias) is stated in ``catalogs/canonical.json`` under
``rules`` and checked when it is loaded.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import re
from collections.abc import Mapping, Sequence
from typing import Final

from ._errors import ConfigError

__all__ = ["Canonicalizer", "pinned_date"]

_ISO_DATE: Final = re.compile(r"-(\d{4})-(\d{2})-(\d{2})$")
_PINNED: Final = re.compile(r"-(\d{8})$")
_CLAUDE_VERSION: Final = re.compile(r"(?<=-)(\d)-(\d)(?=-|$)")
# What makes an id, once folded and stripped of its vendor prefix, need more than that: a mark
# of another rule ('@', an ISO date at the end, a Claude id with a dashed version), a space or
# a '/' left, or a non-ASCII letter (which case folding may not leave as it is). An id without
# any is a fixed point of the rules. _ODD_CHAR is the first of these for ids joined by line breaks.
_MORE_TO_DO: Final = re.compile(
    r"[@/\s]|[^\x00-\x7f]|^claude-.*(?<=-)\d-\d(?=-|$)|-\d{4}-\d{2}-\d{2}$", re.DOTALL
)
_ODD_CHAR: Final = re.compile(r"[^\n\x21-\x2e\x30-\x3f\x41-\x7e]")
_ISO_AT_END: Final = re.compile(r"-\d{4}-\d{2}-\d{2}$", re.MULTILINE)
_tail: Final = operator.itemgetter(2)
_after_last_slash: Final = operator.methodcaller("rpartition", "/")


def _step(name: str) -> str:
    # Each rule runs only where its mark is (a '/', an '@', an ISO date's dashes, a Claude
    # id): a large listing is canonicalised id by id, and most ids need none of them.
    name = name.strip().casefold()
    if "/" in name:
        name = name.rsplit("/", 1)[-1]  # vendor prefix
    if "@" in name:
        base, _, pin = name.partition("@")  # OneRouter's (and Vertex's) "@20240620" pin
        name = f"{base}-{pin}" if pin else base
    if name[-3:-2] == "-" and name[-6:-5] == "-":
        name = _ISO_DATE.sub(r"-\1\2\3", name, count=1)
    if name.startswith("claude-"):
        name = _CLAUDE_VERSION.sub(r"\1.\2", name)
    return name


def _by_rule(model_id: str) -> str:
    # Apply the rules until nothing changes, so normalising is idempotent
    # ("a/b/c", "x@y@2024-01-02"). After the first step (which folds case) every
    # step shortens the id, or keeps its length and turns an '@' into a '-' or a
    # '-' into a '.', so this ends.
    name = model_id
    for _ in range(len(model_id) + 2):
        new = _step(name)
        if new == name:
            return name
        name = new
    return name


def _marked(tails: list[str]) -> list[int]:
    """Where in ``tails`` (folded ids without a vendor prefix) an id has more to do (_MORE_TO_DO).

    The ids are searched joined by line breaks, a few scans of one string in C, rather than
    one regular expression call per id; the hits are then found by their offsets.
    """
    text = "\n".join(tails)
    if text.count("\n") != len(tails) - 1:  # an id with a line break of its own: one by one
        return list(itertools.compress(range(len(tails)), map(_MORE_TO_DO.search, tails)))
    hits = [m.start() for m in _ODD_CHAR.finditer(text)]
    hits += [m.start() for m in _ISO_AT_END.finditer(text)]
    claude = [0] if text.startswith("claude-") else []
    at = text.find("\nclaude-")
    while at != -1:
        claude.append(at + 1)
        at = text.find("\nclaude-", at + 1)
    if not hits and not claude:
        return []
    starts = list(itertools.accumulate(map((1).__add__, map(len, tails)), initial=0))
    marked = {bisect.bisect_right(starts, at) - 1 for at in hits}
    for at in claude:
        line = bisect.bisect_right(starts, at) - 1
        if _CLAUDE_VERSION.search(tails[line]):
            marked.add(line)
    return sorted(marked)


def pinned_date(model_id: str) -> str | None:
    """The snapshot date an id pins (``"20240620"`` for ``claude-3-5-sonnet@20240620``), or None."""
    found = _PINNED.search(_by_rule(model_id))
    return None if found is None else found.group(1)


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

    def many(self, model_ids: Sequence[str]) -> list[str]:
        """The canonical id of each of ``model_ids``, in order: what calling this on each returns.

        The common case (fold, strip, drop a vendor prefix, look up the alias) runs as
        whole-list passes in C; an id with a mark of another rule takes the rules one by one.
        """
        tails = list(map(_tail, map(_after_last_slash, map(str.casefold, map(str.strip, model_ids)))))
        canonical: list[str] = list(map(self._aliases.get, tails, tails))
        for i in _marked(tails):
            canonical[i] = self(model_ids[i])
        return canonical

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
