"""The faults file of ``switchyard emulate --faults FILE``: tiers, balances, faults and a schedule."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .._errors import ConfigError
from .._gateway import BUILTIN_GATEWAYS
from .._tier import Tier
from ._accounts import RetryAfterStyle
from ._faults import Faults

__all__ = ["FaultsFile"]


@attrs.frozen
class FaultsFile:
    """A parsed faults file (``switchyard emulate --faults FILE``).

    The JSON is ``{"seed": n, "gateways": {name: settings}, "schedule": [...]}``.
    Per gateway: fault settings (the arguments of :class:`Faults`), plus ``tier``
    (``free``, ``pro`` or ``{"rpm", "tpm", "concurrency"}``), ``retry_after``
    (``seconds``, ``http-date``, ``ms``, ``alternate``), ``balance_usd`` and
    ``models`` (model -> fault settings). A schedule entry is ``{"at": seconds,
    "gateway": name, "model": optional, "faults": settings or null}``.
    """

    seed: int = 0
    tiers: Mapping[str, tuple[Tier, RetryAfterStyle]] = attrs.field(factory=dict)
    balances: Mapping[str, float] = attrs.field(factory=dict)
    faults: Mapping[str, Faults] = attrs.field(factory=dict)
    model_faults: Mapping[tuple[str, str], Faults] = attrs.field(factory=dict)
    schedule: tuple[tuple[float, str, Faults | None, str | None], ...] = ()

    @classmethod
    def parse(cls, data: Any) -> FaultsFile:
        """Validate and parse the JSON of a faults file.

        Raises:
            ConfigError: naming what is wrong.
        """
        if not isinstance(data, dict):
            raise ConfigError("a faults file is a JSON object")
        unknown = set(data) - {"seed", "gateways", "schedule"}
        if unknown:
            raise ConfigError(f"unknown keys in the faults file: {sorted(unknown)}")
        seed = data.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ConfigError("seed must be a whole number")
        gateways = data.get("gateways", {})
        if not isinstance(gateways, dict) or set(gateways) - set(BUILTIN_GATEWAYS):
            raise ConfigError(f"'gateways' maps gateway names ({', '.join(BUILTIN_GATEWAYS)}) to settings")
        tiers: dict[str, tuple[Tier, RetryAfterStyle]] = {}
        balances: dict[str, float] = {}
        faults: dict[str, Faults] = {}
        model_faults: dict[tuple[str, str], Faults] = {}
        for gateway, raw in gateways.items():
            if not isinstance(raw, dict):
                raise ConfigError(f"settings for {gateway} must be an object")
            config = dict(raw)
            tier = _parse_tier(config.pop("tier", None))
            try:
                style = RetryAfterStyle(config.pop("retry_after", "seconds"))
            except ValueError as exc:
                raise ConfigError(f"{gateway}: {exc}") from None
            if tier is not None:
                tiers[gateway] = (tier, style)
            balance = config.pop("balance_usd", None)
            if balance is not None:
                if isinstance(balance, bool) or not isinstance(balance, int | float) or balance < 0:
                    raise ConfigError(f"{gateway}: balance_usd must be a non-negative number")
                balances[gateway] = float(balance)
            models = config.pop("models", {})
            faults[gateway] = Faults.from_dict(config)
            if not isinstance(models, dict):
                raise ConfigError(f"{gateway}: 'models' maps model ids to fault settings")
            for model, model_config in models.items():
                model_faults[(gateway, model)] = Faults.from_dict(model_config)
        schedule = []
        for entry in data.get("schedule", []):
            if (
                not isinstance(entry, dict)
                or set(entry) - {"at", "gateway", "model", "faults"}
                or "at" not in entry
            ):
                raise ConfigError(
                    f"a schedule entry is {{'at', 'gateway', 'model', 'faults'}}, not {entry!r}"
                )
            if entry.get("gateway") not in BUILTIN_GATEWAYS:
                raise ConfigError(f"schedule entry for unknown gateway {entry.get('gateway')!r}")
            entry_faults = None if entry.get("faults") is None else Faults.from_dict(entry["faults"])
            schedule.append((float(entry["at"]), str(entry["gateway"]), entry_faults, entry.get("model")))
        return cls(seed, tiers, balances, faults, model_faults, tuple(schedule))


def _parse_tier(value: Any) -> Tier | None:
    if value is None:
        return None
    if isinstance(value, str):
        presets = {"free": Tier.FREE, "pro": Tier.PRO}
        if value.lower() not in presets:
            raise ConfigError(f"a tier is 'free', 'pro' or {{'rpm', 'tpm', 'concurrency'}}, not {value!r}")
        return presets[value.lower()]
    if isinstance(value, dict) and set(value) <= {"rpm", "tpm", "concurrency"}:
        return Tier(**value)
    raise ConfigError(f"a tier is 'free', 'pro' or {{'rpm', 'tpm', 'concurrency'}}, not {value!r}")
