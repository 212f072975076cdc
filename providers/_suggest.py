"""The "did you mean" of an unknown model id, in bounded time whatever the catalog's size.

The suggester keeps every known id sorted, and sorted by its reversed spelling,
and hands difflib only the few ids next to the asked one in either order (those
sharing its longest prefix or suffix, which a typo or two leaves intact), never
the whole catalog.

Sorting a large catalog's ids is the one costly part, and it is needed only once an
id is unknown, so it is not done while the graph is built: a small catalog's
suggester sorts at once, a large one's in a background thread
(:meth:`Suggester.warm`) or in the worker thread that merged a refresh
(:meth:`Suggester.prepare`); a question asked before that is done waits for it.
After a rebuild that adds or drops a few ids, the sorted lists are the previous
suggester's with those merged in or filtered out, not sorted again. Long sorts are
done in steps, so a thread doing them holds the interpreter lock only briefly.
"""

from __future__ import annotations

import bisect
import itertools
import operator
import threading
import weakref
from collections.abc import Callable, Collection, Iterable
from typing import Final

__all__ = ["Suggester", "sorted_in_steps"]

_ALL_IN: Final = 128  # a catalog with this few ids is searched whole, as difflib always did
_NEAR: Final = 6  # ids taken on each side of an unknown one, in each of the two sort orders
_INLINE: Final = 4_096  # a suggester of this few ids is built at once: a few milliseconds
_STEP: Final = 16_384  # items sorted in one call; longer lists are sorted in runs, then merged
_backwards: Final = operator.itemgetter(slice(None, None, -1))


def sorted_in_steps(items: Iterable[str]) -> list[str]:
    """``sorted(items)``, done as sorts of short runs merged pairwise (each merge one C call).

    A thread sorting 200,000 ids in one call holds the interpreter lock for 100 ms or more;
    done this way, for about one merge of the whole list at most.
    """
    whole = list(items)
    if len(whole) <= _STEP:
        whole.sort()
        return whole
    runs = [sorted(whole[i : i + _STEP]) for i in range(0, len(whole), _STEP)]
    while len(runs) > 1:  # timsort finds the two sorted runs of each pair and merges them
        runs = [
            sorted(runs[i] + runs[i + 1]) if i + 1 < len(runs) else runs[i] for i in range(0, len(runs), 2)
        ]
    return runs[0]


def _merged(ordered: list[str], dropped: frozenset[str], added: list[str]) -> list[str]:
    """``ordered`` without ``dropped``, with ``added`` (sorted) merged in: linear, in C."""
    kept = list(itertools.filterfalse(dropped.__contains__, ordered)) if dropped else ordered
    return sorted(kept + added) if added else kept


def _prepare(suggester: weakref.ref[Suggester]) -> None:
    found = suggester()
    if found is not None:  # not dropped (by a newer index) before its turn came
        found.prepare()


class Suggester:
    """Close-match candidates for an unknown id in bounded time (see the module docstring).

    Up to ``_ALL_IN`` ids are all candidates; beyond that, the ``_NEAR`` ids on
    either side of the asked one in id order and in reversed-id order, so difflib
    never compares more than ``4 * _NEAR`` ids whatever the catalog's size.

    Args:
        sources: the ids a suggestion may name, in collections that do not change
            (an id may be in more than one).
        previous: the suggester of the index this one's replaces; once it is
            prepared, this one is made from its sorted lists when few ids changed.
    """

    __slots__ = ("__weakref__", "_ids", "_known", "_lock", "_previous", "_reversed", "_sources", "_thread")

    def __init__(self, *sources: Collection[str], previous: Suggester | None = None) -> None:
        self._sources = sources
        self._known: frozenset[str] = frozenset()
        self._ids: list[str] | None = None  # set last, once both lists are built
        self._reversed: list[str] = []
        self._previous = previous if previous is not None and previous.ready else None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        """Whether the sorted lists are built (questions then cost bounded time)."""
        return self._ids is not None

    def warm(self) -> None:
        """Build the sorted lists: now for a small catalog, else in a background thread."""
        if self._ids is not None:
            return
        if sum(map(len, self._sources)) <= _INLINE:
            self.prepare()
            return
        with self._lock:
            if self._ids is None and self._thread is None:
                self._thread = threading.Thread(
                    target=_prepare, args=(weakref.ref(self),), name="switchyard-suggest", daemon=True
                )
                self._thread.start()

    def prepare(self) -> None:
        """Build the sorted lists in this thread, or wait for the background thread building them."""
        if self._ids is not None:
            return
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._lock:
            if self._ids is None:
                self._build()

    def _build(self) -> None:
        sources, previous = self._sources, self._previous
        known = self._known = frozenset(itertools.chain.from_iterable(sources))
        self._previous, self._sources = None, ()
        large = len(known) > _ALL_IN
        if previous is not None and previous._ids is not None and (previous._reversed or not large):
            added, dropped = known - previous._known, previous._known - known
            if len(added) + len(dropped) <= len(known) // 4:
                new = sorted_in_steps(added)
                if large:
                    gone = frozenset(map(_backwards, dropped))
                    self._reversed = _merged(previous._reversed, gone, sorted_in_steps(map(_backwards, new)))
                self._ids = _merged(previous._ids, dropped, new)
                return
        self._reversed = sorted_in_steps(map(_backwards, known)) if large else []
        # Sorted from the sources, not the set: a gateway's wire ids come in order already,
        # and a sort of runs is a merge.
        self._ids = list(dict.fromkeys(sorted_in_steps(itertools.chain.from_iterable(sources))))

    def candidates(self, query: str) -> list[str]:
        """The ids difflib is shown for ``query``."""
        ids = self._ids
        if ids is None:
            self.prepare()
            ids = self._ids
            assert ids is not None
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
        import difflib  # loaded for the first suggestion, not by every import of switchyard

        return difflib.get_close_matches(query, [c for c in self.candidates(query) if keep(c)], n=n)
