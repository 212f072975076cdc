"""Gateways: where requests go, with which key, under which tier."""

from __future__ import annotations

import enum
import functools
import os
import re
from collections.abc import Iterable, Mapping
from typing import Final

import attrs
from yarl import URL

from ._errors import ConfigError
from ._offer import Offer
from ._secret import Secret
from ._tier import Tier

__all__ = ["BUILTIN_GATEWAYS", "Gateway", "Wire", "env_var"]


class Wire(enum.StrEnum):
    """The wire format a gateway speaks."""

    OPENAI = "openai"
    """OpenAI chat completions (OneAI, Onetoken, OneRouter, any compatible endpoint)."""
    ONELLM = "onellm"
    """OneLLM's own JSON: ``stop_sequences``, a flat reply, no streaming."""


@attrs.frozen
class _Builtin:
    """A built-in gateway's documented defaults."""

    base_url: str
    chat_path: str
    models_path: str | None = None
    models_fallback_paths: tuple[str, ...] = ()


# The built-in gateways' defaults, from the seeds.
_BUILTIN: Final[Mapping[str, _Builtin]] = {
    "onellm": _Builtin("https://onellm.dev", "/api"),
    "oneai": _Builtin("https://api.oneai.io/v1", "/chat/completions"),
    "onetoken": _Builtin("https://onetoken.one/v1", "/chat/completions"),
    # OneRouter documents a models listing without one definite URL: relative to its
    # /v1 base URL it is /models (what the OpenAI SDK's client.models.list() calls),
    # and its FAQ says "Additional endpoints like /api/v1/models are also available",
    # a path on its origin. The first is tried, then the second after a 404.
    "onerouter": _Builtin(
        "https://llm.onerouter.pro/v1", "/chat/completions", "/models", ("/api/v1/models",)
    ),
}
BUILTIN_GATEWAYS: Final = tuple(_BUILTIN)
"""The names of the four built-in gateways, in a fixed order."""


def _check_base_url(instance: Gateway, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        url = URL(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"gateway {instance.name!r}: base_url {value!r} is not a URL") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(
            f"gateway {instance.name!r}: base_url must be an http(s) URL with a host, not {value!r}"
        )
    if url.query_string or url.fragment or url.user or url.password:
        raise ConfigError(
            f"gateway {instance.name!r}: base_url must not carry a query, fragment or credentials"
        )


def _strip_slash(value: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"base_url must be a str, not {type(value).__name__}")
    return value.rstrip("/")


def _require_path(gateway: str, field: str, value: object) -> None:
    if not isinstance(value, str) or not value.startswith("/") or "?" in value or "#" in value:
        raise ConfigError(f"gateway {gateway!r}: {field} must be a path starting with '/', not {value!r}")


def _check_path(instance: Gateway, attribute: attrs.Attribute[str], value: str) -> None:
    _require_path(instance.name, attribute.name, value)


def _check_optional_path(
    instance: Gateway, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is not None:
        _require_path(instance.name, attribute.name, value)


def _paths(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raise ConfigError(f"models_fallback_paths must be a list of paths, not the string {value!r}")
    return tuple(value)


def _check_fallback_paths(
    instance: Gateway, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for path in value:
        # '//host/...' would read as another origin; a fallback path is a path on this one.
        _require_path(instance.name, attribute.name, path)
        if path.startswith("//"):
            raise ConfigError(
                f"gateway {instance.name!r}: {attribute.name} are paths on the gateway's own origin, "
                f"not {path!r}"
            )
    if value and instance.models_path is None:
        raise ConfigError(
            f"gateway {instance.name!r}: {attribute.name} are tried after models_path; give a models_path"
        )


def _check_name(instance: Gateway, attribute: attrs.Attribute[str], value: str) -> None:
    if not isinstance(value, str) or not value or not all(c.isalnum() or c in "-_." for c in value):
        raise ConfigError(f"a gateway name is letters, digits, '-', '_' or '.', not {value!r}")


def _key(value: Secret | str | None) -> Secret | None:
    if value is None or isinstance(value, Secret):
        return value
    try:
        return Secret(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid API key: {exc}") from None


def _check_tier(instance: Gateway, attribute: attrs.Attribute[Tier | None], value: Tier | None) -> None:
    if value is not None and not isinstance(value, Tier):
        raise ConfigError(f"gateway {instance.name!r}: tier must be a Tier or None, not {value!r}")


def _offers(value: Iterable[Offer] | None) -> tuple[Offer, ...] | None:
    if value is None:
        return None
    offers = tuple(value)
    for offer in offers:
        if not isinstance(offer, Offer):
            raise ConfigError(f"offers must be Offer values, not {offer!r}")
    return offers


def _env_key(name: str, api_key: Secret | str | None) -> Secret | str | None:
    if api_key is not None:
        return api_key
    return os.environ.get(env_var(name, "API_KEY")) or None


def env_var(gateway: str, suffix: str) -> str:
    """The environment variable of a gateway setting: ``env_var("oneai", "API_KEY") == "ONEAI_API_KEY"``."""
    return re.sub(r"[^A-Za-z0-9]", "_", gateway).upper() + "_" + suffix


@attrs.frozen
class Gateway:
    """One gateway account: its base URL, its key, its wire format and its tier.

    Build one with :meth:`oneai`, :meth:`onerouter`, :meth:`onetoken`,
    :meth:`onellm` or :meth:`openai_compatible`. A built-in gateway's offers come
    from its shipped catalog snapshot; a custom gateway brings its own.

    The key is kept in a :class:`Secret`: no repr, log line or exception shows it,
    and it is sent only to this gateway's own origin.
    """

    name: str = attrs.field(validator=_check_name)
    base_url: str = attrs.field(converter=_strip_slash, validator=_check_base_url)
    api_key: Secret | None = attrs.field(default=None, converter=_key, eq=False)
    tier: Tier | None = attrs.field(default=None, validator=_check_tier)
    wire: Wire = attrs.field(default=Wire.OPENAI, converter=Wire)
    chat_path: str = attrs.field(default="/chat/completions", validator=_check_path)
    models_path: str | None = attrs.field(default=None, validator=_check_optional_path)
    """The models listing's path under ``base_url`` (``/models``); None when there is none."""
    models_fallback_paths: tuple[str, ...] = attrs.field(
        default=(), converter=_paths, validator=_check_fallback_paths
    )
    """Listing paths on the gateway's origin (not under ``base_url``), tried in order after a 404."""
    offers: tuple[Offer, ...] | None = attrs.field(default=None, converter=_offers)
    """Custom offers; None for a built-in gateway, whose offers are its shipped snapshot."""
    catalog: str | None = attrs.field(default=None)
    """The name of the shipped snapshot this gateway sells from, for built-in gateways."""

    def __attrs_post_init__(self) -> None:
        if (self.offers is None) == (self.catalog is None):
            raise ConfigError(
                f"gateway {self.name!r}: give either its own offers or a shipped catalog, not both or neither"
            )

    @functools.cached_property
    def chat_url(self) -> URL:
        """The absolute URL chat requests are POSTed to."""
        return URL(self.base_url + self.chat_path)

    @functools.cached_property
    def models_urls(self) -> tuple[URL, ...]:
        """Where the models listing may be, in the order tried; empty when the gateway has none.

        Every one is on the gateway's own origin, the only place its key is sent.
        """
        if self.models_path is None:
            return ()
        origin = str(self.origin)
        return (URL(self.base_url + self.models_path), *(URL(origin + p) for p in self.models_fallback_paths))

    @functools.cached_property
    def models_url(self) -> URL | None:
        """The first URL of the models listing, or None when the gateway has none."""
        return self.models_urls[0] if self.models_urls else None

    @functools.cached_property
    def origin(self) -> URL:
        """The scheme, host and port the key may be sent to."""
        return URL(self.base_url).origin()

    def auth_headers(self) -> dict[str, str]:
        """The header that carries this gateway's key (``Authorization: Bearer ...``); empty without one.

        The one place the key is put into a request: send the result only to
        :attr:`origin` (a :class:`WireRequest` with ``key_origin=origin``, which the
        transport checks).
        """
        if self.api_key is None:
            return {}
        return {"Authorization": f"Bearer {self.api_key.reveal()}"}

    # -- built-in gateways -------------------------------------------------------------

    @classmethod
    def _builtin(
        cls,
        name: str,
        api_key: Secret | str | None,
        base_url: str | None,
        tier: Tier | None,
        chat_path: str | None = None,
        models_path: str | None = None,
    ) -> Gateway:
        default = _BUILTIN[name]
        return cls(
            name=name,
            base_url=default.base_url if base_url is None else base_url,
            api_key=_env_key(name, api_key),
            tier=tier,
            wire=Wire.ONELLM if name == "onellm" else Wire.OPENAI,
            chat_path=default.chat_path if chat_path is None else chat_path,
            # A configured listing path is used alone; the documented default keeps its fallbacks.
            models_path=default.models_path if models_path is None else models_path,
            models_fallback_paths=default.models_fallback_paths if models_path is None else (),
            catalog=name,
        )

    @classmethod
    def oneai(
        cls, api_key: Secret | str | None = None, *, base_url: str | None = None, tier: Tier | None = None
    ) -> Gateway:
        """OneAI (``https://api.oneai.io/v1``), OpenAI-compatible with SSE streaming.

        Args:
            api_key: the key; defaults to ``$ONEAI_API_KEY``.
            base_url: overrides the default base URL (e.g. the emulator's).
            tier: the account's limits, e.g. ``Tier.FREE`` or ``Tier.PRO``.
        """
        return cls._builtin("oneai", api_key, base_url, tier)

    @classmethod
    def onerouter(
        cls,
        api_key: Secret | str | None = None,
        *,
        base_url: str | None = None,
        tier: Tier | None = None,
        models_path: str | None = None,
    ) -> Gateway:
        """OneRouter (``https://llm.onerouter.pro/v1``), OpenAI-compatible, with a models listing.

        Args:
            api_key: the key; defaults to ``$ONEROUTER_API_KEY``.
            base_url: overrides the default base URL.
            tier: the account's limits, if any.
            models_path: the models listing's path under ``base_url``, used alone. By
                default ``/models`` is read, and after a 404 the documented
                ``/api/v1/models`` on the same origin.

        Raises:
            ConfigError: on an invalid key, URL or path.
        """
        return cls._builtin("onerouter", api_key, base_url, tier, models_path=models_path)

    @classmethod
    def onetoken(
        cls, api_key: Secret | str | None = None, *, base_url: str | None = None, tier: Tier | None = None
    ) -> Gateway:
        """Onetoken (``https://onetoken.one/v1``), OpenAI-compatible, with search models.

        Args:
            api_key: the key; defaults to ``$ONETOKEN_API_KEY``.
            base_url: overrides the default base URL.
            tier: the account's limits, if any.
        """
        return cls._builtin("onetoken", api_key, base_url, tier)

    @classmethod
    def onellm(
        cls,
        api_key: Secret | str | None = None,
        *,
        base_url: str | None = None,
        chat_path: str | None = None,
        tier: Tier | None = None,
    ) -> Gateway:
        """OneLLM (``https://onellm.dev``), its own JSON at ``/api``, no streaming.

        Args:
            api_key: the key; defaults to ``$ONELLM_API_KEY``.
            base_url: overrides the default base URL.
            chat_path: overrides the chat path. The gateway's document says ``/api``;
                its public OpenAPI file says ``/v1/chat/completions``.
            tier: the account's limits, if any.
        """
        return cls._builtin("onellm", api_key, base_url, tier, chat_path)

    @classmethod
    def builtin(
        cls,
        name: str,
        api_key: Secret | str | None = None,
        *,
        base_url: str | None = None,
        tier: Tier | None = None,
    ) -> Gateway:
        """The built-in gateway called ``name`` (one of :data:`BUILTIN_GATEWAYS`).

        Raises:
            ConfigError: when ``name`` is not a built-in gateway.
        """
        if name not in _BUILTIN:
            raise ConfigError(f"no built-in gateway {name!r}; the built-in ones are {', '.join(_BUILTIN)}")
        return cls._builtin(name, api_key, base_url, tier)

    @classmethod
    def openai_compatible(
        cls,
        name: str,
        base_url: str,
        api_key: Secret | str | None,
        *,
        offers: Iterable[Offer],
        tier: Tier | None = None,
        chat_path: str = "/chat/completions",
        models_path: str | None = None,
        models_fallback_paths: Iterable[str] = (),
    ) -> Gateway:
        """Any other OpenAI-compatible endpoint, selling the offers given.

        Args:
            name: a unique name for this gateway account.
            base_url: the base URL (the one the OpenAI SDK would take).
            api_key: the key, or None to read ``$<NAME>_API_KEY``.
            offers: what it sells; each offer's ``gateway`` is filled in.
            tier: the account's limits, if any.
            chat_path: the chat completions path under ``base_url``.
            models_path: the models listing path under ``base_url``, for live refresh;
                None when it has none.
            models_fallback_paths: paths on the same origin (not under ``base_url``)
                tried in order when the listing before answers 404.

        Raises:
            ConfigError: on an invalid name, URL, key, path or offer, or when no offer is given.
        """
        bound = tuple(attrs.evolve(o, gateway=name) for o in _offers(offers) or ())
        if not bound:
            raise ConfigError(f"gateway {name!r}: an OpenAI-compatible gateway needs at least one offer")
        return cls(
            name=name,
            base_url=base_url,
            api_key=_env_key(name, api_key),
            tier=tier,
            wire=Wire.OPENAI,
            chat_path=chat_path,
            models_path=models_path,
            models_fallback_paths=models_fallback_paths,
            offers=bound,
        )
