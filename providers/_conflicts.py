"""The conflict rule: one (gateway, gateway model) listed twice with different terms.

When one layer lists the same (gateway, gateway model) twice with different terms
(OneAI lists ``deepseek-r1`` at $0.80/$3.50 and at $0.55/$2.19), the graph takes
the most conservative reading of each field: the highest price of each kind
(unknown if any row's price is unknown), the smallest context window (unknown if
any row's is), and a capability only where every row agrees. A cost estimate then
never undershoots what the gateway may bill, and a prompt never overflows what it
may accept. Every conflict is kept as a :class:`Conflict`, with the layer it came from.
"""

from __future__ import annotations

import collections
import itertools
import operator
import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Final, Literal, TypeVar

import attrs

from ._offer import Capabilities, Offer, PriceSource

__all__ = [
    "CatalogConflictWarning",
    "Conflict",
    "ConflictWarnings",
    "Key",
    "Layer",
    "dedupe",
    "most_conservative",
    "repeated",
]

Key = tuple[str, str]
"""(gateway, gateway model): what identifies one offer."""
Layer = Literal["snapshot", "gateway", "live", "user"]

_by_gateway_model: Final = operator.attrgetter("gateway_model")
_K = TypeVar("_K", bound=Hashable)
_V = TypeVar("_V")


class CatalogConflictWarning(UserWarning):
    """A catalog lists one (gateway, model) twice with different terms."""


@attrs.frozen
class Conflict:
    """One duplicate (gateway, gateway model) with different terms, and how it was resolved.

    Attributes:
        gateway: the gateway whose listing has the duplicate.
        gateway_model: the duplicated id.
        rows: the rows as listed.
        kept: the offer the graph uses.
        layer: where the rows came from: ``snapshot`` (a shipped catalog; known,
            not warned), ``gateway`` (a custom gateway's offers), ``live`` (a
            models listing) or ``user`` (:meth:`ProviderGraph.add_offers`).
    """

    gateway: str
    gateway_model: str
    rows: tuple[Offer, ...]
    kept: Offer
    layer: Layer = "snapshot"

    def __str__(self) -> str:
        def terms(o: Offer) -> str:
            price = "unknown price" if not o.priced else f"${o.input_price:.2f}/${o.output_price:.2f} per 1M"
            ctx = "?" if o.context_window is None else f"{o.context_window:,}"
            return f"{price}, context {ctx}"

        listed = "; ".join(terms(r) for r in self.rows)
        return (
            f"{self.gateway} lists {self.gateway_model!r} {len(self.rows)} times with different terms "
            f"({listed}); using {terms(self.kept)}: the highest price of each kind and the smallest "
            "context window, so no estimate undershoots"
        )


class ConflictWarnings:
    """Warns once about each conflict in supplied data, for as long as it stays in the index."""

    def __init__(self) -> None:
        self._warned: set[tuple[str, str, tuple[Offer, ...]]] = set()

    def update(self, conflicts: Sequence[Conflict], stacklevel: int) -> None:
        """Warn about the conflicts not warned yet; ``stacklevel`` counts from the caller."""
        current: set[tuple[str, str, tuple[Offer, ...]]] = set()
        for conflict in conflicts:
            if conflict.layer == "snapshot":
                continue  # shipped data: resolved by the same rule and recorded in the catalog's notes
            key = (conflict.gateway, conflict.gateway_model, conflict.rows)
            current.add(key)
            if key not in self._warned:
                warnings.warn(str(conflict), CatalogConflictWarning, stacklevel=stacklevel + 1)
        self._warned = current  # only what is still there: bounded however often listings change


def repeated(keys: Sequence[_K], values: Sequence[_V]) -> dict[_K, list[_V]]:
    """Each key occurring more than once, with its values in order; the others cost no Python step."""
    counts = collections.Counter(keys)
    twice = {k for k, _ in itertools.takewhile(lambda kn: kn[1] > 1, counts.most_common())}
    groups: dict[_K, list[_V]] = {}
    for key, value in itertools.compress(zip(keys, values, strict=True), map(twice.__contains__, keys)):
        groups.setdefault(key, []).append(value)
    return groups


def most_conservative(rows: Sequence[Offer]) -> Offer:
    """Resolve duplicate rows by the rule in the module docstring."""
    first = rows[0]
    inp: float | None
    out: float | None
    if all(r.priced for r in rows):
        dearest = max(rows, key=lambda r: (r.input_price or 0.0, r.output_price or 0.0))
        inp = max(r.input_price or 0.0 for r in rows)
        out = max(r.output_price or 0.0 for r in rows)
        source, reference = dearest.price_source, dearest.price_reference
    else:
        inp = out = None
        source, reference = PriceSource.UNKNOWN, None
    windows = [r.context_window for r in rows if r.context_window is not None]

    def agreed(name: str) -> bool | None:
        values = {getattr(r.capabilities, name) for r in rows}
        return values.pop() if len(values) == 1 else None

    # Every flag Capabilities has (a new one included): known only where all rows agree.
    flags = {f.name: agreed(f.name) for f in attrs.fields(Capabilities) if f.name != "unsupported_params"}
    dropped = frozenset().union(*(r.capabilities.unsupported_params for r in rows))
    capabilities = Capabilities.from_json({**flags, "unsupported_params": dropped})
    return Offer(
        first.model,
        first.gateway_model,
        inp,
        out,
        min(windows) if len(windows) == len(rows) else None,
        price_source=source,
        price_reference=reference,
        capabilities=capabilities,
        gateway=first.gateway,
    )


def dedupe(
    rows: Sequence[Offer],
    layer: Layer,
    gateway: str,
    bind: Callable[[Sequence[Offer]], list[Offer]] | None = None,
) -> tuple[dict[str, Offer], list[Conflict]]:
    """Key one gateway's rows by gateway model, resolving conflicts; keys in first-seen order.

    ``bind``: binds the rows of a conflict before it is resolved, when the rows are
    not bound yet (the rest are bound later, and only when they need it).
    """
    wires = list(map(_by_gateway_model, rows))
    merged = dict(zip(wires, rows, strict=True))
    conflicts: list[Conflict] = []
    if len(merged) == len(rows):
        return merged, conflicts
    for wire, group in repeated(wires, rows).items():
        distinct = tuple(dict.fromkeys(group if bind is None else bind(group)))
        merged[wire] = distinct[0]
        if len(distinct) > 1:
            kept = most_conservative(distinct)
            conflicts.append(Conflict(gateway, wire, distinct, kept, layer))
            merged[wire] = kept
    return merged, conflicts
