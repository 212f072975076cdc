"""Stream an answer, and watch a stream cut mid-answer restart on the next gateway.

Run: python examples/streaming.py
"""

from __future__ import annotations

import asyncio

from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Router

HI = [{"role": "user", "content": "Tell me something."}]


async def main() -> None:
    async with Emulator(seed=3) as emu:
        graph = ProviderGraph.from_catalogs(emu.gateways())
        # deepseek-v3 is OneAI's alone; OneLLM's DeepSeek-Chat (DeepSeek's moving alias) is its fallback.
        async with Router(graph, fallbacks={"deepseek-v3": ["deepseek-chat"]}) as router:
            async with router.stream("deepseek-v3", HI, max_tokens=12) as stream:
                async for chunk in stream:
                    if chunk.usage is not None and chunk.route is not None:  # the last chunk
                        tokens, via = chunk.usage.completion_tokens, chunk.route.gateway
                        print(f"\n[{chunk.finish_reason}; {tokens} tokens via {via}]")
                    else:
                        print(chunk.text, end="", flush=True)

            await emu.set_faults("oneai", Faults(cut_after=4))  # OneAI cuts its streams after 4 chunks
            async with router.stream("deepseek-v3", HI, max_tokens=12, restart=True) as stream:
                async for chunk in stream:
                    if chunk.restart:
                        print(f"\n[cut: {type(chunk.error).__name__}; discard and start again]")
                    elif chunk.route is not None:
                        print(f"\n[done via {chunk.route.gateway}]")
                    else:
                        print(chunk.text, end="", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
