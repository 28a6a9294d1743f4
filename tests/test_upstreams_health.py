"""Health across upstreams: one probe run for all, each upstream and its regions in /api/health, an
overall status that names the degraded upstream, one shared snapshot holding them all."""

from __future__ import annotations

import time

from azure.functions.timer import TimerRequest

from mcp_bridge.config.loader import parse_settings
from mcp_bridge.failover import retry
from mcp_bridge.failover.all_upstreams import probe_upstreams
from mcp_bridge.failover.snapshot import BlobSnapshotStore
from mcp_bridge.runtime import build_bridge

from .conftest import AUDIENCE, IDENTITY_HEADER, control
from .rooms import rooms, rooms_servers, rooms_settings

__all__ = ["rooms", "rooms_servers"]  # fixtures


async def run_probe_timer(functions) -> float:
    started = time.perf_counter()
    await functions._functions["health_probe"].get_user_function()(TimerRequest(past_due=False))
    return time.perf_counter() - started


async def test_the_timer_probes_every_upstream_at_once_and_health_names_the_degraded_one(
    configure, functions, stack, rooms
):
    await configure(**rooms_settings(rooms))
    await run_probe_timer(functions)  # the first run builds both bridges (imports, credential)
    rooms.east.kill()
    # One slow MCP answer in each upstream: probed one after the other, the run would take 2 s.
    for process in (stack.east, rooms.west):
        control(process.url, "POST", "/_devstack/faults", {"delay_seconds": 1.0, "times": 1})
    elapsed = await run_probe_timer(functions)
    assert 1.0 <= elapsed < 1.8, elapsed
    assert control(stack.west.url)["mcp_requests"] >= 1  # every region of both was probed
    for _ in range(2):  # three failed probes in a row: Rooms' primary is unhealthy
        await run_probe_timer(functions)

    reply = await functions("health", path="/api/health")
    assert reply.status == 200
    view = reply.json
    # Rooms lost a region and failed over: still ok, as one upstream alone always said.
    assert view["status"] == "ok" and view["degraded_upstreams"] == []
    assert list(view["upstreams"]) == ["scheduler", "rooms"]
    scheduler, rooms_view = view["upstreams"]["scheduler"], view["upstreams"]["rooms"]
    assert scheduler["status"] == "ok" and scheduler["active_endpoint"] == stack.east.mcp_url
    assert [e["url"] for e in rooms_view["endpoints"]] == [rooms.east.mcp_url, rooms.west.mcp_url]
    assert rooms_view["active_endpoint"] == rooms.west.mcp_url
    assert rooms_view["endpoints"][0]["state"] == "unhealthy" and rooms_view["token"] is None
    # The top level is still the Scheduler's own view, as before there were several.
    assert view["active_endpoint"] == stack.east.mcp_url and view["token"] is not None

    rooms.west.kill()  # Rooms has nowhere left; the instance still serves the Scheduler: not 503
    for _ in range(3):
        await run_probe_timer(functions)
    reply = await functions("health", path="/api/health")
    assert reply.status == 200
    assert (reply.json["status"], reply.json["degraded_upstreams"]) == ("degraded", ["rooms"])
    assert reply.json["upstreams"]["rooms"]["status"] == "unavailable"
    assert reply.json["upstreams"]["scheduler"]["status"] == "ok"


async def test_the_shared_snapshot_holds_every_upstream(stack, rooms, azurite, monkeypatch):
    retry.set_testing(True)
    monkeypatch.setenv("IDENTITY_ENDPOINT", stack.identity.token_url)
    monkeypatch.setenv("IDENTITY_HEADER", IDENTITY_HEADER)
    settings = parse_settings(
        {
            "SCHEDULER_ENDPOINTS": f"{stack.east.mcp_url},{stack.west.mcp_url}",
            "SCHEDULER_AUTH": "managed_identity",
            "SCHEDULER_TOKEN_SCOPE": f"{AUDIENCE}/.default",
            "AzureWebJobsStorage": azurite.connection_string,
            "HEALTH_SNAPSHOT_TTL_SECONDS": "0.01",
            "HEALTH_SNAPSHOT_BLOB": "upstreams.json",
            **rooms_settings(rooms),
        }
    )
    # Two instances: the one the timer runs on, and one serving Rooms calls.
    prober = {name: build_bridge(own) for name, own in settings.upstreams.items()}
    for bridge in prober.values():
        bridge.upstreams = prober
    server = build_bridge(settings.upstreams["rooms"])
    store = BlobSnapshotStore(settings)
    try:
        rooms.east.kill()
        for _ in range(3):
            await probe_upstreams(prober)
        snapshot = await store.read()
        assert set(snapshot["upstreams"]) == {"scheduler", "rooms"}
        assert set(snapshot["upstreams"]["rooms"]["endpoints"]) == {rooms.east.mcp_url, rooms.west.mcp_url}
        assert snapshot["upstreams"]["rooms"]["active_endpoint"] == rooms.west.mcp_url
        # The top level stays the Scheduler's, for an instance of the previous version.
        assert snapshot["active_endpoint"] == stack.east.mcp_url
        assert set(snapshot["endpoints"]) == {stack.east.mcp_url, stack.west.mcp_url}

        assert server.health.active_endpoint() == rooms.east.mcp_url  # has seen nothing itself
        await server.snapshot_follower.refresh(server.health)
        assert server.health.active_endpoint() == rooms.west.mcp_url
        outcome = await server.call_tool("listConversations", {})
        assert outcome.endpoint == rooms.west.mcp_url and outcome.attempts == 1
    finally:
        retry.set_testing(False)
        for bridge in [*prober.values(), server]:
            await bridge.aclose()
        await store.aclose()
