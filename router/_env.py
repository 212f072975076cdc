"""The gateways a router takes from the environment (``Router.from_env``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ..providers import BUILTIN_GATEWAYS, ConfigError, Gateway, Tier
from ..providers.wire import env_var

__all__ = ["gateways_from_env"]

_TIERS: Final = {"free": Tier.FREE, "pro": Tier.PRO}


def gateways_from_env(env: Mapping[str, str]) -> list[Gateway]:
    """Every built-in gateway that has a key in ``env``.

    Reads ``<NAME>_API_KEY`` (ONELLM, ONEAI, ONETOKEN, ONEROUTER), and optionally
    ``<NAME>_BASE_URL``, ``<NAME>_TIER`` (``free`` or ``pro``) and ``ONELLM_CHAT_PATH``.

    Raises:
        ConfigError: when no gateway has a key, or a setting is invalid.
    """
    gateways = []
    for name in BUILTIN_GATEWAYS:
        key = env.get(env_var(name, "API_KEY"))
        if not key:
            continue
        tier_name = env.get(env_var(name, "TIER"))
        tier = None
        if tier_name:
            tier = _TIERS.get(tier_name.strip().lower())
            if tier is None:
                raise ConfigError(f"{env_var(name, 'TIER')} must be 'free' or 'pro', not {tier_name!r}")
        base_url = env.get(env_var(name, "BASE_URL")) or None
        if name == "onellm":
            gw = Gateway.onellm(
                key, base_url=base_url, chat_path=env.get("ONELLM_CHAT_PATH") or None, tier=tier
            )
        else:
            gw = Gateway.builtin(name, key, base_url=base_url, tier=tier)
        gateways.append(gw)
    if not gateways:
        names = ", ".join(env_var(n, "API_KEY") for n in BUILTIN_GATEWAYS)
        raise ConfigError(f"no gateway key in the environment; set at least one of {names}")
    return gateways
