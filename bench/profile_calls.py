"""`python -m bench.profile_calls VARIANT [CALLS]`: the same call, CALLS times in a row, one way only,
for a profiler to watch (`make profile` runs it under py-spy for `bridge` and `raw`; open the
speedscope files it writes to build/ at https://www.speedscope.app).

VARIANT is `bridge` (the `call_tool` function in-process, as in the bench) or `raw` (one
persistent `mcp.Client`). It prints the client CPU per call, so a profile's sample counts can be
turned into microseconds per call.
"""

from __future__ import annotations

import asyncio
import sys
import time

from mcp_bridge.runtime import reset_bridge

from .callers import RawClient
from .rig import build_rig
from .stack import start_stack


async def _run(variant: str, calls: int) -> None:
    stack = start_stack()
    try:
        rig = await build_rig(stack)
        async with RawClient(rig.raw_url(), rig.token) as raw:
            bridge, arguments = rig.bridge, rig.arguments
            call = (lambda: bridge(arguments)) if variant == "bridge" else (lambda: raw(arguments))
            for _ in range(50):
                await call()
            cpu = time.process_time()
            for _ in range(calls):
                if not await call():
                    raise RuntimeError("a call failed")
            spent = time.process_time() - cpu
        print(f"{variant}: {calls} calls, client CPU {spent * 1e6 / calls:.0f} µs per call", flush=True)
    finally:
        await reset_bridge()
        stack.stop()


if __name__ == "__main__":
    asyncio.run(_run(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2000))
