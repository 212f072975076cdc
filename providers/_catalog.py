"""The shipped catalog snapshots (package data), read once per process.

Each gateway has one file in ``providers/catalogs/``: ``{"gateway", "source",
"notes", "defaults", "offers": [...]}``. ``canonical.json`` holds the canonical
model ids, the alias table, and the rules the table keeps (``rules``), which
:func:`parse_canonical` checks: an alias from a pinned snapshot only respells that
snapshot, an alias into one needs a note, and a vendor's moving alias
(``moving_aliases``) is joined to nothing.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from ._canonical import Canonicalizer, pinned_date
from ._errors import CatalogError, ConfigError
from ._offer import Capabilities, Offer

__all__ = [
    "CanonicalData",
    "ModelInfo",
    "known_models",
    "moving_aliases",
    "parse_canonical",
    "shipped_canonicalizer",
    "snapshot",
]

_OFFER_KEYS: Final = frozenset(
    {
        "gateway_model",
        "model",
        "input_price",
        "output_price",
        "price_source",
        "price_reference",
        "context_window",
        "capabilities",
    }
)


@attrs.frozen
class ModelInfo:
    """A canonical model: its id and its vendor."""

    model: str
    vendor: str


def _read(name: str) -> Any:
    from importlib import resources  # ~60 KiB: loaded by the first graph, not by the import

    resource = resources.files(__package__ or "switchyard.providers").joinpath("catalogs", f"{name}.json")
    try:
        return json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"no shipped catalog called {name!r}") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"shipped catalog {name!r} is not valid JSON: {exc}") from exc


@attrs.frozen
class CanonicalData:
    """``canonical.json`` once read and checked.

    Attributes:
        models: the canonical models, by id.
        canonicalizer: the normalisation rules with the alias table.
        moving_aliases: vendor aliases the vendor re-points over time, each its own model.
    """

    models: Mapping[str, ModelInfo]
    canonicalizer: Canonicalizer
    moving_aliases: frozenset[str]


def _check_alias(source: str, target: str, moving: frozenset[str], noted: frozenset[str]) -> None:
    """Refuse an alias that breaks the rules stated in canonical.json."""
    if source in moving or target in moving:
        name = source if source in moving else target
        raise CatalogError(
            f"alias {source!r} -> {target!r}: {name!r} is a vendor's moving alias, joined to no other "
            "model (rule 'moving_aliases'); drop the alias or pass it as a user alias"
        )
    source_date, target_date = pinned_date(source), pinned_date(target)
    if source_date is not None and source_date != target_date:
        raise CatalogError(
            f"alias {source!r} -> {target!r}: a pinned snapshot may only be respelled as the same "
            "snapshot, never joined to another date or to its undated name (rule 'snapshots')"
        )
    if target_date is not None and source_date is None and source not in noted:
        raise CatalogError(
            f"alias {source!r} -> {target!r}: an undated id points at a dated snapshot only with a "
            f"note under {source!r} in 'notes' saying where the data says so (rule 'snapshots')"
        )


def parse_canonical(data: Any) -> CanonicalData:
    """Read the content of ``canonical.json`` and check its alias table against its rules.

    Raises:
        CatalogError: when a part is missing or malformed, or an alias breaks a rule.
    """
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        raise CatalogError("canonical.json has no 'models' object")
    aliases, notes = data.get("aliases", {}), data.get("notes", {})
    moving_list = data.get("moving_aliases", [])
    if not isinstance(aliases, dict) or not isinstance(notes, dict) or not isinstance(moving_list, list):
        raise CatalogError("canonical.json: 'aliases' and 'notes' are objects, 'moving_aliases' a list")
    try:
        canonicalizer = Canonicalizer(aliases)
        models = {m: ModelInfo(model=m, vendor=info["vendor"]) for m, info in data["models"].items()}
    except (ConfigError, KeyError, TypeError) as exc:
        raise CatalogError(f"canonical.json: {exc}") from exc
    by_rule = Canonicalizer({})  # the rules alone, as the alias keys are normalised
    moving = frozenset(by_rule(str(m)) for m in moving_list)
    noted = frozenset(by_rule(k) for k in notes)
    for source, target in canonicalizer.aliases.items():
        _check_alias(source, target, moving, noted)
    return CanonicalData(models=MappingProxyType(models), canonicalizer=canonicalizer, moving_aliases=moving)


@functools.cache
def _canonical_data() -> CanonicalData:
    return parse_canonical(_read("canonical"))


def known_models() -> Mapping[str, ModelInfo]:
    """The canonical models the shipped data knows, by id."""
    return _canonical_data().models


def shipped_canonicalizer() -> Canonicalizer:
    """The canonicalizer with the shipped alias table."""
    return _canonical_data().canonicalizer


def moving_aliases() -> frozenset[str]:
    """The vendor aliases the shipped data treats as their own models (rule 'moving_aliases')."""
    return _canonical_data().moving_aliases


@functools.cache
def snapshot(name: str) -> tuple[Offer, ...]:
    """The offers of the shipped snapshot ``name``, in file order, duplicates kept.

    Each offer's ``model`` is the id as the gateway spells it unless the file
    says otherwise; the provider graph canonicalises it.

    Raises:
        CatalogError: when the file is missing or malformed.
    """
    data = _read(name)
    if data.get("gateway") != name or not isinstance(data.get("offers"), list):
        raise CatalogError(f"shipped catalog {name!r} has no 'gateway': {name!r} or no 'offers' list")
    defaults = data.get("defaults", {})
    default_caps = defaults.get("capabilities", {})
    offers = []
    for i, row in enumerate(data["offers"]):
        unknown = set(row) - _OFFER_KEYS
        if unknown:
            raise CatalogError(f"catalog {name!r}, offer {i}: unknown keys {sorted(unknown)}")
        try:
            offers.append(
                Offer(
                    row.get("model", row["gateway_model"]),
                    row["gateway_model"],
                    row.get("input_price"),
                    row.get("output_price"),
                    row.get("context_window"),
                    price_source=row.get("price_source"),
                    price_reference=row.get("price_reference"),
                    capabilities=Capabilities.from_json({**default_caps, **row.get("capabilities", {})}),
                    gateway=name,
                )
            )
        except (KeyError, ConfigError, TypeError) as exc:
            raise CatalogError(f"catalog {name!r}, offer {i}: {exc}") from exc
    return tuple(offers)
