"""`python -m bench.stubbed [CALLS]`: the bridge's own CPU per call, with the MCP SDK's call replaced
by a stub that returns a real result (docs/performance.md, "Where the time goes").

Two figures, each the median of 5 runs of CALLS calls (default 5,000) in one process on the
devstack, modern era: the call path (`SchedulerBridge.call_tool`: deadline, health, catalog, schema
and strict checks, trace, span) and the HTTP function around it (`call_tool` with a real
`func.HttpRequest`, audit line off; the stub is then `SchedulerBridge.call_tool` itself). No
network and no SDK run, so what is left is the bridge's Python alone: the figures a cut to the hot
path should move, without the ±100 µs noise of a real call on a shared machine.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from mcp_bridge.callers import audit
from mcp_bridge.runtime import get_bridge, reset_bridge

from .rig import build_rig
from .stack import STATUS_TOOL, start_stack


async def _per_call_us(call: Callable[[], Awaitable[Any]], calls: int) -> float:
    for _ in range(500):
        await call()
    runs = []
    for _ in range(5):
        started = time.process_time()
        for _ in range(calls):
            await call()
        runs.append((time.process_time() - started) / calls * 1e6)
    return statistics.median(runs)


async def _run(calls: int) -> None:
    stack = start_stack()
    try:
        rig = await build_rig(stack)
        await rig.use_era("modern")
        bridge = await get_bridge()
        arguments = rig.arguments
        outcome = await bridge.call_tool(STATUS_TOOL, arguments)
        client = await bridge.endpoints[0].client()

        async def sdk_stub(*_: Any, **__: Any) -> Any:
            return outcome.result

        client.call_tool = sdk_stub  # type: ignore[method-assign]  # this client, this process only
        path = await _per_call_us(lambda: bridge.call_tool(STATUS_TOOL, arguments), calls)

        async def call_path_stub(*_: Any) -> Any:
            return outcome

        bridge.call_tool = call_path_stub  # type: ignore[method-assign]
        audit.AUDIT_LOGGER.disabled = True
        try:
            function = await _per_call_us(lambda: rig.bridge(arguments), calls)
        finally:
            audit.AUDIT_LOGGER.disabled = False
        print(f"call path, SDK call stubbed: {path:.1f} µs per call", flush=True)
        print(f"HTTP function, call path stubbed, audit off: {function:.1f} µs per call", flush=True)
    finally:
        await reset_bridge()
        stack.stop()


if __name__ == "__main__":
    asyncio.run(_run(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
