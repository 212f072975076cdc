"""The "did you mean" of an unknown model id, in bounded time whatever the catalog's size.

The suggester keeps every known id sorted, and sorted by its reversed spelling,
and hands difflib only the few ids next to the asked one in either order (those
sharing its longest prefix or suffix, which a typo or two leaves intact), never
the whole catalog.
"""

from __future__ import annotations

import bisect
import difflib
import operator
from collections.abc import Callable, Iterable
from typing import Final

__all__ = ["Suggester"]

_ALL_IN: Final = 128  # a catalog with this few ids is searched whole, as difflib always did
_NEAR: Final = 6  # ids taken on each side of an unknown one, in each of the two sort orders
_backwards: Final = operator.itemgetter(slice(None, None, -1))


class Suggester:
    """Close-match candidates for an unknown id in bounded time (see the module docstring).

    Up to ``_ALL_IN`` ids are all candidates; beyond that, the ``_NEAR`` ids on
    either side of the asked one in id order and in reversed-id order, so difflib
    never compares more than ``4 * _NEAR`` ids whatever the catalog's size.
    """

    __slots__ = ("_ids", "_known", "_reversed")

    def __init__(self, ids: Iterable[str]) -> None:
        known = frozenset(ids)
        self._known = known
        self._ids = sorted(known)
        self._reversed = sorted(map(_backwards, known)) if len(known) > _ALL_IN else []

    def same_ids(self, ids: frozenset[str]) -> bool:
        """Whether this index was built from exactly ``ids`` (then it can be kept)."""
        return ids == self._known

    def candidates(self, query: str) -> list[str]:
        """The ids difflib is shown for ``query``."""
        ids = self._ids
        if len(ids) <= _ALL_IN:
            return ids
        i = bisect.bisect_left(ids, query)
        near = dict.fromkeys(ids[max(0, i - _NEAR) : i + _NEAR])
        flipped, backwards = self._reversed, query[::-1]
        j = bisect.bisect_left(flipped, backwards)
        near.update(dict.fromkeys(r[::-1] for r in flipped[max(0, j - _NEAR) : j + _NEAR]))
        return list(near)

    def close(self, query: str, keep: Callable[[str], bool], n: int = 3) -> list[str]:
        """The ids closest to ``query`` among the candidates ``keep`` accepts, best first."""
        return difflib.get_close_matches(query, [c for c in self.candidates(query) if keep(c)], n=n)
