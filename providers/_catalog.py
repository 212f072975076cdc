"""The shipped catalog snapshots (package data), read once per process.

Each gateway has one file in ``providers/catalogs/``: ``{"gateway", "source",
"notes", "defaults", "offers": [...]}``. ``canonical.json`` holds the canonical
model ids and the alias table.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any, Final

import attrs

from ._canonical import Canonicalizer
from ._errors import CatalogError, ConfigError
from ._offer import Capabilities, Offer

__all__ = ["ModelInfo", "known_models", "shipped_canonicalizer", "snapshot"]

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
    resource = resources.files("providers").joinpath("catalogs", f"{name}.json")
    try:
        return json.loads(resource.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CatalogError(f"no shipped catalog called {name!r}") from None
    except json.JSONDecodeError as exc:
        raise CatalogError(f"shipped catalog {name!r} is not valid JSON: {exc}") from exc


@functools.cache
def _canonical_data() -> tuple[Mapping[str, ModelInfo], Canonicalizer]:
    data = _read("canonical")
    models = MappingProxyType(
        {m: ModelInfo(model=m, vendor=info["vendor"]) for m, info in data["models"].items()}
    )
    return models, Canonicalizer(data["aliases"])


def known_models() -> Mapping[str, ModelInfo]:
    """The canonical models the shipped data knows, by id."""
    return _canonical_data()[0]


def shipped_canonicalizer() -> Canonicalizer:
    """The canonicalizer with the shipped alias table."""
    return _canonical_data()[1]


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
