"""Failover: two regions of the same peer; kill the first, calls move to the second; restart the
first, and the probes readmit it (failback).

The restarted region has forgotten the session the bridge holds, so the first probe after the
restart meets the peer's unknown-session answer: it must reopen the session and probe again
rather than mark the region failed for good.
"""

from __future__ import annotations

from mcp_bridge.failover.health import HEALTHY_AFTER, UNHEALTHY_AFTER
from mcp_bridge.failover.probe import probe_all

from .calls import call, failures

SCENARIO = "failover"


async def test_kill_fails_over_and_probes_fail_back(peer, cell, bridge, functions):
    spec = peer.peer
    first, second = peer.regions("a", "b")
    primary, secondary = peer.url(first), peer.url(second)
    scheduler = await bridge(primary, secondary)
    warm = await call(functions, spec.with_schema)
    assert warm.status == 200 and warm.json["endpoint"] == primary, warm.body

    first.kill()
    # A refused connection means nothing was sent: safe to move even the tool that is not read-only.
    moved = [await call(functions, tool) for tool in (spec.read_only, spec.with_schema, spec.with_schema)]
    assert failures(moved) == []
    assert {reply.json["endpoint"] for reply in moved} == {secondary}
    for _ in range(UNHEALTHY_AFTER):
        await probe_all(scheduler)
    assert scheduler.health.active_endpoint() == secondary

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
    back = await call(functions, spec.with_schema)
    assert back.status == 200 and back.json["endpoint"] == primary, back.body
    cell.note(f"3/3 calls on the second region while the first was dead; failback after {probes} probes")
