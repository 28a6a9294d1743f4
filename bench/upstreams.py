"""Section: what a second configured upstream costs the default's calls (`two_upstreams_overhead`).

The same calls (`getConversationStatus` on the Scheduler through the in-process `call_tool`
function, 10 callers, modern era) with one upstream configured, then with two (`MCP_UPSTREAMS`
adds `rooms`: the legacy-era region with a token scope of its own setting, its bridge built and
its tools listed, so it is really there). Slices alternate one/two, each after a fresh bridge and
a warm-up, and the result is the median of adjacent slices' calls/s, two over one: the extra
upstream must cost the default nothing (the hot path looks the upstream up once; target ≥ 0.97,
docs/performance.md).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field

from mcp_bridge.config.loader import reset_settings
from mcp_bridge.runtime import get_bridge, reset_bridge

from .rig import Rig
from .stack import apply_env
from .stats import median

CALLERS = 10
WARMUP = 20


@dataclass
class UpstreamsResult:
    one: list[float] = field(default_factory=list)  # calls/s per slice
    two: list[float] = field(default_factory=list)
    failures: int = 0

    @property
    def overhead_ratio(self) -> float:
        """Calls/s with two upstreams over one (median of adjacent slices); 1.0 = free."""
        pairs = [two / one for one, two in zip(self.one, self.two, strict=True) if one > 0]
        return median(pairs) if pairs else float("nan")


async def run_two_upstreams(rig: Rig, *, pairs: int, seconds: float) -> UpstreamsResult:
    result = UpstreamsResult()
    one = rig.stack.bridge_env("modern")
    legacy = rig.stack.endpoints("legacy")
    two = {
        **one,
        "MCP_UPSTREAMS": "scheduler,rooms",
        "ROOMS_ENDPOINTS": ",".join(legacy),
        "ROOMS_AUTH": "managed_identity",
        "ROOMS_TOKEN_SCOPE": one["SCHEDULER_TOKEN_SCOPE"],
        "ROOMS_TIMEOUT_SECONDS": "10",
    }
    rig.era = "modern"
    try:
        for number in range(pairs * 2):
            configured = (one, two)[number % 2]
            rate = await _slice(rig, configured, seconds, result)
            (result.one, result.two)[number % 2].append(rate)
    finally:
        await _use(one)
    return result


async def _use(env: dict[str, str]) -> None:
    for key in [key for key in os.environ if key.startswith(("MCP_UPSTREAMS", "ROOMS_"))]:
        del os.environ[key]
    apply_env(env)
    reset_settings()
    await reset_bridge()


async def _slice(rig: Rig, env: dict[str, str], seconds: float, result: UpstreamsResult) -> float:
    await _use(env)
    for _ in range(WARMUP):
        await rig.bridge(rig.arguments)
    if "MCP_UPSTREAMS" in env:  # the second upstream is there for real: built, connected, listed
        rooms = await get_bridge("rooms")
        await rooms.list_tools()
    calls = 0
    deadline = time.perf_counter() + seconds

    async def caller() -> None:
        nonlocal calls
        while time.perf_counter() < deadline:
            ok = await rig.bridge(rig.arguments)
            calls += 1
            result.failures += not ok

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return calls / (time.perf_counter() - started)
