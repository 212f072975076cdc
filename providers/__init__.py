"""Gateways, their catalogs and the provider graph.

The lowest layer of switchyard: values (:class:`Gateway`, :class:`Offer`,
:class:`Tier`), the shipped catalog snapshots, canonical model ids, the
:class:`ProviderGraph`, the clock seam and the root of the error tree.
"""

from ._canonical import Canonicalizer
from ._catalog import ModelInfo, known_models, shipped_canonicalizer
from ._clock import Clock, FakeClock, MonotonicClock
from ._errors import CatalogError, ConfigError, RouterError, UnknownModelError
from ._gateway import BUILTIN_GATEWAYS, Gateway, Wire
from ._graph import CatalogConflictWarning, Conflict, ProviderGraph, RefreshReport
from ._offer import Capabilities, Offer, PriceSource
from ._secret import Secret
from ._tier import Tier

__all__ = [
    "BUILTIN_GATEWAYS",
    "Canonicalizer",
    "Capabilities",
    "CatalogConflictWarning",
    "CatalogError",
    "Clock",
    "ConfigError",
    "Conflict",
    "FakeClock",
    "Gateway",
    "ModelInfo",
    "MonotonicClock",
    "Offer",
    "PriceSource",
    "ProviderGraph",
    "RefreshReport",
    "RouterError",
    "Secret",
    "Tier",
    "UnknownModelError",
    "Wire",
    "known_models",
    "shipped_canonicalizer",
]
