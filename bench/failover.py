"""Section 5: the primary region killed (SIGKILL) under load.

A fresh bridge on the two modern regions serves steady read-only load (`callers` at once); the
primary is killed part-way. Every call is read-only, so any call that does not succeed counts in
`p6_failed_safe_requests`. `failover_ms` runs from the kill to the first success served by the
secondary (calls that were already in flight on the primary may still finish there).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from mcp_bridge.runtime import get_bridge

from .rig import Rig
from .stats import median, ms, percentile


@dataclass
class FailoverResult:
    calls: int
    failed: int
    failover_ms: float
    calls_after_kill: int
    p99_after_kill_ms: float
    median_before_ms: float
    active_endpoint_is_secondary: bool


async def run_failover(rig: Rig, *, callers: int, seconds: float, kill_after: float) -> FailoverResult:
    await rig.use_era("modern")
    stack = rig.stack
    secondary = stack.west.mcp_url
    for _ in range(5):
        await rig.bridge(rig.arguments)
    loop = asyncio.get_running_loop()
    records: list[tuple[float, float, bool, str | None]] = []  # started, finished, ok, endpoint
    killed_at = 0.0
    closes = loop.time() + seconds

    async def worker() -> None:
        while loop.time() < closes:
            started = time.perf_counter()
            try:
                status, body = await rig.bridge.invoke(rig.arguments)
                endpoint = json.loads(body).get("endpoint") if status == 200 else None
                ok = status == 200
            except Exception:
                ok, endpoint = False, None
            records.append((started, time.perf_counter(), ok, endpoint))

    async def kill() -> None:
        nonlocal killed_at
        await asyncio.sleep(kill_after)
        killed_at = time.perf_counter()
        await asyncio.to_thread(stack.east.kill)

    await asyncio.gather(kill(), *(worker() for _ in range(callers)))
    on_secondary = [finished for _, finished, ok, endpoint in records if ok and endpoint == secondary]
    first_on_secondary = min((t for t in on_secondary if t >= killed_at), default=float("nan"))
    after = [finished - started for started, finished, _, _ in records if finished >= killed_at]
    before = [finished - started for started, finished, _, _ in records if finished < killed_at]
    bridge = await get_bridge()
    return FailoverResult(
        calls=len(records),
        failed=sum(1 for record in records if not record[2]),
        failover_ms=ms(first_on_secondary - killed_at),
        calls_after_kill=len(after),
        p99_after_kill_ms=ms(percentile(after, 99)),
        median_before_ms=ms(median(before)),
        active_endpoint_is_secondary=bridge.health.active_endpoint() == secondary,
    )
