"""The normalized reply: the same value whichever gateway and wire format served it.

``Usage``, ``Attempt``, ``Route`` and ``Reply`` are made for every request, so they are
frozen attrs classes with a ``__dict__`` (``slots=False``): attrs fills a dict-backed
instance with one dict store per field, where a slotted frozen one calls
``object.__setattr__`` per field. Together with ``WireRequest`` that is about 13,700 of
the ~284,000 instructions of a routed request through an in-process transport
(callgrind); the price is a dict per value and slightly slower field reads.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from ._request import thaw

__all__ = [
    "FINISH_REASONS",
    "Answer",
    "Attempt",
    "Delta",
    "Reply",
    "Route",
    "StreamChunk",
    "Usage",
    "normalize_finish_reason",
]

FINISH_REASONS: Final = ("stop", "length", "tool_calls", "content_filter")

# Gateways pass their upstream provider's words through (OneLLM says its provider,
# e.g. "anthropic"); this maps them onto OpenAI's four.
_FINISH_SYNONYMS: Final[Mapping[str, str]] = {
    "stop": "stop",
    "end_turn": "stop",
    "stop_sequence": "stop",
    "eos": "stop",
    "end": "stop",
    "complete": "stop",
    "completed": "stop",
    "length": "length",
    "max_tokens": "length",
    "max_output_tokens": "length",
    "model_length": "length",
    "tool_calls": "tool_calls",
    "tool_use": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "safety": "content_filter",
    "recitation": "content_filter",
    "blocklist": "content_filter",
    "prohibited_content": "content_filter",
}


def normalize_finish_reason(raw: str | None) -> str:
    """One of ``stop``, ``length``, ``tool_calls``, ``content_filter``.

    A complete reply with no reason, or a reason nobody documents, counts as
    ``stop``; the gateway's own word is kept in ``Reply.raw_finish_reason``.
    (An ``error`` reason is not a finish: adapters raise on it.)
    """
    if type(raw) is not str:
        return "stop"  # None, or not a string at all (a malformed answer's)
    known = _FINISH_SYNONYMS.get(raw)  # the usual case: spelled as documented
    if known is not None:
        return known
    return _FINISH_SYNONYMS.get(raw.strip().lower(), "stop")


@attrs.frozen(slots=False)
class Usage:
    """Tokens used by one reply.

    Attributes:
        prompt_tokens: tokens read.
        completion_tokens: tokens written.
        total_tokens: their sum, as the gateway reported it.
        reported_cost_usd: the cost the gateway itself reported (OneRouter with
            ``usage: {include: true}``), or None.
        estimated: True when the gateway gave no usage and these are estimates.
    """

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    reported_cost_usd: float | None = None
    estimated: bool = False

    def to_openai(self) -> dict[str, int]:
        """The usage as OpenAI's ``usage`` object."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@attrs.frozen(slots=False)
class Attempt:
    """One try at one target, as the trace records it.

    Attributes:
        gateway: the gateway tried.
        gateway_model: the id sent on the wire.
        model: the canonical model.
        outcome: ``ok``, or the error class (``ServerError``, ``RateLimited``...).
        latency: seconds from sending to the outcome.
        status: the HTTP status, when there was one.
        error: the error's message, when it failed.
    """

    gateway: str
    gateway_model: str
    model: str
    outcome: str
    latency: float
    status: int | None = None
    error: str | None = None


@attrs.frozen(slots=False)
class Route:
    """Where a reply came from, and every attempt made for it.

    Attributes:
        gateway: the gateway that answered.
        gateway_model: the id it was asked for.
        model: the canonical model that answered (a fallback's, if one was used).
        attempts: every attempt in order, the successful one last.
        output_capped: the gateway lowered ``max_tokens`` below what was asked
            (OneLLM does so, silently, when the balance cannot pay for it) and the
            answer stopped at that lower limit: a ``length`` stop that is not the
            caller's own.
    """

    gateway: str
    gateway_model: str
    model: str
    attempts: tuple[Attempt, ...] = ()
    output_capped: bool = False


@attrs.frozen(slots=False)
class Reply:
    """A complete answer, normalized from any gateway's wire format.

    Attributes:
        id: the gateway's response id (or one made up when it gave none).
        text: the answer.
        finish_reason: ``stop``, ``length``, ``tool_calls`` or ``content_filter``.
        usage: tokens used (and the gateway's own cost, when it reported one).
        cost_usd: the cost of the successful attempt: the gateway's reported cost,
            else the offer's prices times the usage; None when the price is unknown.
            Failed attempts are not billed here.
        route: the gateway, the gateway's model id, the model, and the attempts.
        created: Unix time of the answer.
        tool_calls: the tool calls the model made, OpenAI-shaped, if any.
        dropped_params: request parameters the target does not take, left out.
        raw_finish_reason: the gateway's own finish reason, before normalizing.
    """

    id: str
    text: str
    finish_reason: str
    usage: Usage
    cost_usd: float | None
    route: Route
    created: int
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    dropped_params: tuple[str, ...] = ()
    raw_finish_reason: str | None = None

    @property
    def model(self) -> str:
        """The canonical model that answered."""
        return self.route.model

    @property
    def output_capped(self) -> bool:
        """The gateway cut the answer below the ``max_tokens`` asked for (see :attr:`Route.output_capped`)."""
        return self.route.output_capped

    def to_openai(self) -> dict[str, Any]:
        """The reply as an OpenAI ``chat.completion`` dict (the official SDK's types accept it)."""
        message: dict[str, Any] = {"role": "assistant", "content": self.text}
        if self.tool_calls:
            message["tool_calls"] = thaw(self.tool_calls)
            if not self.text:
                message["content"] = None
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.route.gateway_model,
            "choices": [
                {"index": 0, "message": message, "finish_reason": self.finish_reason, "logprobs": None}
            ],
            "usage": self.usage.to_openai(),
        }


class Answer:
    """A complete answer as its adapter read it: everything of a :class:`Reply` but the route.

    The router knows where the answer came from and what was tried before; it
    attaches that with :meth:`reply`. Not a public value (an adapter makes one, the
    router reads it once), so a plain slotted class: a quarter of a frozen value's
    cost to make, once per request.

    Attributes:
        output_capped: the gateway lowered ``max_tokens`` and the answer stopped
            there (see :attr:`Route.output_capped`).
    """

    __slots__ = (
        "cost_usd",
        "created",
        "dropped_params",
        "finish_reason",
        "id",
        "output_capped",
        "raw_finish_reason",
        "text",
        "tool_calls",
        "usage",
    )

    def __init__(
        self,
        id: str,
        text: str,
        finish_reason: str,
        usage: Usage,
        cost_usd: float | None,
        created: int,
        tool_calls: tuple[Mapping[str, Any], ...] | None = None,
        dropped_params: tuple[str, ...] = (),
        raw_finish_reason: str | None = None,
        output_capped: bool = False,
    ) -> None:
        self.id = id
        self.text = text
        self.finish_reason = finish_reason
        self.usage = usage
        self.cost_usd = cost_usd
        self.created = created
        self.tool_calls = tool_calls
        self.dropped_params = dropped_params
        self.raw_finish_reason = raw_finish_reason
        self.output_capped = output_capped

    def __repr__(self) -> str:
        return f"Answer(id={self.id!r}, finish_reason={self.finish_reason!r}, usage={self.usage!r})"

    def reply(self, route: Route) -> Reply:
        """The reply, with its route (which should carry :attr:`output_capped`)."""
        return Reply(  # positional, in Reply's field order: quicker than by name on every request
            self.id,
            self.text,
            self.finish_reason,
            self.usage,
            self.cost_usd,
            route,
            self.created,
            self.tool_calls,
            self.dropped_params,
            self.raw_finish_reason,
        )


@attrs.frozen
class Delta:
    """What one piece of an answer adds, as its adapter read it.

    A streamed answer comes as many (one per event); a format that does not
    stream gives its whole answer as one.

    Attributes:
        text: new text ("" when it carries none).
        tool_calls: tool-call pieces, OpenAI-shaped (an ``index`` each).
        finish_reason: normalized (:func:`normalize_finish_reason`), on the piece that ends the answer.
        usage: the answer's usage, on the piece that reports it.
        response_id: the gateway's response id, when this piece names it.
        output_capped: the gateway lowered ``max_tokens`` and the answer stopped there.
    """

    text: str = ""
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    response_id: str | None = None
    output_capped: bool = False


@attrs.frozen
class StreamChunk:
    """One piece of a streamed answer.

    Most chunks carry ``text``. The last one (``done``) carries the finish reason,
    the usage, the cost and the route. In restart mode a chunk with ``restart``
    set tells the consumer to discard everything received so far: the answer
    starts again with the next chunk (``error`` says why).

    Attributes:
        text: new text ("" on chunks that carry none).
        finish_reason: on the last chunk: ``stop``, ``length``, ``tool_calls`` or ``content_filter``.
        usage: on the last chunk; ``usage.estimated`` when the gateway gave none.
        cost_usd: on the last chunk; None when the price is unknown.
        route: on the last chunk: the gateway, model and every attempt.
        restart: discard what came before; the answer starts again.
        error: on a restart marker, the failure that interrupted the stream.
        tool_calls: tool-call pieces, OpenAI-shaped, when the model calls tools.
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    cost_usd: float | None = None
    route: Route | None = None
    restart: bool = False
    error: BaseException | None = attrs.field(default=None, eq=False)
    tool_calls: tuple[Mapping[str, Any], ...] | None = None
    id: str | None = None
    """On the last chunk: the gateway's response id, when it gave one."""

    @property
    def done(self) -> bool:
        """True on the last chunk, the one with the route."""
        return self.route is not None
