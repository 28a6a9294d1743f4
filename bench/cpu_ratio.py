"""`python -m bench.cpu_ratio [ROUNDS]`: section 1's client CPU ratio alone (modern era), for
iterating on the hot path in a minute instead of a full `make bench`. Logging as the bench sets it."""

from __future__ import annotations

import asyncio
import os
import sys

from mcp_bridge.runtime import reset_bridge

from .__main__ import _log_like_the_worker
from .latency import run_latency
from .rig import build_rig
from .stack import start_stack


async def _run(rounds: int) -> None:
    stack = start_stack()
    listener = _log_like_the_worker(stack.log_dir / "bench.log")
    try:
        rig = await build_rig(stack)
        result = await run_latency(rig, "modern", rounds=rounds, naive_every=10**9)
        low, high = result.cpu_ratio_spread
        print(
            f"cpu_per_call_ratio_1={result.cpu_ratio:.3f} ({low:.2f}-{high:.2f}) "
            f"bridge {result.cpu_ms('bridge'):.3f} ms raw {result.cpu_ms('raw'):.3f} ms "
            f"p1={result.bridge_over_raw:.3f} load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    finally:
        await reset_bridge()
        stack.stop()
        listener.stop()


if __name__ == "__main__":
    asyncio.run(_run(int(sys.argv[1]) if len(sys.argv) > 1 else 500))
