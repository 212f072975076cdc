"""What a gateway sells: one model at a price, with a context window and capabilities."""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final

import attrs

from ._errors import ConfigError

__all__ = ["NO_CAPABILITIES", "Capabilities", "Offer", "PriceSource", "trusted_offer"]


class PriceSource(enum.StrEnum):
    """Where an offer's price comes from.

    ``published``: the gateway's own price list. ``reference``: a named public
    list price the gateway is known to pass through (the source is recorded in
    ``Offer.price_reference``). ``live``: the gateway's models listing.
    ``user``: the user's own numbers. ``unknown``: no honest price; such an offer
    is never treated as free.
    """

    PUBLISHED = "published"
    REFERENCE = "reference"
    LIVE = "live"
    USER = "user"
    UNKNOWN = "unknown"


def _tristate(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ConfigError(f"a capability is True, False or None (unknown), not {value!r}")


def _param_names(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise ConfigError(f"unsupported_params takes a collection of names, not the string {value!r}")
    return frozenset(value)


@attrs.frozen
class Capabilities:
    """What an offer can do. Each flag is True, False, or None when not known.

    Args:
        streaming: the gateway streams this model's replies (SSE).
        tools: the model takes ``tools`` / function calling.
        web_search: the model searches the web (``web_search_options``).
        assistant_prefill: a final assistant message is continued, not answered.
        unsupported_params: request parameters this model rejects; they are
            dropped (and the reply says so) rather than sent.
        images: the model reads image parts (``image_url``).
        pdf: the model reads file parts (``file``: PDFs).
        audio: the model hears audio parts (``input_audio``).

    A part the model is known not to take (False) keeps the offer out of a request
    that carries one; unknown (None) lets it through, and the gateway decides.
    """

    streaming: bool | None = attrs.field(default=None, converter=_tristate)
    tools: bool | None = attrs.field(default=None, converter=_tristate)
    web_search: bool | None = attrs.field(default=None, converter=_tristate)
    assistant_prefill: bool | None = attrs.field(default=None, converter=_tristate)
    unsupported_params: frozenset[str] = attrs.field(default=frozenset(), converter=_param_names)
    images: bool | None = attrs.field(default=None, converter=_tristate)
    pdf: bool | None = attrs.field(default=None, converter=_tristate)
    audio: bool | None = attrs.field(default=None, converter=_tristate)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (``unsupported_params`` sorted)."""
        return {
            "streaming": self.streaming,
            "tools": self.tools,
            "web_search": self.web_search,
            "assistant_prefill": self.assistant_prefill,
            "unsupported_params": sorted(self.unsupported_params),
            "images": self.images,
            "pdf": self.pdf,
            "audio": self.audio,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Capabilities:
        """Build from the dict :meth:`to_json` writes.

        Raises:
            ConfigError: on an unknown key or a value of the wrong kind.
        """
        unknown = set(data) - {f.name for f in attrs.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown capabilities: {', '.join(sorted(unknown))}")
        return cls(**data)


NO_CAPABILITIES: Final = Capabilities()
"""What an offer given none can do (nothing known): one shared value, not one per offer."""


def _price(value: float | int | None, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"Offer.{name} is USD per million tokens as a number, not {value!r}")
    price = float(value)
    if not math.isfinite(price) or price < 0:
        raise ConfigError(f"Offer.{name} must be a finite, non-negative number, not {value!r}")
    return price


@attrs.frozen(init=False)
class Offer:
    """One model as one gateway sells it.

    Args:
        model: the canonical model id (``gpt-4o-mini``); it joins offers of the
            same model across gateways.
        gateway_model: the id the gateway expects on the wire; defaults to ``model``.
        input_price: USD per million prompt tokens, or None when unknown.
        output_price: USD per million completion tokens, or None when unknown.
        context_window: the most tokens (prompt + completion) the model takes, or
            None when unknown.
        price_source: where the price comes from; defaults to ``user`` when
            prices are given and ``unknown`` otherwise.
        price_reference: the named source of a ``reference`` price (required
            for one).
        capabilities: what the offer can do.
        gateway: the name of the gateway selling it; the provider graph fills it
            in for a gateway's own offers.

    Raises:
        ConfigError: when only one price is given, a price is negative or not
            finite, a ``reference`` price names no source, an ``unknown`` price
            carries numbers, or the context window is not positive.
    """

    model: str
    gateway_model: str
    input_price: float | None
    output_price: float | None
    context_window: int | None
    price_source: PriceSource
    price_reference: str | None
    capabilities: Capabilities
    gateway: str | None

    def rebound(self, model: str, gateway: str) -> Offer:
        """This offer under another model id and gateway, its other fields as they are.

        ``attrs.evolve`` without re-validating what this offer's construction
        already validated: the graph rebinds every offer of a large listing.

        Raises:
            ConfigError: when ``model`` is not a non-empty id.
        """
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"Offer.model must be a non-empty id, not {model!r}")
        return trusted_offer(
            model,
            self.gateway_model,
            self.input_price,
            self.output_price,
            self.context_window,
            self.price_source,
            self.price_reference,
            self.capabilities,
            gateway,
        )

    def __init__(
        self,
        model: str,
        gateway_model: str | None = None,
        input_price: float | None = None,
        output_price: float | None = None,
        context_window: int | None = None,
        *,
        price_source: PriceSource | str | None = None,
        price_reference: str | None = None,
        capabilities: Capabilities | None = None,
        gateway: str | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"Offer.model must be a non-empty id, not {model!r}")
        if gateway_model is not None and (not isinstance(gateway_model, str) or not gateway_model.strip()):
            raise ConfigError(f"Offer.gateway_model must be a non-empty id, not {gateway_model!r}")
        inp = _price(input_price, "input_price")
        out = _price(output_price, "output_price")
        if (inp is None) != (out is None):
            raise ConfigError(
                f"offer {model!r}: give both input_price and output_price, or neither "
                "(a half-known price cannot be compared)"
            )
        if price_source is None:
            source = PriceSource.UNKNOWN if inp is None else PriceSource.USER
        else:
            try:
                source = PriceSource(price_source)
            except ValueError:
                choices = ", ".join(s.value for s in PriceSource)
                raise ConfigError(f"price_source must be one of {choices}, not {price_source!r}") from None
        if source is PriceSource.UNKNOWN and inp is not None:
            raise ConfigError(f"offer {model!r}: a price marked 'unknown' must not carry numbers")
        if source is not PriceSource.UNKNOWN and inp is None:
            raise ConfigError(f"offer {model!r}: price_source {source.value!r} needs both prices")
        if source is PriceSource.REFERENCE and not price_reference:
            raise ConfigError(f"offer {model!r}: a 'reference' price must name its source (price_reference)")
        if context_window is not None and (
            isinstance(context_window, bool) or not isinstance(context_window, int) or context_window <= 0
        ):
            raise ConfigError(
                f"offer {model!r}: context_window must be a positive whole number, not {context_window!r}"
            )
        if capabilities is not None and not isinstance(capabilities, Capabilities):
            raise ConfigError(f"offer {model!r}: capabilities must be a Capabilities value")
        self.__attrs_init__(
            model=model,
            gateway_model=model if gateway_model is None else gateway_model,
            input_price=inp,
            output_price=out,
            context_window=context_window,
            price_source=source,
            price_reference=price_reference,
            capabilities=NO_CAPABILITIES if capabilities is None else capabilities,
            gateway=gateway,
        )

    @property
    def priced(self) -> bool:
        """True when both prices are known."""
        return self.input_price is not None

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        """The cost of a call at this offer's prices, or None when the price is unknown."""
        if self.input_price is None or self.output_price is None:
            return None
        return (prompt_tokens * self.input_price + completion_tokens * self.output_price) / 1_000_000

    def to_json(self) -> dict[str, Any]:
        """Return the offer as the JSON object ``switchyard catalog --json`` prints."""
        return {
            "gateway": self.gateway,
            "gateway_model": self.gateway_model,
            "model": self.model,
            "input_price": self.input_price,
            "output_price": self.output_price,
            "price_source": self.price_source.value,
            "context_window": self.context_window,
            "capabilities": self.capabilities.to_json(),
        }


# The slots' own setters: an Offer is frozen, and these skip its refusing __setattr__ and the
# per-field name lookups of attrs' __init__ (a large listing makes 100,000 offers).
_SETTERS: Final[Mapping[str, Callable[[Offer, Any], None]]] = {
    a.name: Offer.__dict__[a.name].__set__ for a in attrs.fields(Offer)
}
_set_model: Final = _SETTERS["model"]
_set_gateway_model: Final = _SETTERS["gateway_model"]
_set_input_price: Final = _SETTERS["input_price"]
_set_output_price: Final = _SETTERS["output_price"]
_set_context_window: Final = _SETTERS["context_window"]
_set_price_source: Final = _SETTERS["price_source"]
_set_price_reference: Final = _SETTERS["price_reference"]
_set_capabilities: Final = _SETTERS["capabilities"]
_set_gateway: Final = _SETTERS["gateway"]
_new: Final = object.__new__


def trusted_offer(
    model: str,
    gateway_model: str,
    input_price: float | None,
    output_price: float | None,
    context_window: int | None,
    price_source: PriceSource,
    price_reference: str | None,
    capabilities: Capabilities,
    gateway: str | None,
) -> Offer:
    """An :class:`Offer` of fields already checked (taken from offers, or checked as Offer() would).

    Nothing is validated: the caller vouches for every field.
    """
    offer: Offer = _new(Offer)
    _set_model(offer, model)
    _set_gateway_model(offer, gateway_model)
    _set_input_price(offer, input_price)
    _set_output_price(offer, output_price)
    _set_context_window(offer, context_window)
    _set_price_source(offer, price_source)
    _set_price_reference(offer, price_reference)
    _set_capabilities(offer, capabilities)
    _set_gateway(offer, gateway)
    return offer
