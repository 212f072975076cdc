"""The gateway emulator: OneLLM, OneAI, Onetoken and OneRouter on loopback, with faults and tiers.

``async with Emulator() as emu:`` serves the four wire formats on 127.0.0.1;
``emu.gateways()`` points :class:`~providers.Gateway` values at it; faults,
tiers and balances change while it runs; ``emu.stats(name)`` says what each
gateway received and sent. ``switchyard emulate`` serves the same from a shell.
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
