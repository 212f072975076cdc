"""The gateway emulator: OneLLM, OneAI, Onetoken and OneRouter on loopback, with faults and tiers.

``async with Emulator() as emu:`` serves the four wire formats on 127.0.0.1;
``emu.gateways()`` points :class:`~providers.Gateway` values at it; faults,
tiers, balances and the models served (``emu.add_offers``, ``emu.remove_offers``)
change while it runs; ``emu.stats(name)`` says what each gateway received and
sent. ``switchyard emulate`` serves the same from a shell.

The OpenAI-compatible gateways answer with tool calls, plain and streamed as
OpenAI does, when ``tool_choice`` is ``"required"`` or names a function, or
under ``"auto"`` when ``Faults(tool_calls=N)`` says so. Models refuse image, PDF
and audio parts their capabilities rule out. OneLLM follows its error table
(400 missing, 422 wrong type), its $0.10 minimum balance (402) and its silent
lowering of ``max_tokens`` (the reply ends early with ``finish_reason: "length"``).
"""

from ._accounts import RetryAfterStyle
from ._faults import FAULT_STATUSES, Faults, Latency, Malformed, Outage
from ._faultsfile import FaultsFile
from ._server import Emulator
from ._stats import GatewayStats
from ._text import count_prompt_tokens, count_tokens

__all__ = [
    "FAULT_STATUSES",
    "Emulator",
    "Faults",
    "FaultsFile",
    "GatewayStats",
    "Latency",
    "Malformed",
    "Outage",
    "RetryAfterStyle",
    "count_prompt_tokens",
    "count_tokens",
]
