"""Break the cheapest gateway and watch the router fail over, event by event.

Run: python examples/failover.py
"""

from __future__ import annotations

import asyncio

from switchyard.providers import ProviderGraph
from switchyard.providers.emulator import Emulator, Faults
from switchyard.router import Event, Router


def show(event: Event) -> None:
    where = f"{event.gateway}:{event.gateway_model}" if event.gateway else ""
    outcome = f" -> {event.outcome}" if event.outcome else ""
    print(f"  {event.name:17} {where}{outcome}")


async def main() -> None:
    async with Emulator(seed=2) as emu:
        graph = ProviderGraph.from_catalogs(emu.gateways())
        graph.set_price("onellm", "GPT-4o-mini", 0.10, 0.40)  # your contract's numbers make it cheapest
        graph.set_price("onetoken", "gpt-4o-mini", 0.15, 0.60)
        await emu.set_faults("onellm", Faults(errors={503: 1.0}))
        async with Router(graph, hooks=[show]) as router:
            reply = await router.chat("gpt-4o-mini", [{"role": "user", "content": "Hi"}], max_tokens=8)
        for attempt in reply.route.attempts:
            print(f"{attempt.gateway:9} {attempt.outcome:12} {attempt.latency * 1000:6.1f} ms")
        print("emulator saw:", {g: emu.stats(g).statuses for g in ("onellm", "onetoken")})


if __name__ == "__main__":
    asyncio.run(main())
