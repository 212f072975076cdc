"""The one table of how each wire format takes each request parameter.

Every parameter is sent as is, renamed, dropped, or needed:

- ``send``: the target takes it under the same name;
- ``rename``: the target takes it under another name (OneLLM's ``stop_sequences``);
- ``drop``: the target does not take it and leaving it out only changes sampling;
  it is left out and listed in ``Reply.dropped_params``;
- ``needs``: the answer depends on it (tools, JSON mode, web search), so a target
  that cannot carry it is not used at all; the router filters such candidates
  out, and an adapter asked anyway raises :class:`UnsupportedFeature`.

On top of the wire format, an offer's ``capabilities.unsupported_params`` drops
what that model rejects (Onetoken's search models and ``temperature``), and a
capability marked False (``tools=False``) makes a ``needs`` parameter unmet.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._errors import UnsupportedFeature
from ._gateway import Wire
from ._offer import Capabilities
from ._request import ChatRequest

__all__ = ["MAY_DROP", "PARAMS", "Action", "Rule", "dropped_count", "translate_params", "unmet_needs"]


class Action(enum.StrEnum):
    """What a wire format does with a parameter."""

    SEND = "send"
    RENAME = "rename"
    DROP = "drop"
    NEEDS = "needs"


@attrs.frozen
class Rule:
    """One cell of the table: the action, and the wire name for ``rename``."""

    action: Action
    wire_name: str | None = None


_SEND: Final = Rule(Action.SEND)
_DROP: Final = Rule(Action.DROP)
_NEEDS: Final = Rule(Action.NEEDS)

PARAMS: Final[Mapping[str, Mapping[Wire, Rule]]] = {
    "temperature": {Wire.OPENAI: _SEND, Wire.ONELLM: _SEND},
    "top_p": {Wire.OPENAI: _SEND, Wire.ONELLM: _SEND},
    "max_tokens": {Wire.OPENAI: _SEND, Wire.ONELLM: _SEND},
    "stop": {Wire.OPENAI: _SEND, Wire.ONELLM: Rule(Action.RENAME, "stop_sequences")},
    "seed": {Wire.OPENAI: _SEND, Wire.ONELLM: _DROP},
    "frequency_penalty": {Wire.OPENAI: _SEND, Wire.ONELLM: _DROP},
    "presence_penalty": {Wire.OPENAI: _SEND, Wire.ONELLM: _DROP},
    "user": {Wire.OPENAI: _SEND, Wire.ONELLM: _DROP},
    "tools": {Wire.OPENAI: _SEND, Wire.ONELLM: _NEEDS},
    "tool_choice": {Wire.OPENAI: _SEND, Wire.ONELLM: _NEEDS},
    "response_format": {Wire.OPENAI: _SEND, Wire.ONELLM: _NEEDS},
    "web_search_options": {Wire.OPENAI: _SEND, Wire.ONELLM: _NEEDS},
}
"""Parameter -> wire format -> rule. OneLLM's document lists model, messages,
temperature, max_tokens, top_p and stop_sequences; everything else is dropped or
needed there."""

# What each ``ChatRequest.needs`` entry requires of the wire format and the offer.
_NEED_PARAMS: Final[Mapping[str, str]] = {
    "tools": "tools",
    "json_mode": "response_format",
    "web_search": "web_search_options",
}
_NEED_CAPABILITY: Final[Mapping[str, str]] = {
    "tools": "tools",
    "web_search": "web_search",
    "images": "images",
    "pdf": "pdf",
    "audio": "audio",
}
_ATTACHMENTS: Final = frozenset({"images", "pdf", "audio"})
# The need each ``needs`` parameter stands for. One the request does not have (a response_format
# of type 'text', the default) changes no answer, so a target that cannot carry it drops it.
_PARAM_NEED: Final[Mapping[str, str]] = {"tool_choice": "tools", **{p: n for n, p in _NEED_PARAMS.items()}}


def unmet_needs(needs: frozenset[str], wire: Wire, capabilities: Capabilities) -> frozenset[str]:
    """What of ``needs`` (a request's :attr:`ChatRequest.needs`) this wire format or offer cannot carry.

    A capability marked False is unmet; web search needs a model marked True;
    images, PDFs and audio need the OpenAI wire format (OneLLM's document has text
    content only) and a model not marked False for them.
    """
    unmet = set()
    for need in needs:
        param = _NEED_PARAMS.get(need)
        if param is not None and PARAMS[param][wire].action is Action.NEEDS:
            unmet.add(need)
            continue
        if need in _ATTACHMENTS and wire is Wire.ONELLM:
            unmet.add(need)
            continue
        capability = _NEED_CAPABILITY.get(need)
        if capability is None:
            continue
        value = getattr(capabilities, capability)
        if value is False or (need == "web_search" and value is not True):
            unmet.add(need)
    return frozenset(unmet)


MAY_DROP: Final = frozenset(
    name
    for name, rules in PARAMS.items()
    if any(r.action in (Action.DROP, Action.NEEDS) for r in rules.values())
)
"""The parameters some wire format drops (OneLLM drops ``seed``...)."""


def dropped_count(request: ChatRequest, wire: Wire, capabilities: Capabilities) -> int:
    """How many of the request's parameters this target would leave out, as :func:`translate_params`
    decides (a ``needs`` parameter the request does not need counts; one it needs is no drop here,
    since planning leaves such a target out)."""
    unsupported = capabilities.unsupported_params
    count = 0
    for name in request.sampling():
        action = PARAMS[name][wire].action
        if (
            name in unsupported
            or action is Action.DROP
            or (action is Action.NEEDS and _PARAM_NEED[name] not in request.needs)
        ):
            count += 1
    return count


def translate_params(
    request: ChatRequest, wire: Wire, capabilities: Capabilities
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The request's parameters in the target's names, and the ones dropped.

    Callers check :func:`unmet_needs` first; a ``needs`` parameter reaching here
    raises :class:`UnsupportedFeature` rather than being sent blindly.
    """
    if wire is Wire.OPENAI and not capabilities.unsupported_params:
        # The OpenAI wire sends every parameter as it is (the proxy's copy(): a tenth of dict(proxy)).
        return request.sampling().copy(), ()
    out: dict[str, Any] = {}
    dropped: list[str] = []
    for name, value in request.sampling().items():
        rule = PARAMS[name][wire]
        if name in capabilities.unsupported_params or rule.action is Action.DROP:
            dropped.append(name)
        elif rule.action is Action.SEND:
            out[name] = value
        elif rule.action is Action.RENAME:
            assert rule.wire_name is not None
            out[rule.wire_name] = value
        elif _PARAM_NEED[name] not in request.needs:
            dropped.append(name)
        else:
            raise UnsupportedFeature(
                f"{name} cannot be carried by the {wire.value} wire format; choose a target that takes it",
                param=name,
            )
    return out, tuple(dropped)
