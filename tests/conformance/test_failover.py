"""Failover: two regions of the same peer; kill the first under load until live calls eject it,
restart it, and passing probes readmit it before its ejection window ends (failback).

No probe runs while the first region is dead, so only the live calls see the outage: the region
ends up passively ejected, not unhealthy. The restarted region has also forgotten the session the
bridge holds, so the first probe after the restart meets the peer's unknown-session answer: it
must reopen the session and probe again rather than mark the region failed.
"""

from __future__ import annotations

import asyncio
import time

from mcp_bridge.failover.health import EJECT_AFTER, HEALTHY_AFTER
from mcp_bridge.failover.probe import probe_all

from .calls import call, failures

SCENARIO = "failover"
LOAD_CALLS = 3 * EJECT_AFTER
"""Read-only calls fired while the first region is dead, 4 at a time."""


async def test_kill_under_load_ejects_and_probes_readmit(peer, cell, bridge, functions, monkeypatch):
    # A window longer than a slow restart on a loaded machine, so only the probes can end it here.
    monkeypatch.setattr("mcp_bridge.failover.health.EJECT_BASE_SECONDS", 120.0)
    spec = peer.peer
    first, second = peer.regions("a", "b")
    primary, secondary = peer.url(first), peer.url(second)
    scheduler = await bridge(primary, secondary)
    warm = await call(functions, spec.with_schema)
    assert warm.status == 200 and warm.json["endpoint"] == primary, warm.body
    await probe_all(scheduler)  # a passing streak from before the outage, which must not count

    first.kill()
    # A refused connection means nothing was sent: safe to move even the tool that is not read-only.
    moved = [await call(functions, spec.with_schema)]
    gate = asyncio.Semaphore(4)

    async def one() -> object:
        async with gate:
            return await call(functions, spec.read_only)

    moved += await asyncio.gather(*(one() for _ in range(LOAD_CALLS)))
    assert failures(moved) == []
    assert {reply.json["endpoint"] for reply in moved} == {secondary}
    health = scheduler.health.endpoints[primary]
    assert health.state(time.time()) == "ejected", health
    ejected_until = health.passive.ejected_until

    peer.restart(first)
    probes = 0
    while scheduler.health.active_endpoint() != primary and probes < HEALTHY_AFTER + 2:
        results = await probe_all(scheduler)
        probes += 1
    primary_probe = next(result for result in results if result.url == primary)
    assert scheduler.health.active_endpoint() == primary, (
        f"not readmitted after {probes} probes; last probe error {primary_probe.error} "
        f"({spec.unknown_session})"
    )
    assert probes == HEALTHY_AFTER, f"readmitted after {probes} probes, expected {HEALTHY_AFTER}"
    assert time.time() < ejected_until, "readmitted by the window's end, not by the probes"
    assert health.state(time.time()) == "healthy"
    back = [await call(functions, tool) for tool in (spec.with_schema, spec.read_only)]
    assert failures(back) == [] and {reply.json["endpoint"] for reply in back} == {primary}, back
    cell.note(
        f"{len(moved)}/{len(moved)} calls on the second region while the first was dead and ejected; "
        f"readmitted after {probes} probes, {ejected_until - time.time():.0f} s before its ejection ended"
    )
