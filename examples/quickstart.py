"""Route a few requests through the four emulated gateways and show what happened.

Run: python examples/quickstart.py
"""

from __future__ import annotations

import asyncio

from switchyard.policies import CheapestPerToken, LowestLatency
from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator
from switchyard.router import Router


async def main() -> None:
    async with Emulator(seed=1) as emu:
        graph = ProviderGraph.from_catalogs(emu.gateways())
        policy = CheapestPerToken().then(LowestLatency())
        async with Router(graph, policy=policy, fallbacks={"qwen-max": ["glm-4"]}) as router:
            reply = await router.chat("deepseek-v3", [{"role": "user", "content": "Hello!"}], max_tokens=12)
            print(f"{reply.route.gateway}:{reply.route.gateway_model} said {reply.text!r}")
            print(
                f"  {reply.usage.prompt_tokens}+{reply.usage.completion_tokens} tokens, ${reply.cost_usd:.8f}"
            )
            print(router.explain("qwen-max", [{"role": "user", "content": "Hello!"}], max_tokens=12))


if __name__ == "__main__":
    asyncio.run(main())
