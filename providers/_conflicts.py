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
from collections.abc import Callable, Hashable, Sequence
from typing import Final, Literal, TypeVar

import attrs

from ._offer import Capabilities, Offer, PriceSource

__all__ = ["CatalogConflictWarning", "Conflict", "Key", "Layer", "dedupe", "most_conservative", "repeated"]

Key = tuple[str, str]
"""(gateway, gateway model): what identifies one offer."""
Layer = Literal["snapshot", "gateway", "live", "user"]

_by_gateway_model: Final = operator.attrgetter("gateway_model")
_by_gateway: Final = operator.attrgetter("gateway")
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
    gateway: str | None = None,
    bind: Callable[[Sequence[Offer]], list[Offer]] | None = None,
) -> tuple[dict[Key, Offer], list[Conflict]]:
    """Key one layer's rows by (gateway, gateway model), resolving conflicts; keys in first-seen order.

    ``gateway``: every row's, when the rows are not bound to it yet; ``bind`` then
    binds the rows of a conflict before it is resolved (the rest are bound later,
    and only when they need it).
    """
    sellers = itertools.repeat(gateway) if gateway is not None else map(_by_gateway, rows)
    keys: list[Key] = list(zip(sellers, map(_by_gateway_model, rows), strict=False))  # repeat() is endless
    merged = dict(zip(keys, rows, strict=True))
    conflicts: list[Conflict] = []
    if len(merged) == len(rows):
        return merged, conflicts
    for key, group in repeated(keys, rows).items():
        distinct = tuple(dict.fromkeys(group if bind is None else bind(group)))
        merged[key] = distinct[0]
        if len(distinct) > 1:
            kept = most_conservative(distinct)
            conflicts.append(Conflict(key[0], key[1], distinct, kept, layer))
            merged[key] = kept
    return merged, conflicts
